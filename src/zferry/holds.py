"""This pair's `zfs hold` on the latest common snapshot, on both sides.

The steady state is one hold per pair, side and dataset, tagged `zferry-<hash of the
destination host and root>` (two jobs sharing a source keep their own), on the latest snapshot
both sides have in common: other tools' pruning cannot destroy the base of the next incremental
send. After a run that sent a dataset, the tag is released from every other snapshot of it
(healing what a killed run left) and set on the new latest common snapshot, in a few batched
calls per side: `zfs holds` only for the older snapshots, then `zfs release`, then `zfs hold` on
the new ones, which on the source `protect` (below) has already done. A dataset's first run
thus costs one `zfs hold` per side. A run that sends nothing touches no hold.

Every snapshot a dataset's send carries is held on the source too (`protect`, started with the
send; a snapshot cannot be destroyed while `zfs send` reads it, and the run waits for the hold
before it counts the dataset as sent): a run killed after the destination received them, but before
it could bookmark them or move the hold, must not let a pruning run destroy them on the source, or
the destination would hold snapshots newer than the latest common one (a conflict only a forced
rollback resolves). The next run that sends the dataset releases them with the other older holds.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Callable

from zferry import destructive, zfs
from zferry.errors import CommandError
from zferry.exec.background import Background
from zferry.exec.host import Host
from zferry.exec.runner import Runner
from zferry.inventory import Side
from zferry.model import Inventory, Version
from zferry.observe import audit
from zferry.plan.replication import DatasetPlan
from zferry.plan.steps import sent_snapshots

log = logging.getLogger("zferry")


def hold_tag(dst: Side) -> str:
    """The tag of this pair's holds: `zferry-` and a short hash of the destination host and root."""
    digest = hashlib.sha256(f"{dst.host.label}:{dst.root}".encode()).hexdigest()[:12]
    return f"zferry-{digest}"


def holds_of(runner: Runner, host: Host, snapshots: Sequence[str]) -> dict[str, set[str]]:
    """The hold tags on `snapshots` (full names), in batched `zfs holds` calls."""
    found: dict[str, set[str]] = {}
    for batch in zfs.argument_batches(snapshots):
        found.update(zfs.parse_holds(runner.run(host, zfs.list_holds(batch), classify=zfs.classify_error)))
    return found


def release_own(runner: Runner, host: Host, tag: str, snapshots: Sequence[str], why: str) -> set[str]:
    """Release `tag` wherever it is on `snapshots` (before destroying them for `why`: recorded in the
    audit log); return those still held by someone else."""
    if not snapshots:
        return set()
    found = holds_of(runner, host, snapshots)
    for batch in zfs.argument_batches(sorted(s for s, tags in found.items() if tag in tags)):
        destructive.run(runner, host, zfs.release(tag, batch), audit.RELEASE_HOLDS, batch, f"before destroying: {why}")
    return {s for s, tags in found.items() if tags - {tag}}


def candidates(inventory: Inventory, dataset: str) -> list[str]:
    """Snapshots of `dataset` that may carry a hold: those with holds when the listing counted them."""
    snapshots = inventory.snapshots(dataset)
    return [v.full_name for v in snapshots if v.userrefs > 0 or not inventory.detailed]


def _run_batched(runner: Runner, host: Host, names: Sequence[str], build: Callable[[list[str]], list[str]]) -> None:
    for batch in zfs.argument_batches(names):
        runner.run(host, build(batch), changes=True, classify=zfs.classify_error)


@dataclass
class HoldKeeper:
    """Collects the datasets a run sent (`note`, an `on_sent` listener), then moves the holds (`apply`)."""

    runner: Runner
    src: Side
    dst: Side
    sent: dict[str, tuple[str, str]] = field(default_factory=dict)  # src dataset -> (dst dataset, snapshot name)
    destroyed: set[str] = field(default_factory=set)  # destination snapshots the run destroyed
    protected: dict[str, set[str]] = field(default_factory=dict)  # src dataset -> snapshots held while sending
    confirmed: set[str] = field(default_factory=set)  # source snapshots this run's own `zfs hold` held
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, plan: DatasetPlan, src_versions: Sequence[Version]) -> None:
        if plan.steps:
            with self._lock:
                self.sent[plan.src] = (plan.dst, plan.steps[-1].target.name)
                self.destroyed.update(v.full_name for v in (*plan.destroy, *plan.newer))

    def protect(self, plan: DatasetPlan, src_versions: Sequence[Version]) -> None:
        """Hold on the source every snapshot `plan` sends, while it sends them (see the module's docstring)."""
        if self.runner.dry_run or not plan.steps:
            return
        names = [v.full_name for v in sent_snapshots(plan.steps, [v for v in src_versions if not v.is_bookmark])]
        with self._lock:
            self.protected.setdefault(plan.src, set()).update(names)
        try:
            _run_batched(self.runner, self.src.host, names, lambda batch: zfs.hold(hold_tag(self.dst), batch))
            with self._lock:
                self.confirmed.update(names)
        except CommandError as error:
            if not zfs.already_exists(error):  # "tag already exists": a killed run's hold is as good as ours
                log.warning("%s: could not hold %s while sending it (%s)", self.src, plan.src, error)

    def apply(self, src_inventory: Inventory, dst_inventory: Inventory) -> None:
        """Release this pair's tag from the sent datasets' older snapshots and hold the new latest one."""
        if not self.sent or self.runner.dry_run:
            return
        tag = hold_tag(self.dst)
        dst_side = Background(lambda: self._move_logged(tag, self.dst, dst_inventory, 1), "zferry-holds-dst")
        self._move_logged(tag, self.src, src_inventory, 0)  # both sides at once
        dst_side.result()
        log.debug("%s: hold %s moved to the latest common snapshot of %d dataset(s)", self.dst, tag, len(self.sent))

    def _move_logged(self, tag: str, side: Side, inventory: Inventory, index: int) -> None:
        try:
            self._move(tag, side, inventory, index)
        except CommandError as error:  # the data is safe; only the extra protection is missing
            log.warning("%s: could not move hold %s (%s); with 'zfs allow', grant hold,release", side, tag, error)

    def _move(self, tag: str, side: Side, inventory: Inventory, index: int) -> None:
        datasets = [(s, d)[index] for s, (d, _) in self.sent.items()]
        targets = [f"{(s, d)[index]}@{snap}" for s, (d, snap) in self.sent.items()]
        skip = {*targets, *self.destroyed}
        listed = _flatten(candidates(inventory, ds) for ds in datasets)
        if index == 0:  # held while sending; the listing, older than those holds, does not count them
            listed += sorted(_flatten(sorted(self.protected.get(s, ())) for s in self.sent))
        older = [n for n in dict.fromkeys(listed) if n not in skip]
        found = holds_of(self.runner, side.host, older)
        ours = [n for n in older if tag in found.get(n, set())]
        _run_batched(self.runner, side.host, ours, lambda batch: zfs.release(tag, batch))  # first: never two
        known = self.confirmed if index == 0 else set()  # held by `protect` in this run: nothing to ask
        self._hold_new(tag, side, [t for t in targets if t not in known])

    def _hold_new(self, tag: str, side: Side, targets: list[str]) -> None:
        """Hold `targets`, snapshots this run received or sent, which rarely carry the tag already:
        hold them at once; only when zfs says one has it (a hold of many is all or nothing) ask
        which have it and hold the others."""
        try:
            _run_batched(self.runner, side.host, targets, lambda batch: zfs.hold(tag, batch))
        except CommandError as error:
            if not zfs.already_exists(error):  # "tag already exists" on one of them
                raise
            found = holds_of(self.runner, side.host, targets)
            missing = [t for t in targets if tag not in found.get(t, set())]
            _run_batched(self.runner, side.host, missing, lambda batch: zfs.hold(tag, batch))


def _flatten(lists: Iterable[list[str]]) -> list[str]:
    return [item for sub in lists for item in sub]
