"""Decide, for one dataset, how to bring the destination up to date: pure, no I/O.

Inputs are what the bulk listings said about the source and the destination; the output
is a `DatasetPlan` (what to destroy or roll back first, then the send steps) or a
`Conflict` that explains itself and names the flag that would resolve it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Union

from zferry.model import Version
from zferry.plan.steps import SendStep, send_steps

# A destination without snapshots that holds more than this is treated as someone's data,
# not as an empty placeholder a full receive may overwrite.
EMPTY_DATASET_BYTES = 1 << 20


@dataclass(frozen=True)
class ConflictPolicy:
    """Which destructive resolutions the user allowed."""

    force: bool = False  # destroy conflicting snapshots, or full resync when nothing is common
    rollback_to_latest_common: bool = False
    rollback_to_latest: bool = False  # discard changes made on the destination since its latest snapshot
    use_bookmarks: bool = True
    no_stream: bool = False


@dataclass(frozen=True)
class DatasetPlan:
    """What to do for one dataset, in order: destroy, roll back, then send each step."""

    src: str
    dst: str
    destroy: tuple[Version, ...] = ()  # destination snapshots to destroy first
    rollback_to: Optional[Version] = None  # destination snapshot to roll back to
    rollback_destroys_newer: bool = False
    steps: tuple[SendStep, ...] = ()
    force_receive: bool = False  # the first (full) receive overwrites an existing destination
    common: Optional[Version] = None

    @property
    def is_noop(self) -> bool:
        return not (self.destroy or self.rollback_to or self.steps)


@dataclass(frozen=True)
class Conflict:
    """The destination cannot take the source's snapshots without losing something."""

    src: str
    dst: str
    kind: str  # "diverged" | "unrelated" | "has-data"
    common: Optional[Version] = None
    dst_newer: tuple[Version, ...] = ()

    def message(self) -> str:
        if self.kind == "diverged":
            assert self.common is not None
            names = ", ".join(v.tag for v in self.dst_newer[:5]) + (" ..." if len(self.dst_newer) > 5 else "")
            return (
                f"{self.dst} has {len(self.dst_newer)} snapshot(s) newer than the latest common snapshot "
                f"{self.common.tag} ({names}). Nothing was changed. To discard them, rerun with "
                "--force-rollback-to-latest-common-snapshot (or --force)."
            )
        if self.kind == "unrelated":
            return (
                f"{self.dst} has snapshots but none in common with {self.src} (compared by GUID). "
                "Nothing was changed. To destroy the destination's snapshots and send everything "
                "again, rerun with --force; or choose another destination."
            )
        return (
            f"{self.dst} exists, has no snapshots and holds data. Nothing was changed. "
            "To overwrite it with a full receive, rerun with --force; or choose another destination."
        )


Outcome = Union[DatasetPlan, Conflict]


def latest_common(
    src_versions: Sequence[Version], dst_snapshots: Sequence[Version], use_bookmarks: bool = True
) -> Optional[Version]:
    """The newest source snapshot (or bookmark) whose GUID the destination has as a snapshot.

    Source versions are oldest first; on a tie a snapshot wins over its bookmark.
    """
    dst_guids = {s.guid for s in dst_snapshots}
    best: Optional[Version] = None
    for version in src_versions:
        if version.is_bookmark and not use_bookmarks:
            continue
        if version.guid in dst_guids and (
            best is None
            or version.createtxg > best.createtxg
            or (version.createtxg == best.createtxg and best.is_bookmark and not version.is_bookmark)
        ):
            best = version
    return best


def plan_dataset(
    src: str,
    dst: str,
    src_versions: Sequence[Version],
    selected: Sequence[Version],
    dst_exists: bool,
    dst_snapshots: Sequence[Version],
    dst_referenced: int = 0,
    policy: ConflictPolicy = ConflictPolicy(),
) -> Outcome:
    """Plan one dataset. `selected` are the source snapshots the filters chose, oldest first."""
    history = [v for v in src_versions if not v.is_bookmark]
    chosen = {s.guid for s in selected}
    if not dst_snapshots:
        if dst_exists and dst_referenced > EMPTY_DATASET_BYTES and not policy.force:
            return Conflict(src, dst, "has-data")
        full = tuple(send_steps(history, chosen, None, policy.no_stream))
        return DatasetPlan(src, dst, steps=full, force_receive=dst_exists and bool(full))
    common = latest_common(src_versions, dst_snapshots, policy.use_bookmarks)
    if common is None:
        if not policy.force:
            return Conflict(src, dst, "unrelated")
        resync = tuple(send_steps(history, chosen, None, policy.no_stream))
        if not resync:
            return DatasetPlan(src, dst)
        return DatasetPlan(src, dst, destroy=tuple(dst_snapshots), steps=resync, force_receive=True)
    dst_common = next(s for s in dst_snapshots if s.guid == common.guid)
    newer = tuple(s for s in dst_snapshots if s.createtxg > dst_common.createtxg)
    steps = tuple(send_steps(history, chosen, common, policy.no_stream))
    if newer:
        if not (policy.force or policy.rollback_to_latest_common):
            return Conflict(src, dst, "diverged", common, newer)
        return DatasetPlan(src, dst, rollback_to=dst_common, rollback_destroys_newer=True, steps=steps, common=common)
    if policy.rollback_to_latest and steps:
        return DatasetPlan(src, dst, rollback_to=dst_common, steps=steps, common=common)
    return DatasetPlan(src, dst, steps=steps, common=common)
