"""One root pair, all steps, in bzfs's order: create due source snapshots, replicate (and bookmark
what was sent), delete destination datasets the source lacks, delete destination snapshots or
bookmarks, delete empty destination datasets.

Each side is listed once (`zfs list` of the whole tree) and listed again only when a step
changed it; the deletion steps then work on the listing as they leave it, so a dry run shows
what would follow. The deletion steps run only after replication succeeded.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Callable, Optional

from zferry import fencing
from zferry.after_send import AfterSend
from zferry.errors import ZferryError
from zferry.exec.runner import Runner
from zferry.inventory import Side, list_inventory
from zferry.lifecycle.config import LifecycleConfig
from zferry.model import Inventory
from zferry.replicate import PairReplication, PairReport, ReplicationConfig

log = logging.getLogger("zferry")


@dataclass
class LifecycleReport:
    """What the lifecycle steps of one pair did."""

    created: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    bookmarks: int = 0
    deleted: int = 0
    held: int = 0
    deleted_datasets: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # datasets whose pruning the destroy guard refused
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """The non-zero counts, e.g. '2 snapshots created, 5 deleted'; '' when nothing happened."""
        parts = [
            f"{self.created} snapshot(s) created" if self.created else "",
            f"cache: {self.cache_hits} hit(s), {self.cache_misses} miss(es)"
            if self.cache_hits or self.cache_misses
            else "",
            f"{self.bookmarks} bookmark(s) created" if self.bookmarks else "",
            f"{self.deleted} snapshot(s)/bookmark(s) deleted" if self.deleted else "",
            f"{self.held} held and kept" if self.held else "",
            f"{len(self.deleted_datasets)} dataset tree(s) deleted" if self.deleted_datasets else "",
            f"{len(self.refused)} protected by the destroy guard" if self.refused else "",
            f"{len(self.failed)} failed" if self.failed else "",
        ]
        return ", ".join(p for p in parts if p)


def _props(config: ReplicationConfig) -> list[str]:
    return [config.datasets.exclude_property] if config.datasets.exclude_property else []


def _must_list(runner: Runner, side: Side, config: ReplicationConfig) -> Inventory:
    inventory = list_inventory(runner, side, _props(config), detail=True)
    if inventory is None:
        raise ZferryError(f"source dataset {side} does not exist; check the name, or give 'dummy' for no source")
    return inventory


def run_pair(
    runner: Runner,
    config: ReplicationConfig,
    lifecycle: LifecycleConfig,
    src: Optional[Side],
    dst: Optional[Side],
    make_replication: Callable[[Side, Side], PairReplication],
) -> tuple[Optional[PairReport], LifecycleReport]:
    """Run every configured step for one pair; `None` for a side named 'dummy'."""
    report = LifecycleReport()
    anchor = src or dst
    if anchor is not None:  # absolute --include/--exclude-dataset names become relative to this pair's roots
        config = dataclasses.replace(config, datasets=config.datasets.relative_to(anchor.root))
    src_inventory: Optional[Inventory] = None
    deletes = dst is not None and lifecycle.deletes_on_dst
    src_needed_later = src is not None and (not lifecycle.skip_replication or deletes)
    if lifecycle.create is not None and src is not None:
        # The lifecycle steps' modules load only when configured: start-up time counts (bench/).
        from zferry.lifecycle.create_job import create_snapshots
        from zferry.observe.snapshot_cache import SnapshotCache

        cache = SnapshotCache(lifecycle.cache_dir, src.host.label, src.root) if lifecycle.cache_dir else None
        if cache is None or src_needed_later or lifecycle.create.even_if_not_due:
            src_inventory = _must_list(runner, src, config)
        created = create_snapshots(
            runner, src, lifecycle.create, config.datasets, config.recursive, src_inventory, cache
        )
        report.created, report.cache_hits, report.cache_misses = created.count, created.cache_hits, created.cache_misses
        if created.count and not runner.dry_run:
            src_inventory = None  # stale: the new snapshots' GUIDs are only known after listing again
    pair_report: Optional[PairReport] = None
    dst_inventory: Optional[Inventory] = None
    if not lifecycle.skip_replication:
        assert src is not None and dst is not None
        job = make_replication(src, dst)
        job.config = dataclasses.replace(job.config, datasets=config.datasets)  # relative to this pair
        after = AfterSend(runner, src, dst, lifecycle.create_bookmarks, config.threads)
        job.on_sent = after.on_sent
        job.before_send = after.before_send
        pair_report = job.run(src_inventory)
        after.finish(*job.inventories)
        report.bookmarks = after.bookmarks
        src_inventory, dst_inventory = job.inventories
        if not pair_report.ok:
            if deletes:
                log.warning("%s: replication failed; not deleting anything on %s", src, dst)
            return pair_report, report
        resumed = any(d.resume_token for d in dst_inventory.datasets.values())
        if (pair_report.updated or resumed) and not runner.dry_run:
            dst_inventory = None  # it received snapshots: list it again
        if src_inventory.cached:
            src_inventory = None  # the deletion steps never decide on the snapshot cache's lists
        if dst_inventory is not None and dst_inventory.cached:
            dst_inventory = None
    if dst is None or not deletes:
        return pair_report, report
    _delete(runner, config, lifecycle, src, dst, src_inventory, dst_inventory, report)
    return pair_report, report


def _delete(
    runner: Runner,
    config: ReplicationConfig,
    lifecycle: LifecycleConfig,
    src: Optional[Side],
    dst: Side,
    src_inventory: Optional[Inventory],
    dst_inventory: Optional[Inventory],
    report: LifecycleReport,
) -> None:
    from zferry.lifecycle.orphans_job import delete_empty, delete_orphans  # only when deleting
    from zferry.lifecycle.prune_job import prune, without_versions

    if dst_inventory is None:
        dst_inventory = list_inventory(runner, dst, _props(config), detail=True)
    if dst_inventory is None:
        log.info("%s does not exist: nothing to delete there", dst)
        return
    if src is not None and src_inventory is None:
        src_inventory = _must_list(runner, src, config)
    if src is not None and src_inventory is not None:  # deleting what the source lacks is replicating too
        refused = fencing.refusal(src_inventory.datasets.get(src.root), dst_inventory.datasets.get(dst.root))
        if refused is not None:
            log.error("%s -> %s: not deleting anything: %s", src, dst, refused)
            report.failed[dst.root] = refused
            return
    if lifecycle.delete_datasets:
        tops, dst_inventory = delete_orphans(
            runner, config, dst, dst_inventory, src.root if src else "", src_inventory or Inventory.empty()
        )
        report.deleted_datasets += tops
    if lifecycle.delete_snapshots:
        pruned = prune(runner, config, lifecycle, src, dst, src_inventory, dst_inventory)
        report.deleted, report.held, report.failed = pruned.count, len(pruned.held), pruned.failed
        report.refused += pruned.refused
        dst_inventory = without_versions(dst_inventory, pruned.deleted)
        if pruned.failed:
            return
    if lifecycle.delete_empty:
        source = (src.root, src_inventory or Inventory.empty()) if src is not None else None
        tops, dst_inventory = delete_empty(
            runner, config, dst, dst_inventory, lifecycle.delete_empty, source, lifecycle.delete_datasets
        )
        report.deleted_datasets += tops
