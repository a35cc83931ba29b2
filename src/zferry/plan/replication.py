"""Decide, for one dataset, how to bring the destination up to date: pure, no I/O.

Inputs are what the bulk listings said about the source and the destination; the output
is a `DatasetPlan` (what to destroy or roll back first, then the send steps) or a
`Conflict` that explains itself and names the flag that would resolve it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Optional, Union

from zferry.model import Version
from zferry.plan.guard import Action, Destruction, Facts
from zferry.plan.steps import SendStep, send_steps, sent_snapshots

FORCE = "--force"
RESYNC_WHY = "--force: nothing in common, full resync"
CLASH_WHY = "--force: same-named snapshot of another GUID"
EMPTY_WHY = "the destination is empty (zferry's placeholder, or no snapshots, no children, <= 64 KiB)"


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
    newer: tuple[Version, ...] = ()  # destination snapshots the rollback destroys
    steps: tuple[SendStep, ...] = ()
    force_receive: bool = False  # the first (full) receive overwrites an existing destination
    common: Optional[Version] = None
    destroy_why: str = ""  # the option or rule that selected `destroy`
    dst_empty: bool = True  # the destination is missing or empty (zferry's definition)

    @property
    def is_noop(self) -> bool:
        return not (self.destroy or self.rollback_to or self.steps)


@dataclass(frozen=True)
class Conflict:
    """The destination cannot take the source's snapshots without losing something."""

    src: str
    dst: str
    kind: str  # "diverged" | "unrelated" | "has-data" | "name-clash"
    common: Optional[Version] = None
    dst_newer: tuple[Version, ...] = ()

    def message(self) -> str:
        if self.kind == "name-clash":
            names = ", ".join(v.full_name for v in self.dst_newer[:5]) + (" ..." if len(self.dst_newer) > 5 else "")
            return (
                f"{self.dst} already has snapshot(s) named like ones the source would send, but with another "
                f"GUID (another dataset's history): {names}. Nothing was sent. To destroy the destination's "
                "same-named snapshot(s) and go on, rerun with --force; or rename them on the destination."
            )
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
            f"{self.dst} exists, has no snapshots and is not empty (it holds data or child datasets). "
            "Nothing was changed. "
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
    dst_empty: bool = True,
    policy: ConflictPolicy = ConflictPolicy(),
) -> Outcome:
    """Plan one dataset. `selected` are the source snapshots the filters chose, oldest first.

    `dst_empty`: the existing destination is empty by zferry's definition (`guard.is_empty`);
    only then may a full receive overwrite it without --force.
    """
    history = [v for v in src_versions if not v.is_bookmark]
    chosen = {s.guid for s in selected}
    if not dst_snapshots:
        if dst_exists and not dst_empty and not policy.force:
            return Conflict(src, dst, "has-data")
        full = tuple(send_steps(history, chosen, None, policy.no_stream))
        return DatasetPlan(src, dst, steps=full, force_receive=dst_exists and bool(full), dst_empty=dst_empty)
    common = latest_common(src_versions, dst_snapshots, policy.use_bookmarks)
    if common is None:
        if not policy.force:
            return Conflict(src, dst, "unrelated")
        resync = tuple(send_steps(history, chosen, None, policy.no_stream))
        if not resync:
            return DatasetPlan(src, dst, dst_empty=False)
        return DatasetPlan(
            src,
            dst,
            destroy=tuple(dst_snapshots),
            steps=resync,
            force_receive=True,
            destroy_why=RESYNC_WHY,
            dst_empty=False,
        )
    dst_common = next(s for s in dst_snapshots if s.guid == common.guid)
    newer = tuple(s for s in dst_snapshots if s.createtxg > dst_common.createtxg)
    steps = tuple(send_steps(history, chosen, common, policy.no_stream))
    clashes = _name_clashes(steps, history, dst_snapshots, newer)
    if clashes and not policy.force:
        return Conflict(src, dst, "name-clash", common, clashes)
    if newer and not (policy.force or policy.rollback_to_latest_common):
        return Conflict(src, dst, "diverged", common, newer)
    plan = DatasetPlan(
        src,
        dst,
        destroy=clashes,
        steps=steps,
        common=common,
        destroy_why=CLASH_WHY if clashes else "",
        dst_empty=False,
    )
    if newer:
        return replace(plan, rollback_to=dst_common, rollback_destroys_newer=True, newer=newer)
    if policy.rollback_to_latest and steps:
        return replace(plan, rollback_to=dst_common)
    return plan


def _name_clashes(
    steps: Sequence[SendStep], history: Sequence[Version], dst_snapshots: Sequence[Version], newer: Sequence[Version]
) -> tuple[Version, ...]:
    """Destination snapshots (not among `newer`, which a rollback removes) that share a name, but
    not the GUID, with a snapshot the steps would send: `zfs receive` would stop at them."""
    incoming = {v.name: v.guid for v in sent_snapshots(steps, history)}
    doomed = {v.guid for v in newer}
    return tuple(v for v in dst_snapshots if v.guid not in doomed and v.name in incoming and incoming[v.name] != v.guid)


def destructions(plan: DatasetPlan, policy: ConflictPolicy, src_guids: Collection[int]) -> tuple[Destruction, ...]:
    """The destructive parts of `plan`, in the order they run, as data for the guard. Pure.

    `src_guids`: the GUIDs of the source's snapshots (a destination snapshot still among them is protected).
    """
    common_guid = plan.common.guid if plan.common is not None else None
    out: list[Destruction] = []
    if plan.destroy:
        out.append(_destroy_versions(plan, policy, src_guids, common_guid))
    if plan.rollback_to is not None:
        if plan.rollback_destroys_newer:
            asked = policy.force or policy.rollback_to_latest_common
            why = "--force-rollback-to-latest-common-snapshot" if policy.rollback_to_latest_common else FORCE
        else:
            asked, why = policy.rollback_to_latest, "--force-rollback-to-latest-snapshot"
        facts = Facts(asked=asked, selected=True, data_allowed=True)
        out.append(
            Destruction(Action.ROLLBACK, plan.dst, why, facts, versions=plan.newer, rollback_to=plan.rollback_to)
        )
    if plan.force_receive:
        why, asked = (EMPTY_WHY, True) if plan.dst_empty else (FORCE, policy.force)
        facts = Facts(asked=asked, selected=True, holds_data=not plan.dst_empty, data_allowed=policy.force)
        out.append(Destruction(Action.FORCED_RECEIVE, plan.dst, why, facts))
    return tuple(out)


def _destroy_versions(
    plan: DatasetPlan, policy: ConflictPolicy, src_guids: Collection[int], common_guid: Optional[int]
) -> Destruction:
    facts = Facts(
        asked=policy.force,
        selected=True,
        on_source=any(v.guid in src_guids for v in plan.destroy),
        latest_common=common_guid is not None and any(v.guid == common_guid for v in plan.destroy),
        data_allowed=True,
    )
    return Destruction(Action.DESTROY_VERSIONS, plan.dst, plan.destroy_why, facts, versions=plan.destroy)
