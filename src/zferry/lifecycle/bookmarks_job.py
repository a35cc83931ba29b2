"""`--create-bookmarks`: after a dataset was sent, bookmark the sent snapshots on the source.

A bookmark keeps the GUID and transaction group of its snapshot, so the next incremental send
can start from it after the snapshot itself was destroyed on the source (FR-REP-005). Which
sent snapshots are bookmarked depends on the mode: `all` of them; `hourly` those whose name
ends in an hourly or longer period (`_hourly`, `_12hourly`, `_daily`, ... `_yearly`);
`minutely` and `secondly` add those periods. The target of a full send and the latest sent
snapshot are always bookmarked (unless the mode is `none`): they are the bases of the next
incremental send.

A bookmark takes the name of its snapshot. Bookmarks keep their names when snapshots are
renamed, or destroyed and made again, so a bookmark of another snapshot may hold that name
already: then the new one gets part of the GUID at the end of the name's timestamp
(`prod_onsite_2026-10-25_02:00:00-1a2b3c4d_hourly`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from functools import partial
from typing import Optional

from zferry import zfs
from zferry.errors import CommandError
from zferry.exec.runner import Runner
from zferry.inventory import Side
from zferry.lifecycle.naming import with_timestamp_tag
from zferry.lifecycle.periods import parse_period
from zferry.model import Version
from zferry.plan.replication import DatasetPlan
from zferry.plan.steps import sent_snapshots
from zferry.retry import call_idempotent
from zferry.validate import MAX_NAME_LENGTH

log = logging.getLogger("zferry")

_UNITS_BY_MODE = {
    "hourly": frozenset(("hourly", "daily", "weekly", "monthly", "yearly")),
    "minutely": frozenset(("minutely", "hourly", "daily", "weekly", "monthly", "yearly")),
    "secondly": frozenset(("secondly", "minutely", "hourly", "daily", "weekly", "monthly", "yearly")),
}


def _period_unit(name: str) -> str:
    period = parse_period(name.rpartition("_")[2])
    return period.unit if period is not None else ""


def bookmark_candidates(
    plan: DatasetPlan, src_versions: Sequence[Version], mode: str
) -> list[tuple[Version, Optional[str]]]:
    """The snapshots of this plan to bookmark in `mode` with the bookmark name for each (None:
    every name it could take is taken), skipping those that already have a bookmark (same GUID)."""
    if mode == "none" or not plan.steps:
        return []
    history = [v for v in src_versions if not v.is_bookmark]
    always = {plan.steps[-1].target.guid} | {s.target.guid for s in plan.steps if s.base is None}
    units = _UNITS_BY_MODE.get(mode)
    wanted = [
        s
        for s in sent_snapshots(plan.steps, history)
        if units is None or s.guid in always or _period_unit(s.name) in units
    ]
    bookmarked = {v.guid for v in src_versions if v.is_bookmark}
    taken = {v.name for v in src_versions if v.is_bookmark}
    chosen: list[tuple[Version, Optional[str]]] = []
    for snap in wanted:
        if snap.guid in bookmarked:
            continue
        name = free_bookmark_name(snap, taken)
        if name is not None:
            taken.add(name)
        chosen.append((snap, name))
    return chosen


def free_bookmark_name(snap: Version, taken: Collection[str]) -> Optional[str]:
    """The snapshot's own name for its bookmark; if a bookmark of another snapshot has it, the
    name with 8, then all 16, hex digits of the GUID at the end of its timestamp; else None."""
    guid = f"{snap.guid:016x}"
    for name in (snap.name, with_timestamp_tag(snap.name, f"-{guid[:8]}"), with_timestamp_tag(snap.name, f"-{guid}")):
        if name not in taken and len(f"{snap.dataset}#{name}") <= MAX_NAME_LENGTH:
            return name
    return None


class Bookmarker:
    """The replication hook that creates the bookmarks; counts what it created."""

    def __init__(self, runner: Runner, src: Side, mode: str) -> None:
        self.runner = runner
        self.src = src
        self.mode = mode
        self.created = 0
        self._lock = threading.Lock()

    def __call__(self, plan: DatasetPlan, src_versions: Sequence[Version]) -> None:
        for snap, name in bookmark_candidates(plan, src_versions, self.mode):
            if name is None:
                log.warning(
                    "%s: cannot bookmark %s: bookmarks of other snapshots hold #%s and the names with its GUID; "
                    "until it has a bookmark, keep the snapshot itself as the base of the next send, or free a "
                    "name (zfs rename or zfs destroy %s#...)",
                    plan.src,
                    snap.tag,
                    snap.name,
                    plan.src,
                )
                continue
            if name != snap.name:
                log.info(
                    "%s: bookmark #%s is taken by another snapshot; bookmarking %s as #%s",
                    plan.src,
                    snap.name,
                    snap.tag,
                    name,
                )
            try:
                call_idempotent(
                    partial(
                        self.runner.run,
                        self.src.host,
                        zfs.bookmark(snap, name),
                        changes=True,
                        classify=zfs.classify_error,
                    ),
                    self.src.retry,
                    f"{plan.src}: zfs bookmark {snap.tag}",
                    zfs.already_exists,
                )
            except CommandError as error:  # the data is replicated; a missing bookmark only costs safety
                log.warning("%s: could not bookmark %s: %s", plan.src, snap.tag, error)
                continue
            with self._lock:
                self.created += 1
