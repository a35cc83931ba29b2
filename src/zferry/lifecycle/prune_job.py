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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

from zferry import destructive
from zferry.exec.runner import Runner
from zferry.inventory import Side
from zferry.lifecycle.config import LifecycleConfig
from zferry.lifecycle.retention import snapshots_to_delete
from zferry.model import Inventory, Version
from zferry.plan import guard
from zferry.plan.replication import latest_common
from zferry.replicate import ReplicationConfig
from zferry.schedule import run_tree

log = logging.getLogger("zferry")


@dataclass
class PruneResult:
    """What was deleted (dataset -> versions), what was held, and what failed."""

    deleted: dict[str, list[Version]] = field(default_factory=dict)
    held: list[Version] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # datasets the destroy guard protected

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


def prune_destruction(
    dst_name: str,
    doomed: Sequence[Version],
    src_versions: Optional[tuple[Version, ...]],
    source_has_dataset: bool,
    lifecycle: LifecycleConfig,
    common_guid: Optional[int],
) -> guard.Destruction:
    """The pruning of one dataset as data for the destroy guard. `src_versions` None: a `dummy` source.

    A source counterpart that lists no snapshot or bookmark counts as missing: its listing
    cannot vouch for anything (a renamed, recreated or compromised source).
    """
    bookmarks = lifecycle.delete_snapshots == "bookmarks"
    source_guids = protected_guids(src_versions, bookmarks, lifecycle.crosscheck_other_kind) or set()
    facts = guard.Facts(
        asked=True,
        selected=True,
        source_lacks_dataset=src_versions is not None and not (source_has_dataset and src_versions),
        orphans_allowed=src_versions is None or lifecycle.delete_datasets,
        on_source=any(v.guid in source_guids for v in doomed),
        latest_common=common_guid is not None and any(v.guid == common_guid for v in doomed),
        held=any(v.userrefs > 0 for v in doomed),
        data_allowed=True,
    )
    return guard.Destruction(
        guard.Action.DESTROY_VERSIONS, dst_name, "--delete-dst-snapshots", facts, versions=tuple(doomed)
    )


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
        has_dataset = False
        if src is not None:
            src_name = src.root + dst_name[len(dst.root) :]
            src_versions = src_inventory.versions.get(src_name, ()) if src_inventory is not None else ()
            has_dataset = src_inventory is not None and src_name in src_inventory.datasets
        doomed, held = prune_dataset_versions(dst_name, dst_inventory, src_versions, config, lifecycle, now)
        for version in held:
            log.info("%s: not deleting %s: it is held (zfs holds %s)", dst_name, version.tag, version.full_name)
        common = latest_common(src_versions, dst_inventory.snapshots(dst_name)) if src_versions else None
        allowed = True
        if doomed:
            destruction = prune_destruction(
                dst_name, doomed, src_versions, has_dataset, lifecycle, common.guid if common else None
            )
            decision = destructive.check(runner, dst.host, destruction)
            allowed = decision.allowed
            if allowed:
                kind = "bookmark" if doomed[0].is_bookmark else "snapshot"
                log.info("%s: deleting %d %s(s): %s", dst_name, len(doomed), kind, " ".join(v.tag for v in doomed))
                destructive.execute(runner, dst.host, decision, dst.retry)
        with lock:
            result.held.extend(held)
            if doomed and allowed:
                result.deleted[dst_name] = doomed
            elif doomed:
                result.refused.append(dst_name)

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
