"""The DR commands: replicate, failover (planned or forced), failback. Each one reads the sites' own
state first and does only the steps that state says are still to do, so a rerun after a kill -9
completes what the killed run began (see README "zferry-dr").

Planned failover, old primary P to T (epoch e = highest seen + 1):
  1. P: `zferry:dr-pending=failover:T:e`, readonly=on     (no more writes)
  2. P: final snapshot; 3. P -> T through the engine      (RPO 0)
  4. P: role fenced;   5. T: role primary, epoch e, writable
  6. P: role standby, epoch e, atime off; pending cleared (replication now runs T -> P)
A rerun finds where it stopped: P still primary (1-3 again), no primary and P fenced with the
pending mark (from 5), T already primary (6).
"""

from __future__ import annotations

import logging
from typing import Optional

from zferry.dr import plan
from zferry.dr.config import Group
from zferry.dr.state import PENDING_PROPERTY, SiteState
from zferry.dr.steps import DrError, States, Steps
from zferry.errors import ConflictError
from zferry.fencing import ROLE_FENCED, ROLE_STANDBY, DrState, check_replication

log = logging.getLogger("zferry")
FAIL, LATEST_WINS = "fail", "latest-wins"


def _primary(group: Group, states: States) -> SiteState:
    name = plan.current_primary(group, states)
    if name is None:
        raise DrError(
            f"group {group.name}: no reachable primary; see zferry-dr status, then "
            f"zferry-dr failover {group.name} --to SITE [--force]"
        )
    return states[name]


def replicate(steps: Steps, group: Group, policy: str = FAIL, _depth: int = 0) -> None:
    """Replicate the primary to every standby it may write to (after a fresh snapshot of the primary);
    a diverged standby by `policy`. The checks come first: a refused group gets no snapshot."""
    states = steps.read(group)
    primary = _primary(group, states)
    problems: list[str] = []
    targets: list[SiteState] = []
    for state in states.values():
        if state.site == primary.site:
            continue
        problem = _check_standby(group, primary, state, policy, steps.clock())
        if problem is None:
            targets.append(state)
        else:
            problems.append(problem)
    winners = [w for s in targets if (w := _winner(primary, s, policy, steps.clock())) not in (None, primary.site)]
    if winners and winners[0] is not None:
        if _depth > 0:
            raise DrError(f"group {group.name}: latest-wins did not settle")
        winner = winners[0]
        take_over(steps, group, states, winner, primary.site, f"latest-wins: {winner}'s newest snapshot is newer")
        return replicate(steps, group, policy, _depth + 1)
    if targets:
        steps.snapshot(group, group.site(primary.site), "zferry-dr replicate")
    for state in targets:
        site = group.site(state.site)
        if _winner(primary, state, policy, steps.clock()) == primary.site:
            why = f"latest-wins: {primary.site}'s newest snapshot is newer; {site.name}'s divergent data is kept"
            steps.preserve(group, site, primary, state, why)
        steps.replicate(group, group.site(primary.site), site)
        if state.role != ROLE_STANDBY or state.epoch != primary.epoch or not state.readonly:
            steps.make_standby(group, site, primary.epoch)
    if problems:
        raise DrError(f"group {group.name}: " + "; ".join(problems))


def _winner(primary: SiteState, state: SiteState, policy: str, now: float) -> Optional[str]:
    """latest-wins' choice for a diverged standby (None: not diverged, nothing to choose)."""
    if policy != LATEST_WINS or not state.exists or not plan.divergence(primary, state).diverged:
        return None
    return plan.latest_wins(primary, state, now)


def _check_standby(group: Group, primary: SiteState, state: SiteState, policy: str, now: float) -> Optional[str]:
    """None if `state`'s site may be replicated to; else why not (a message for the user)."""
    name = state.site
    if not state.reachable:
        return f"{name} is unreachable: {state.error}"
    if state.role == ROLE_FENCED:
        return f"{name} is fenced: zferry-dr failback {group.name} brings it back as a standby"
    refusal = check_replication(DrState(primary.role, primary.epoch), DrState(state.role, state.epoch))
    if refusal:
        return f"{primary.site} -> {name}: {refusal}"
    divergence = plan.divergence(primary, state) if state.exists else None
    if divergence is None or not divergence.diverged:
        return None
    if policy == FAIL:
        return (
            f"{name} diverged from {primary.site} ({divergence.describe()}): nothing replicated to it; "
            "--on-divergence latest-wins resolves it (keeping the loser's data aside)"
        )
    try:
        plan.latest_wins(primary, state, now)
    except ConflictError as error:
        return str(error)
    return None


def take_over(steps: Steps, group: Group, states: States, winner: str, loser: str, why: str) -> None:
    """latest-wins chose a standby: it becomes primary, the old primary's divergent data is kept aside."""
    epoch = plan.new_epoch(states)
    steps.fence(group, group.site(loser), f"{why}; {loser} loses")
    steps.promote(group, group.site(winner), epoch)
    bring_back(steps, group, loser)


def failover(steps: Steps, group: Group, to: str, force: bool = False) -> None:
    """Make `to` the primary: planned when the primary is reachable (RPO 0), else with `force`
    (unplanned: the unreachable sites are recorded to be fenced on first contact)."""
    target = group.site(to)
    states = steps.read(group)
    if not states[to].usable:
        raise DrError(f"group {group.name}: {to} cannot be promoted: {_describe(states[to])}")
    primary = plan.current_primary(group, states)
    if primary == to:
        _finish(steps, group, states, to)
        log.info("group %s: %s is the primary (epoch %s)", group.name, to, states[to].epoch)
        return
    if primary is None:
        pending = {
            s.site: s.pending.split(":") for s in states.values() if s.usable and s.pending.startswith("failover:")
        }
        resumed = [p for p in pending.values() if p[1] == to]
        if resumed:  # killed between fencing the old primary and promoting `to`
            steps.promote(group, target, int(resumed[0][2]))
            _finish(steps, group, steps.sites.read_group(group), to)
            return
        if pending:
            other = next(iter(pending.values()))[1]
            raise DrError(f"group {group.name}: a failover to {other} is under way: rerun it (failover --to {other})")
        if not force:
            raise DrError(
                f"group {group.name}: no reachable primary; --force promotes {to} now (unplanned failover: "
                "the unreachable sites are fenced when they return)"
            )
        gone = sorted(s.site for s in states.values() if not s.reachable)
        log.warning(
            "group %s: unplanned failover to %s; to fence on first contact: %s", group.name, to, ", ".join(gone)
        )
        steps.promote(group, target, plan.new_epoch(states), sorted({*gone, *states[to].must_fence}))
        return
    _planned(steps, group, states, states[primary], to)


def _planned(steps: Steps, group: Group, states: States, old: SiteState, to: str) -> None:
    target, source = group.site(to), group.site(old.site)
    if states[to].exists:
        divergence = plan.divergence(old, states[to])
        if divergence.diverged:
            raise DrError(
                f"group {group.name}: {to} diverged from {old.site} ({divergence.describe()}); resolve it first "
                f"(zferry-dr replicate {group.name} --on-divergence latest-wins)"
            )
    epoch = plan.new_epoch(states)
    marks = [(PENDING_PROPERTY, f"failover:{to}:{epoch}"), ("readonly", "on")]
    steps.sites.set(
        source, source.root, marks, f"group {group.name}: failover to {to} step 1: stop writes on {old.site}"
    )
    steps.snapshot(group, source, f"failover to {to} step 2: final snapshot of {old.site}")
    steps.replicate(group, source, target)
    steps.fence(group, source, f"failover to {to} step 4: fence {old.site}")
    steps.promote(group, target, epoch)
    _finish(steps, group, steps.sites.read_group(group), to)


def _finish(steps: Steps, group: Group, states: States, to: str) -> None:
    """Last step of a failover to `to`: the sites it was taken from become standbys."""
    epoch = states[to].epoch
    for state in states.values():
        if state.usable and state.pending.startswith(f"failover:{to}:"):
            site = group.site(state.site)
            steps.make_standby(group, site, epoch)
            steps.sites.clear(site, site.root, PENDING_PROPERTY, f"group {group.name}: failover to {to} done")


def bring_back(steps: Steps, group: Group, name: str) -> Optional[str]:
    """A fenced (or diverged) site becomes a standby again: its divergent data is kept aside, then it is
    resynchronised incrementally from the primary. Returns the side dataset, if one was needed."""
    states = steps.read(group)
    primary = _primary(group, states)
    if name == primary.site:
        return None
    state, site = states[name], group.site(name)
    if not state.reachable:
        raise DrError(f"group {group.name}: {name} is unreachable: {state.error}")
    aside = steps.preserve(group, site, primary, state, f"failback of {name}: divergent data")
    steps.replicate(group, group.site(primary.site), site)
    steps.make_standby(group, site, primary.epoch)
    if aside:
        log.warning("group %s: %s's divergent data is kept in %s", group.name, name, aside)
    if name in primary.must_fence:
        steps.set_must_fence(group, primary, [s for s in primary.must_fence if s != name])
    return aside


def failback(steps: Steps, group: Group, to: Optional[str] = None) -> None:
    """Bring `to` (default: every fenced site) back as a standby; with `to`, then fail over to it."""
    states = steps.read(group)
    primary = _primary(group, states)
    names = [to] if to else [s.site for s in states.values() if s.usable and s.role == ROLE_FENCED]
    names += [s.site for s in states.values() if s.reachable and not s.exists]  # a kill may have left it aside
    for name in dict.fromkeys(names):
        if name != primary.site:
            bring_back(steps, group, name)
    if to and to != primary.site:
        failover(steps, group, to)


def _describe(state: SiteState) -> str:
    return f"unreachable ({state.error})" if not state.reachable else "its dataset does not exist"
