"""Which `zfs send` invocations bring a destination from a base snapshot to the selected ones.

Pure: snapshots in, steps out. Example, source `a b c d e f` with `a` on the destination
and `c` excluded by a filter (selected: b d e f):

    -i a b   (a run of one snapshot)
    -i b d   (skips c: -I would send it)
    -I d f   (sends e and f)

With `no_stream` only the latest selected snapshot is sent: `-i a f`; with no base, `f` in
full (as syncoid and bzfs do). `-I` never starts at a bookmark (ZFS only takes a bookmark as
the base of `-i`), so the first step from one is `-i`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Optional

from zferry.model import Version


@dataclass(frozen=True)
class SendStep:
    """One `zfs send`: full when `base` is None, else `-I` (intermediates) or `-i`."""

    base: Optional[Version]
    target: Version
    intermediates: bool = False

    @property
    def kind(self) -> str:
        if self.base is None:
            return "full"
        return "-I" if self.intermediates else "-i"

    def __str__(self) -> str:
        if self.base is None:
            return f"full {self.target.full_name}"
        return f"{self.kind} {self.base.tag} {self.target.full_name}"


def send_steps(
    history: Sequence[Version],
    selected: Collection[int],
    base: Optional[Version],
    no_stream: bool = False,
) -> list[SendStep]:
    """Steps that send exactly the selected snapshots newer than `base`.

    `history` is the source dataset's snapshots (no bookmarks) oldest first; `selected` holds
    the guids of those to send. `base` is the snapshot or bookmark the destination already
    has (None: start with a full send of the oldest selected snapshot). With `no_stream` only
    the latest selected one is sent: `-i` from `base`, or in full when there is no base.
    """
    start = 0 if base is None else _first_after(history, base)
    todo = [i for i in range(start, len(history)) if history[i].guid in selected]
    if not todo:
        return []
    if no_stream:
        return [SendStep(base, history[todo[-1]])]
    steps: list[SendStep] = []
    if base is None:
        steps.append(SendStep(None, history[todo[0]]))
        base, todo = history[todo[0]], todo[1:]
        if not todo:
            return steps
    position = _index_of(history, base)  # None for a bookmark base
    k = 0
    while k < len(todo):
        run_end = k
        adjacent = position is not None and todo[k] == position + 1
        if adjacent and not base.is_bookmark:
            while run_end + 1 < len(todo) and todo[run_end + 1] == todo[run_end] + 1:
                run_end += 1
        target = history[todo[run_end]]
        steps.append(SendStep(base, target, intermediates=run_end > k))
        base, position, k = target, todo[run_end], run_end + 1
    return steps


def _first_after(history: Sequence[Version], base: Version) -> int:
    """Index of the first snapshot in `history` newer than `base` (by createtxg)."""
    for i, snap in enumerate(history):
        if snap.createtxg > base.createtxg:
            return i
    return len(history)


def _index_of(history: Sequence[Version], base: Version) -> Optional[int]:
    if base.is_bookmark:
        return None
    for i, snap in enumerate(history):
        if snap.guid == base.guid:
            return i
    return None


def sent_snapshots(steps: Sequence[SendStep], history: Sequence[Version]) -> list[Version]:
    """The source snapshots these steps send, oldest first (`history`: the source's snapshots)."""
    sent: dict[int, Version] = {}
    for step in steps:
        if step.base is not None and step.intermediates:
            for snap in history:
                if step.base.createtxg < snap.createtxg <= step.target.createtxg:
                    sent[snap.guid] = snap
        sent[step.target.guid] = step.target
    return sorted(sent.values(), key=lambda v: v.createtxg)
