"""Read what a tree holds: its datasets and their snapshots and bookmarks, in bulk.

Two zfs calls per tree: the datasets, then every snapshot and bookmark through `zfs list`'s fast
path (name, guid, createtxg). Creation times and holds slow that listing 3-4x and are read only
when asked for. With the snapshot cache (on by default where OpenZFS has `snapshots_changed`),
only datasets whose `snapshots_changed` moved since the last run have their snapshots listed
again; the inventory names the datasets whose lists came from the cache (`Inventory.cached`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from zferry import zfs
from zferry.errors import CommandError, DatasetNotFound
from zferry.exec.background import Background
from zferry.exec.host import Host
from zferry.exec.probe import Capabilities
from zferry.exec.runner import Runner
from zferry.fencing import DR_PROPERTIES
from zferry.model import Dataset, Inventory, Version
from zferry.observe.host_clock import host_time_floor
from zferry.observe.version_cache import VersionCache
from zferry.retry import RetryPolicy, call_with_retries, is_transient

log = logging.getLogger("zferry")
CHANGED = "snapshots_changed"


@dataclass(frozen=True)
class Side:
    """One end of a pair: the host, the root dataset there, and what the host offers."""

    host: Host
    root: str
    caps: Capabilities = Capabilities(True, frozenset())
    retry: RetryPolicy = RetryPolicy()  # for the commands of any step on this side (transient errors only)

    def __str__(self) -> str:
        return self.root if self.host.is_local else f"{self.host.label}:{self.root}"


def list_inventory(
    runner: Runner,
    side: Side,
    user_props: Sequence[str] = (),
    detail: bool = False,
    recursive: bool = True,
    at_once: bool = False,
) -> Optional[Inventory]:
    """A tree's datasets and versions in two zfs calls (None if the root does not exist).

    `detail` adds creation times and hold counts; `at_once` runs both calls at the same time (for a
    root that surely exists, such as the source's: else the second call is wasted).
    """
    argv = zfs.list_versions(side.root, detail, recursive)
    early = Background(lambda: _listing(runner, side, argv), "zferry-list-versions") if at_once else None
    datasets = list_datasets(runner, side, user_props, recursive)
    if datasets is None:
        _wait_quietly(early)
        return None
    versions = zfs.parse_versions(early.result() if early else _listing(runner, side, argv), detail)
    return Inventory(datasets, versions, detail)


def _wait_quietly(job: Optional[Background[str]]) -> None:
    """Wait for a listing whose answer is no longer needed (its root is gone: it fails too)."""
    if job is None:
        return
    try:
        job.result()
    except CommandError:
        pass


def list_datasets(
    runner: Runner, side: Side, user_props: Sequence[str] = (), recursive: bool = True
) -> Optional[dict[str, Dataset]]:
    """A tree's datasets (or just its root's) in one zfs call, None if the root does not exist.

    Each dataset's `user_props` also holds its DR state properties (`zferry.fencing`).
    """
    columns = with_dr_properties(user_props)
    try:
        out = _listing(runner, side, zfs.list_datasets(side.root, columns, recursive))
    except DatasetNotFound:
        return None
    return zfs.parse_datasets(out, columns)


def with_dr_properties(user_props: Sequence[str]) -> tuple[str, ...]:
    """`user_props` and the DR state properties, each once: the fencing check reads them from every listing."""
    return tuple(dict.fromkeys([*user_props, *DR_PROPERTIES]))


def _listing(runner: Runner, side: Side, argv: list[str]) -> str:
    """A read-only zfs command, retried on transient errors."""
    return call_with_retries(
        lambda: runner.run(side.host, argv, classify=zfs.classify_error), side.retry, f"{side}: zfs {argv[1]}"
    )


def list_inventory_cached(runner: Runner, side: Side, cache_dir: str, at_once: bool = False) -> Optional[Inventory]:
    """Like `list_inventory` (snapshots only, no detail), listing only datasets whose snapshots changed.

    `at_once`: when the cache knows nothing of the tree yet, list its snapshots while the datasets
    are listed, not after (see `list_inventory`)."""
    if side.caps.zfs_version is not None and side.caps.zfs_version < (2, 2):
        return list_inventory(runner, side, at_once=at_once)  # no snapshots_changed before OpenZFS 2.2
    cache = VersionCache(cache_dir, side.host.label, side.root)
    listed_at = host_time_floor(side.host, side.caps)  # before both listings: a lower bound for them
    whole = zfs.list_versions(side.root)
    early = (
        Background(lambda: _listing(runner, side, whole), "zferry-list-versions") if at_once and cache.empty else None
    )
    try:
        out = _listing(runner, side, zfs.list_datasets(side.root, with_dr_properties((CHANGED,))))
    except DatasetNotFound:
        _wait_quietly(early)
        return None
    except CommandError as error:
        _wait_quietly(early)
        if is_transient(error):
            raise
        log.info("%s: no snapshots_changed property (OpenZFS < 2.2?): listing without the cache (%s)", side, error)
        return list_inventory(runner, side)
    datasets = zfs.parse_datasets(out, with_dr_properties((CHANGED,)))
    changed = {name: _seconds(d.user_props.get(CHANGED, "")) for name, d in datasets.items()}
    versions: dict[str, tuple[Version, ...]] = {}
    stale = []
    for name, dataset in datasets.items():
        hit = cache.lookup(name, changed[name], str(dataset.guid))
        if hit is None:
            stale.append(name)
        elif hit:
            versions[name] = hit
    fresh = zfs.parse_versions(early.result()) if early is not None else None  # all stale: the whole tree's
    if stale:
        if fresh is None:
            fresh = _list_versions(runner, side, stale, whole_tree=len(stale) == len(datasets))
        for name in stale:
            found = fresh.get(name, ())
            cache.store(name, changed[name], found, listed_at, str(datasets[name].guid))
            if found:
                versions[name] = found
    log.debug("%s: snapshot lists of %d of %d datasets from the cache", side, len(datasets) - len(stale), len(datasets))
    cache.save()
    return Inventory(datasets, versions, cached=frozenset(datasets).difference(stale))


def list_own_versions(runner: Runner, side: Side, name: str) -> Optional[dict[str, tuple[Version, ...]]]:
    """The snapshots and bookmarks of dataset `name` alone (no detail) in one call; None if it does not exist."""
    try:
        return zfs.parse_versions(_listing(runner, side, zfs.list_versions(name, recursive=False)))
    except DatasetNotFound:
        return None


def _list_versions(runner: Runner, side: Side, names: list[str], whole_tree: bool) -> dict[str, tuple[Version, ...]]:
    if whole_tree:
        return zfs.parse_versions(_listing(runner, side, zfs.list_versions(side.root)))
    found: dict[str, tuple[Version, ...]] = {}
    for batch in zfs.argument_batches(names):
        found.update(zfs.parse_versions(_listing(runner, side, zfs.list_versions_of(batch, bookmarks=True))))
    return found


def _seconds(text: str) -> Optional[int]:
    return int(text) if text.isdigit() else None
