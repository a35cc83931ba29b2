"""The destroy guard: the one place that decides whether a destructive action may run. Pure.

Every destroy, rollback and forced receive is first described as data (a `Destruction`: what
kind of action, what would go, why it was selected, and the facts that may protect it) and
then checked by `decide`. Only an allowed `Decision` yields the zfs argv that performs it, so a
caller cannot destroy without passing the guard. `check` also reports every decision through
one callback (by default: a WARNING log line), where an audit log can subscribe.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Optional

from zferry import zfs
from zferry.model import Dataset, Version

log = logging.getLogger("zferry")

EMPTY_BYTES = 64 * 1024
"""A dataset without snapshots and children that uses at most this much is empty (DESIGN: "Empty")."""

MAX_DESTROY_ARGUMENT = 100_000
"""Keep each `zfs destroy pool/ds@a,b,c` argument below this many characters."""


class Action(Enum):
    DESTROY_VERSIONS = "destroy snapshots/bookmarks"
    DESTROY_TREE = "destroy dataset tree"
    ROLLBACK = "roll back"
    FORCED_RECEIVE = "forced receive (zfs receive -F)"


@dataclass(frozen=True)
class Facts:
    """What is known about the target of a destructive action.

    `asked`, `orphans_allowed` and `data_allowed` say what the user allowed; the others are
    what protects the target.
    """

    asked: bool = False  # the option (or rule) named as the reason was given / applies
    selected: bool = False  # the user's dataset selection covers every dataset involved
    source_lacks_dataset: bool = False  # the source has no counterpart (renamed, gone, or lists nothing)
    orphans_allowed: bool = False  # the source is `dummy`, or --delete-dst-datasets was given
    on_source: bool = False  # a snapshot that would go still exists on the source (same GUID)
    latest_common: bool = False  # the latest common snapshot would go
    held: bool = False  # a snapshot that would go carries a hold that is not this pair's
    holds_data: bool = False  # a dataset involved is not empty (see `is_empty`)
    data_allowed: bool = False  # the option that asked for it may discard data
    fencing_token: Optional[str] = None  # reserved: the DR work adds a fencing check here


@dataclass(frozen=True)
class Destruction:
    """One destructive action on the destination, described as data."""

    action: Action
    dataset: str  # the dataset acted on (the top of a tree)
    why: str  # the option or rule that selected it, e.g. "--delete-dst-snapshots"
    facts: Facts
    versions: tuple[Version, ...] = ()  # snapshots/bookmarks that would go
    datasets: tuple[str, ...] = ()  # datasets that would go (a tree)
    data_bytes: int = 0  # bytes of data that would go, where known
    rollback_to: Optional[Version] = None

    def describe(self) -> str:
        """What would go, in words."""
        parts = []
        if self.datasets:
            parts.append(f"{len(self.datasets)} dataset(s) ({', '.join(self.datasets[:5])})")
        if self.versions:
            tags = " ".join(v.tag for v in self.versions[:10]) + (" ..." if len(self.versions) > 10 else "")
            parts.append(f"{len(self.versions)} snapshot(s)/bookmark(s) ({tags})")
        if self.rollback_to is not None:
            parts.append(f"changes since {self.rollback_to.tag}")
        if self.data_bytes:
            parts.append(f"{self.data_bytes} bytes of data")
        return "; ".join(parts) or "nothing named"


@dataclass(frozen=True)
class Decision:
    """The guard's answer: allowed, or refused with the reasons."""

    destruction: Destruction
    refusals: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return not self.refusals

    def commands(self) -> list[list[str]]:
        """The zfs argv lists that perform an allowed destroy or rollback (none for a forced receive)."""
        if not self.allowed:
            raise PermissionError(f"refused destruction has no commands: {self.refusals}")
        d = self.destruction
        if d.action is Action.DESTROY_VERSIONS:
            return [zfs.destroy(argument) for argument in destroy_arguments(d.versions)]
        if d.action is Action.DESTROY_TREE:
            return [zfs.destroy_recursive(d.dataset)]
        if d.action is Action.ROLLBACK:
            assert d.rollback_to is not None
            return [zfs.rollback(d.rollback_to, destroy_newer=bool(d.versions))]
        return []

    def message(self) -> str:
        d = self.destruction
        head = f"{d.dataset}: {d.action.value}: {d.describe()} ({d.why})"
        return head if self.allowed else f"{head} REFUSED: {'; '.join(self.refusals)}"


def refusals(destruction: Destruction) -> tuple[str, ...]:
    """Why `destruction` must not run (empty: it may). The whole rule set of the guard."""
    f = destruction.facts
    reasons = []
    if not f.asked:
        reasons.append(f"{destruction.why} does not apply")
    if not f.selected:
        reasons.append("not selected by the dataset filters")
    if f.source_lacks_dataset and not f.orphans_allowed:
        reasons.append(
            "the source has no such dataset (renamed or gone?); only --delete-dst-datasets or a 'dummy' "
            "source may remove what it lacks"
        )
    if f.on_source:
        reasons.append("a snapshot that would go still exists on the source (same GUID)")
    if f.latest_common:
        reasons.append("the latest common snapshot would go (the next incremental send needs it)")
    if f.held:
        reasons.append("held by another tool or job (zfs holds)")
    if f.holds_data and not f.data_allowed:
        reasons.append(f"it holds data (not empty: has snapshots, children or more than {EMPTY_BYTES} bytes)")
    if destruction.action is Action.DESTROY_TREE and f.holds_data and not f.source_lacks_dataset:
        reasons.append("the source still has this dataset and it holds data")
    return tuple(reasons)


def decide(destruction: Destruction) -> Decision:
    """Allow or refuse `destruction`. Pure."""
    return Decision(destruction, refusals(destruction))


def log_decision(decision: Decision) -> None:
    """The default listener: every allowed destruction and every refusal at WARNING."""
    if decision.allowed:
        log.warning("%s", decision.message())
    else:
        log.warning("%s; nothing was destroyed there", decision.message())


DecisionListener = Callable[[Decision], None]


def check(destruction: Destruction, listener: DecisionListener = log_decision) -> Decision:
    """Decide and report the decision to `listener` (the one place decisions are emitted)."""
    decision = decide(destruction)
    listener(decision)
    return decision


def is_empty(dataset: Dataset, snapshots: Sequence[Version], has_children: bool) -> bool:
    """zferry's "empty": its placeholder marker, or no snapshots, no children and <= 64 KiB used.

    The marker only excuses children (parents zferry created hold the replicas below them):
    a placeholder that received snapshots or data is not empty any more.
    """
    if snapshots:
        return False
    if dataset.used_by_dataset is None or dataset.used_by_dataset > EMPTY_BYTES:
        return False  # unknown size counts as data
    return dataset.is_placeholder or not has_children


def destroy_arguments(versions: Iterable[Version], max_chars: int = MAX_DESTROY_ARGUMENT) -> list[str]:
    """`zfs destroy` arguments for `versions`: `pool/ds@a,b,c` for snapshots of one dataset,
    each under `max_chars` characters where names allow; one `pool/ds#b` per bookmark (zfs
    destroys bookmarks one at a time). Order follows the input, grouped by dataset.
    """
    snapshots: dict[str, list[str]] = {}
    bookmarks: list[str] = []
    for version in versions:
        if version.is_bookmark:
            bookmarks.append(version.full_name)
        else:
            snapshots.setdefault(version.dataset, []).append(version.name)
    arguments: list[str] = []
    for dataset, names in snapshots.items():
        current = ""
        for name in names:
            if current and len(current) + 1 + len(name) <= max_chars:
                current += "," + name
            else:
                if current:
                    arguments.append(current)
                current = f"{dataset}@{name}"
        if current:
            arguments.append(current)
    return arguments + bookmarks
