"""`--delete-dst-snapshots[=snapshots|bookmarks]`: delete what the snapshot filters select (or,
with `--delete-dst-snapshots-except`, what they do not select) on each selected destination dataset.

The rules themselves are pure (`zferry.lifecycle.retention`); this module feeds them the bulk
listings and runs the batched `zfs destroy pool/ds@a,b,c` calls, datasets in parallel. Held
snapshots (`zfs hold`, seen in the `userrefs` column) are skipped with a note: ZFS would refuse
the whole batch otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Optional

from zferry import zfs
from zferry.exec.runner import Runner
from zferry.inventory import Side
from zferry.lifecycle.config import LifecycleConfig
from zferry.lifecycle.retention import destroy_arguments, snapshots_to_delete
from zferry.model import Inventory, Version
from zferry.plan.replication import latest_common
from zferry.replicate import ReplicationConfig
from zferry.retry import call_idempotent
from zferry.schedule import run_tree

log = logging.getLogger("zferry")


@dataclass
class PruneResult:
    """What was deleted (dataset -> versions), what was held, and what failed."""

    deleted: dict[str, list[Version]] = field(default_factory=dict)
    held: list[Version] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.deleted.values())


def protected_guids(
    src_versions: Optional[tuple[Version, ...]], bookmarks: bool, other_kind: bool
) -> Optional[set[int]]:
    """GUIDs the source still has: of the pruned kind, plus the other kind if `other_kind`. None: no source."""
    if src_versions is None:
        return None
    return {v.guid for v in src_versions if v.is_bookmark == bookmarks or other_kind}


def prune_dataset_versions(
    dst_name: str,
    dst: Inventory,
    src_versions: Optional[tuple[Version, ...]],
    config: ReplicationConfig,
    lifecycle: LifecycleConfig,
    now: float,
) -> tuple[list[Version], list[Version]]:
    """(to delete, held and so kept) for one destination dataset. Pure."""
    bookmarks = lifecycle.delete_snapshots == "bookmarks"
    versions = dst.bookmarks(dst_name) if bookmarks else dst.snapshots(dst_name)
    common = latest_common(src_versions, dst.snapshots(dst_name)) if src_versions else None
    candidates = snapshots_to_delete(
        versions,
        config.snapshots,
        now,
        except_selected=lifecycle.delete_except,
        source_guids=protected_guids(src_versions, bookmarks, lifecycle.crosscheck_other_kind),
        latest_common_guid=common.guid if common is not None else None,
    )
    held = [v for v in candidates if v.userrefs > 0]
    return [v for v in candidates if v.userrefs == 0], held


def prune(
    runner: Runner,
    config: ReplicationConfig,
    lifecycle: LifecycleConfig,
    src: Optional[Side],
    dst: Side,
    src_inventory: Optional[Inventory],
    dst_inventory: Inventory,
) -> PruneResult:
    """Delete the selected snapshots or bookmarks on every selected destination dataset."""
    now = time.time()
    result = PruneResult()
    lock = threading.Lock()
    props = {d.name: d.user_props for d in dst_inventory.datasets.values()}
    selected = config.datasets.select(dst.root, list(dst_inventory.datasets), props, config.recursive)

    def one(dst_name: str) -> None:
        src_versions: Optional[tuple[Version, ...]] = None
        if src is not None:
            src_name = src.root + dst_name[len(dst.root) :]
            src_versions = src_inventory.versions.get(src_name, ()) if src_inventory is not None else ()
        doomed, held = prune_dataset_versions(dst_name, dst_inventory, src_versions, config, lifecycle, now)
        for version in held:
            log.info("%s: not deleting %s: it is held (zfs holds %s)", dst_name, version.tag, version.full_name)
        if doomed:
            kind = "bookmark" if doomed[0].is_bookmark else "snapshot"
            log.warning("%s: deleting %d %s(s): %s", dst_name, len(doomed), kind, " ".join(v.tag for v in doomed))
        for argument in destroy_arguments(doomed):
            call_idempotent(
                partial(runner.run, dst.host, zfs.destroy(argument), changes=True, classify=zfs.classify_error),
                dst.retry,
                f"{dst_name}: zfs destroy",
                zfs.does_not_exist,
            )
        with lock:
            result.held.extend(held)
            if doomed:
                result.deleted[dst_name] = doomed

    outcome = run_tree(selected, one, config.threads, "dataset")
    result.failed = {name: str(error) for name, error in outcome.failed.items()}
    for name, error in result.failed.items():
        log.error("%s: deleting snapshots failed: %s", name, error)
    return result


def without_versions(inventory: Inventory, deleted: dict[str, list[Version]]) -> Inventory:
    """The inventory after the deletions (also used to show what a dry run would leave)."""
    versions = dict(inventory.versions)
    for dataset, gone in deleted.items():
        ids = {(v.name, v.is_bookmark) for v in gone}
        versions[dataset] = tuple(v for v in versions.get(dataset, ()) if (v.name, v.is_bookmark) not in ids)
    return Inventory(inventory.datasets, versions, inventory.detailed)
