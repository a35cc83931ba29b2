"""`--delete-dst-datasets` and `--delete-empty-dst-datasets`: remove destination subtrees.

Which subtrees go is decided by `zferry.lifecycle.dataset_deletion` (pure); this module runs
one `zfs destroy -r` per subtree top, logged at WARNING, and returns the inventory without them
(so a later step, or a dry run, sees what would be left).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from zferry import zfs
from zferry.exec.runner import Runner
from zferry.inventory import Side
from zferry.lifecycle.dataset_deletion import empty_tops, orphan_tops, without_subtrees
from zferry.model import Inventory
from zferry.replicate import ReplicationConfig

log = logging.getLogger("zferry")


def _selected(config: ReplicationConfig, dst: Side, inventory: Inventory) -> list[str]:
    props = {d.name: d.user_props for d in inventory.datasets.values()}
    return config.datasets.select(dst.root, list(inventory.datasets), props, config.recursive)


def _destroy(runner: Runner, dst: Side, tops: Sequence[str], why: str) -> None:
    for top in tops:
        log.warning("%s: destroying %s and everything below it (%s)", dst, top, why)
        runner.run(dst.host, zfs.destroy_recursive(top), changes=True, classify=zfs.classify_error)


def delete_orphans(
    runner: Runner,
    config: ReplicationConfig,
    dst: Side,
    dst_inventory: Inventory,
    src_root: str,
    src_inventory: Inventory,
) -> tuple[list[str], Inventory]:
    """Destroy selected destination subtrees the source lacks; return their tops and what is left."""
    src_relative = {"" if n == src_root else n[len(src_root) + 1 :] for n in src_inventory.datasets}
    tops = orphan_tops(dst_inventory, dst.root, _selected(config, dst, dst_inventory), src_relative)
    _destroy(runner, dst, tops, "not on the source; --delete-dst-datasets")
    return tops, without_subtrees(dst_inventory, tops)


def delete_empty(
    runner: Runner, config: ReplicationConfig, dst: Side, dst_inventory: Inventory, mode: str
) -> tuple[list[str], Inventory]:
    """Destroy selected destination subtrees without snapshots (and bookmarks, unless `mode` is 'snapshots')."""
    selected = _selected(config, dst, dst_inventory)
    tops = empty_tops(dst_inventory, selected, count_bookmarks=mode != "snapshots")
    _destroy(runner, dst, tops, "no snapshots in it; --delete-empty-dst-datasets")
    return tops, without_subtrees(dst_inventory, tops)
