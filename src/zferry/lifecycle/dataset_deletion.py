"""Which destination datasets `--delete-dst-datasets` and `--delete-empty-dst-datasets` remove. Pure.

A dataset may go only if it is selected, meets the condition (the source lacks it; it is
empty: no snapshots, at most 64 KiB of data), and so does every descendant: a subtree that
holds one non-selected or still needed dataset is kept, and so are its ancestors. Each
removable subtree is destroyed from its top with one `zfs destroy -r`, so only those tops are returned.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Callable

from zferry.model import Inventory
from zferry.plan import guard


def removable_tops(existing: Sequence[str], selected: Collection[str], condition: Callable[[str], bool]) -> list[str]:
    """The tops of the subtrees of `existing` in which every dataset is selected and meets `condition`."""
    names = set(existing)
    chosen = set(selected)
    children: dict[str, list[str]] = {}
    for name in names:
        parent = name.rpartition("/")[0]
        if parent in names:
            children.setdefault(parent, []).append(name)
    removable: dict[str, bool] = {}
    for name in sorted(names, key=lambda n: n.count("/"), reverse=True):  # children before parents
        removable[name] = name in chosen and condition(name) and all(removable[c] for c in children.get(name, ()))
    return sorted(n for n, ok in removable.items() if ok and not removable.get(n.rpartition("/")[0], False))


def orphan_tops(dst: Inventory, dst_root: str, selected: Collection[str], src_relative: Collection[str]) -> list[str]:
    """Tops of selected destination subtrees the source does not have (`src_relative`: names below
    the source root, the root itself as '')."""
    have = set(src_relative)
    return removable_tops(list(dst.datasets), selected, lambda n: _relative(n, dst_root) not in have)


def empty_tops(
    dst: Inventory,
    selected: Collection[str],
    count_bookmarks: bool = True,
    may_go: Callable[[str], bool] = lambda name: True,
) -> list[str]:
    """Tops of selected destination subtrees in which every dataset is empty (`is_empty`: no
    snapshots, nor bookmarks if `count_bookmarks`, and at most 64 KiB used) and `may_go` (e.g.
    the source has it, or orphans may be removed)."""
    return removable_tops(list(dst.datasets), selected, lambda n: is_empty(dst, n, count_bookmarks) and may_go(n))


def is_empty(dst: Inventory, name: str, count_bookmarks: bool = True) -> bool:
    """Is this dataset empty by zferry's definition (its children aside: they are judged on their own)?"""
    versions = tuple(v for v in dst.versions.get(name, ()) if count_bookmarks or not v.is_bookmark)
    return guard.is_empty(dst.datasets[name], versions, has_children=False)


def subtree(dst: Inventory, top: str) -> list[str]:
    """`top` and every dataset below it."""
    return [n for n in dst.datasets if n == top or n.startswith(top + "/")]


def _relative(name: str, root: str) -> str:
    return "" if name == root else name[len(root) + 1 :]


def without_subtrees(inventory: Inventory, tops: Collection[str]) -> Inventory:
    """The inventory after `zfs destroy -r` of each of `tops`."""

    def gone(name: str) -> bool:
        return any(name == t or name.startswith(t + "/") for t in tops)

    return Inventory(
        {n: d for n, d in inventory.datasets.items() if not gone(n)},
        {n: v for n, v in inventory.versions.items() if not gone(n)},
        inventory.detailed,
    )
