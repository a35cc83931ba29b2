"""`zferry-dr status`: the report of each group and site, assembled from site states (pure).

JSON: `{"groups": [{"name", "primary", "divergent", "notes", "sites": [{"name", "role", "epoch",
"reachable", "exists", "pool_health", "latest_snapshot", "latest_common_snapshot", "lag_seconds",
"diverged", "divergence", "must_fence", "pending", "error"}]}]}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Optional

from zferry.dr import plan
from zferry.dr.config import Group
from zferry.dr.state import SiteState
from zferry.errors import ConflictError
from zferry.fencing import ROLE_FENCED


@dataclass(frozen=True)
class SiteStatus:
    name: str
    role: Optional[str]
    epoch: Optional[int]
    reachable: bool
    exists: bool
    pool_health: str
    latest_snapshot: Optional[str]
    latest_common_snapshot: Optional[str]
    lag_seconds: Optional[float]
    diverged: bool
    divergence: str
    must_fence: list[str]
    pending: str
    error: str


@dataclass(frozen=True)
class GroupStatus:
    name: str
    primary: Optional[str]
    divergent: bool
    notes: list[str]
    sites: list[SiteStatus]

    @property
    def healthy(self) -> bool:
        """A primary, every site reachable and none diverged, nothing pending."""
        return self.primary is not None and not self.divergent and not self.notes


def group_status(group: Group, states: Mapping[str, SiteState], now: float) -> GroupStatus:
    """The status of one group from its sites' states."""
    notes: list[str] = []
    try:
        primary = plan.current_primary(group, states)
    except ConflictError as error:
        primary, notes = None, [str(error)]
    top = states.get(primary) if primary else None
    sites = [_site_status(states[s.name], top, now) for s in group.sites]
    notes += _notes(group, states, primary)
    return GroupStatus(group.name, primary, any(s.diverged for s in sites), notes, sites)


def _site_status(state: SiteState, primary: Optional[SiteState], now: float) -> SiteStatus:
    usable = primary is not None and primary.usable and state.usable
    div = plan.divergence(primary, state) if usable and primary is not None and primary.site != state.site else None
    common = div.common.get("") if div is not None else None
    latest = state.latest()
    return SiteStatus(
        name=state.site,
        role=state.role,
        epoch=state.epoch,
        reachable=state.reachable,
        exists=state.exists,
        pool_health=state.health,
        latest_snapshot=latest.full_name if latest else None,
        latest_common_snapshot=common.full_name if common else (latest.full_name if div is None and latest else None),
        lag_seconds=plan.lag_seconds(primary, state, now) if usable and primary is not None else None,
        diverged=div.diverged if div is not None else False,
        divergence=div.describe() if div is not None else "",
        must_fence=list(state.must_fence),
        pending=state.pending,
        error=state.error,
    )


def _notes(group: Group, states: Mapping[str, SiteState], primary: Optional[str]) -> list[str]:
    """What an operator must know: unreachable sites, sites to fence, operations a kill left half done."""
    notes = []
    for state in states.values():
        if not state.reachable:
            notes.append(f"{state.site} is unreachable: {state.error}")
        elif not state.exists:
            notes.append(
                f"{state.site}: {group.site(state.site).root} does not exist (yet): zferry-dr replicate creates it"
            )
        if state.pending.startswith("failover:"):
            to = state.pending.split(":")[1]
            notes.append(
                f"a failover from {state.site} to {to} did not finish: rerun zferry-dr failover {group.name} --to {to}"
            )
        elif state.pending.startswith("failback:"):
            notes.append(f"a failback of {state.site} did not finish: rerun zferry-dr failback {group.name}")
        for other in state.must_fence:
            fenced = states.get(other)
            if fenced is None or not fenced.usable or fenced.role != ROLE_FENCED:
                notes.append(f"{other} must be fenced when it returns (recorded on {state.site})")
    if primary is None and not any("claim to be primary" in n for n in notes):
        notes.append("no reachable primary: zferry-dr failover GROUP --to SITE [--force] promotes one")
    elif primary is not None and plan.initialised(states):
        notes += [f"{s} still claims primary or is not fenced yet" for s in plan.must_fence(states, primary)]
    for state in states.values():
        if state.usable and state.role == ROLE_FENCED and not state.pending:
            notes.append(f"{state.site} is fenced: zferry-dr failback {group.name} brings it back as a standby")
    return sorted(set(notes))


def to_json(statuses: Sequence[GroupStatus]) -> str:
    """The JSON document of `status --json`."""
    return json.dumps({"groups": [asdict(g) for g in statuses]}, indent=2, sort_keys=False)


def to_text(statuses: Sequence[GroupStatus]) -> str:
    """The human-readable report of `status`: a table per group, then notes."""
    lines: list[str] = []
    for g in statuses:
        state = "DIVERGED" if g.divergent else ("ok" if g.healthy else "attention")
        lines.append(f"group {g.name}: primary {g.primary or '-'} ({state})")
        for s in g.sites:
            lag = "-" if s.lag_seconds is None else f"{s.lag_seconds:.0f}s"
            reach = "reachable" if s.reachable else "UNREACHABLE"
            lines.append(
                f"  {s.name:<12} {s.role or '-':<8} epoch {s.epoch if s.epoch is not None else '-':<4} {reach:<11} "
                f"pool {s.pool_health or '-':<8} lag {lag:<7} latest {s.latest_snapshot or '-'}"
                f" common {s.latest_common_snapshot or '-'}" + (f" DIVERGED: {s.divergence}" if s.diverged else "")
            )
        lines += [f"  note: {note}" for note in g.notes]
    return "\n".join(lines) + "\n"
