"""Which snapshots of a dataset are selected: name regexes, times and ranks, grouped filters.

A `SnapshotFilter` is a union of groups; a snapshot is selected when any group selects it.
Within a group every criterion must hold (AND), applied one after the other: first the name
regexes, then each `--include-snapshot-times-and-ranks` in the order given (or the other way
round with `ranks_first`, for command lines that give the times before the regexes; order
matters because ranks count the snapshots that reach them). The same filter drives
replication and deletion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

from zferry.model import Version
from zferry.select.regex import NameFilter

if TYPE_CHECKING:
    from zferry.select.times import TimesAndRanks  # built by the options that need it


def _name_test(names: NameFilter) -> Optional[Callable[[str], bool]]:
    """A fast test for the common filters, or None when `names` accepts everything."""
    if not names.include and not names.exclude:
        return None
    if not names.exclude and len(names.include) == 1 and not names.include[0].negated:
        fullmatch = names.include[0].regex.fullmatch
        return lambda name: fullmatch(name) is not None
    return names.accepts


@dataclass(frozen=True)
class SnapshotGroup:
    """One filter group: names must pass `names`, and then every `times_and_ranks` in turn."""

    names: NameFilter = field(default_factory=NameFilter)
    times_and_ranks: tuple[TimesAndRanks, ...] = ()
    ranks_first: bool = False

    def _by_name(self, snapshots: Sequence[Version]) -> Sequence[Version]:
        test = _name_test(self.names)
        if test is None:
            return snapshots
        return [s for s in snapshots if test(s.name)]

    def select(self, snapshots: Sequence[Version], now: float) -> list[Version]:
        """The snapshots (given and returned oldest first) this group selects at time `now`."""
        current: Sequence[Version] = snapshots
        if not self.ranks_first:
            current = self._by_name(current)
        for step in self.times_and_ranks:
            current = step.select(current, now)
        if self.ranks_first:
            current = self._by_name(current)
        return list(current)


@dataclass(frozen=True)
class SnapshotFilter:
    """A union of filter groups. No groups, or one empty group, selects everything."""

    groups: tuple[SnapshotGroup, ...] = (SnapshotGroup(),)

    def select(self, snapshots: Sequence[Version], now: float) -> list[Version]:
        """The selected snapshots, in the order given (oldest first)."""
        if not self.groups:
            return list(snapshots)
        if len(self.groups) == 1:
            return self.groups[0].select(snapshots, now)
        chosen: set[int] = set()
        for group in self.groups:
            chosen.update(map(id, group.select(snapshots, now)))
        return [s for s in snapshots if id(s) in chosen]

    @property
    def selects_all(self) -> bool:
        return all(g == SnapshotGroup() for g in self.groups)
