"""Pure DR decisions over site states: who is primary, who must be fenced, who diverged, who wins.

- The primary is the reachable site whose role is primary with the highest epoch; before any
  site carries a role, the site file's `primary`. Two primaries with the same epoch is a split
  brain that needs a person.
- A site must be fenced when it still says primary with a lower epoch than the primary, or when
  the primary names it in `zferry:dr-must-fence` (an unplanned failover) and it is not fenced yet.
- A site diverged from the primary when, in any dataset of the tree, it has snapshots after the
  latest snapshot it has in common with the primary (by GUID), or data written since that
  snapshot (`written`, the same as `written@common` when the common snapshot is its latest).
- `latest-wins` chooses only between sides of the highest epoch: the side whose newest snapshot
  is newer; a tie, or a snapshot from the future (a skewed clock), is a conflict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from zferry.dr.config import Group
from zferry.dr.state import SiteState
from zferry.errors import ConflictError
from zferry.fencing import ROLE_FENCED, ROLE_PRIMARY
from zferry.model import Version

CLOCK_SKEW_SECONDS = 60  # a snapshot made later than this after our own clock says the clocks disagree


@dataclass(frozen=True)
class Divergence:
    """How `site` differs from the primary: per dataset, the latest common snapshot and why it diverged."""

    site: str
    common: Mapping[str, Optional[Version]]  # relative dataset name -> latest common snapshot (on `site`)
    reasons: Mapping[str, str]  # relative dataset name -> why it diverged

    @property
    def diverged(self) -> bool:
        return bool(self.reasons)

    def describe(self) -> str:
        """'db: 2 snapshot(s) after @s3; db/x: ...' for messages."""
        return "; ".join(f"{rel or '(root)'}: {why}" for rel, why in sorted(self.reasons.items()))


def latest_common(reference: Sequence[Version], mine: Sequence[Version]) -> Optional[Version]:
    """The newest of `mine` whose GUID `reference` has too."""
    guids = {v.guid for v in reference}
    return next((v for v in reversed(mine) if v.guid in guids), None)


def divergence(primary: SiteState, other: SiteState) -> Divergence:
    """Which datasets of `other` hold snapshots or writes the primary lacks (see the module docstring)."""
    common: dict[str, Optional[Version]] = {}
    reasons: dict[str, str] = {}
    for rel, dataset in other.datasets.items():
        if rel not in primary.datasets:
            continue  # only on this side: replication leaves it alone
        snaps = other.snapshots.get(rel, ())
        base = latest_common(primary.snapshots.get(rel, ()), snaps)
        common[rel] = base
        if base is None:
            if snaps:
                reasons[rel] = f"{len(snaps)} snapshot(s), none in common with {primary.site}"
            continue
        newer = [s for s in snaps if s.createtxg > base.createtxg]
        if newer:
            reasons[rel] = f"{len(newer)} snapshot(s) after the common @{base.name} (newest @{newer[-1].name})"
        elif dataset.written > 0:
            reasons[rel] = f"{dataset.written} bytes written since the common @{base.name}"
    return Divergence(other.site, common, reasons)


def initialised(states: Mapping[str, SiteState]) -> bool:
    """Does any reachable site carry a DR role yet?"""
    return any(s.role is not None for s in states.values() if s.usable)


def current_primary(group: Group, states: Mapping[str, SiteState]) -> Optional[str]:
    """The primary site by the sites' own state (see the module docstring); None when there is none
    (every primary unreachable, or a failover stopped between fencing and promoting)."""
    if not initialised(states):
        return group.primary
    primaries = [s for s in states.values() if s.usable and s.role == ROLE_PRIMARY]
    if not primaries:
        return None
    top = max(s.epoch or 0 for s in primaries)
    best = [s.site for s in primaries if (s.epoch or 0) == top]
    if len(best) > 1:
        raise ConflictError(
            f"group {group.name}: sites {' and '.join(best)} both claim to be primary with epoch {top} "
            "(split brain): decide which one is, then set zferry:dr-role=fenced on the other"
        )
    return best[0]


def must_fence(states: Mapping[str, SiteState], primary: str) -> list[str]:
    """The reachable sites to fence before anything else: stale primaries and the primary's must-fence list."""
    top = states[primary]
    stale = []
    for state in states.values():
        if state.site == primary or not state.usable or state.role == ROLE_FENCED:
            continue
        if state.role == ROLE_PRIMARY or state.site in top.must_fence:
            stale.append(state.site)
    return sorted(stale)


def new_epoch(states: Mapping[str, SiteState]) -> int:
    """One more than the highest epoch any reachable site carries."""
    return max((s.epoch or 0 for s in states.values() if s.usable), default=0) + 1


def newest_creation(state: SiteState) -> Optional[int]:
    """The creation time of the newest snapshot anywhere in the site's tree."""
    times = [v.creation for snaps in state.snapshots.values() for v in snaps]
    return max(times) if times else None


def latest_wins(primary: SiteState, other: SiteState, now: float) -> str:
    """The winning site's name under `--on-divergence latest-wins`; ConflictError on a tie or a skewed clock."""
    if (other.epoch or 0) != (primary.epoch or 0):
        return primary.site if (primary.epoch or 0) > (other.epoch or 0) else other.site
    newest = {s.site: newest_creation(s) for s in (primary, other)}
    for site, created in newest.items():
        if created is not None and created > now + CLOCK_SKEW_SECONDS:
            raise ConflictError(
                f"latest-wins: {site}'s newest snapshot is {created - now:.0f} s in the future: its clock is skewed; "
                "fix the clock, or resolve by hand (zferry-dr failover/failback)"
            )
    a, b = newest[primary.site] or 0, newest[other.site] or 0
    if a == b:
        raise ConflictError(
            f"latest-wins: {primary.site} and {other.site} have newest snapshots of the same time: no winner; "
            "resolve by hand (zferry-dr failover/failback)"
        )
    return primary.site if a > b else other.site


def lag_seconds(primary: SiteState, other: SiteState, now: float) -> Optional[float]:
    """Age of the root's latest snapshot in common with the primary (0 for the primary itself)."""
    if other.site == primary.site:
        return 0.0
    base = latest_common(primary.snapshots.get("", ()), other.snapshots.get("", ()))
    return None if base is None else max(0.0, now - base.creation)
