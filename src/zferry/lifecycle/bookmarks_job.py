"""`--create-bookmarks`: after a dataset was sent, bookmark the sent snapshots on the source.

A bookmark keeps the GUID and transaction group of its snapshot, so the next incremental send
can start from it after the snapshot itself was destroyed on the source (FR-REP-005). A
bookmark takes the name of its snapshot. Which sent snapshots are bookmarked depends on the
mode: `all` of them; `hourly` those whose name ends in an hourly or longer period (`_hourly`,
`_12hourly`, `_daily`, ... `_yearly`); `minutely` and `secondly` add those periods. The target
of a full send and the latest sent snapshot are always bookmarked (unless the mode is `none`):
they are the bases of the next incremental send.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import partial

from zferry import zfs
from zferry.errors import CommandError
from zferry.exec.runner import Runner
from zferry.inventory import Side
from zferry.lifecycle.periods import parse_period
from zferry.model import Version
from zferry.plan.replication import DatasetPlan
from zferry.plan.steps import sent_snapshots
from zferry.retry import call_idempotent

log = logging.getLogger("zferry")

_UNITS_BY_MODE = {
    "hourly": frozenset(("hourly", "daily", "weekly", "monthly", "yearly")),
    "minutely": frozenset(("minutely", "hourly", "daily", "weekly", "monthly", "yearly")),
    "secondly": frozenset(("secondly", "minutely", "hourly", "daily", "weekly", "monthly", "yearly")),
}


def _period_unit(name: str) -> str:
    period = parse_period(name.rpartition("_")[2])
    return period.unit if period is not None else ""


def bookmark_candidates(plan: DatasetPlan, src_versions: Sequence[Version], mode: str) -> list[Version]:
    """The snapshots of this plan to bookmark in `mode`, skipping those already bookmarked (by GUID or name)."""
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
    names = {v.name for v in src_versions if v.is_bookmark}
    return [s for s in wanted if s.guid not in bookmarked and s.name not in names]


class Bookmarker:
    """The replication hook that creates the bookmarks; counts what it created."""

    def __init__(self, runner: Runner, src: Side, mode: str) -> None:
        self.runner = runner
        self.src = src
        self.mode = mode
        self.created = 0
        self._lock = threading.Lock()

    def __call__(self, plan: DatasetPlan, src_versions: Sequence[Version]) -> None:
        for snap in bookmark_candidates(plan, src_versions, self.mode):
            try:
                call_idempotent(
                    partial(
                        self.runner.run,
                        self.src.host,
                        zfs.bookmark(snap, snap.name),
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
