"""`--delete-dst-datasets` and `--delete-empty-dst-datasets`: remove destination subtrees.

Which subtrees go is decided by `zferry.lifecycle.dataset_deletion` (pure); this module runs
one `zfs destroy -r` per subtree top that the destroy guard allows (this pair's own holds in
it released first), logged at WARNING, and returns the inventory without them
(so a later step, or a dry run, sees what would be left).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Callable, Optional

from zferry import destructive
from zferry.exec.runner import Runner
from zferry.holds import candidates, hold_tag, release_own
from zferry.inventory import Side
from zferry.lifecycle.dataset_deletion import empty_tops, is_empty, orphan_tops, subtree, without_subtrees
from zferry.model import Inventory
from zferry.plan import guard
from zferry.replicate import ReplicationConfig

log = logging.getLogger("zferry")


def _selected(config: ReplicationConfig, dst: Side, inventory: Inventory) -> list[str]:
    props = {d.name: d.user_props for d in inventory.datasets.values()}
    return config.datasets.select(dst.root, list(inventory.datasets), props, config.recursive)


def _destroy(
    runner: Runner, dst: Side, inventory: Inventory, tops: Sequence[str], facts: Callable[[str], guard.Facts], why: str
) -> list[str]:
    """Destroy each top (`zfs destroy -r`) that the destroy guard allows; return those destroyed."""
    done = []
    for top in tops:
        names = subtree(inventory, top)
        destruction = guard.Destruction(
            guard.Action.DESTROY_TREE,
            top,
            why,
            facts(top),
            versions=tuple(v for n in names for v in inventory.versions.get(n, ())),
            datasets=tuple(names),
            data_bytes=sum(inventory.datasets[n].used_by_dataset or 0 for n in names),
        )
        if guard.decide(destruction).allowed:  # release this pair's own holds only where it may go
            snapshots = [s for n in names for s in candidates(inventory, n)]
            others = release_own(runner, dst.host, hold_tag(dst), snapshots, why)
            destruction = replace(destruction, facts=replace(destruction.facts, held=bool(others)))
        decision = destructive.check(runner, dst.host, destruction)
        if decision.allowed:
            destructive.execute(runner, dst.host, decision)
            done.append(top)
    return done


def _relative_names(src_root: str, src_inventory: Inventory) -> set[str]:
    return {"" if n == src_root else n[len(src_root) + 1 :] for n in src_inventory.datasets}


def delete_orphans(
    runner: Runner,
    config: ReplicationConfig,
    dst: Side,
    dst_inventory: Inventory,
    src_root: str,
    src_inventory: Inventory,
) -> tuple[list[str], Inventory]:
    """Destroy selected destination subtrees the source lacks; return their tops and what is left."""
    src_relative = _relative_names(src_root, src_inventory)
    tops = orphan_tops(dst_inventory, dst.root, _selected(config, dst, dst_inventory), src_relative)

    def facts(top: str) -> guard.Facts:
        full = all(is_empty(dst_inventory, n) for n in subtree(dst_inventory, top))
        return guard.Facts(
            asked=True,
            selected=True,
            source_lacks_dataset=True,
            orphans_allowed=True,
            holds_data=not full,
            data_allowed=True,
        )

    tops = _destroy(runner, dst, dst_inventory, tops, facts, "not on the source; --delete-dst-datasets")
    return tops, without_subtrees(dst_inventory, tops)


def delete_empty(
    runner: Runner,
    config: ReplicationConfig,
    dst: Side,
    dst_inventory: Inventory,
    mode: str,
    source: Optional[tuple[str, Inventory]],
    orphans_allowed: bool,
) -> tuple[list[str], Inventory]:
    """Destroy selected destination subtrees that are empty (zferry's definition; bookmarks count
    unless `mode` is 'snapshots'). `source`: its root and listing, None for `dummy`. A dataset the
    source lacks stays unless `orphans_allowed` (--delete-dst-datasets) or the source is dummy."""
    selected = _selected(config, dst, dst_inventory)
    count_bookmarks = mode != "snapshots"
    have = _relative_names(*source) if source is not None else set()
    orphans_ok = source is None or orphans_allowed

    def lacks(name: str) -> bool:
        return source is not None and _relative(name, dst.root) not in have

    tops = empty_tops(dst_inventory, selected, count_bookmarks, lambda n: orphans_ok or not lacks(n))

    def facts(top: str) -> guard.Facts:
        names = subtree(dst_inventory, top)
        return guard.Facts(
            asked=True,
            selected=all(n in selected for n in names),
            source_lacks_dataset=any(lacks(n) for n in names),
            orphans_allowed=orphans_ok,
            holds_data=not all(is_empty(dst_inventory, n, count_bookmarks) for n in names),
        )

    tops = _destroy(runner, dst, dst_inventory, tops, facts, "empty; --delete-empty-dst-datasets")
    return tops, without_subtrees(dst_inventory, tops)


def _relative(name: str, root: str) -> str:
    return "" if name == root else name[len(root) + 1 :]
