"""`--create-src-snapshots`: take the plan's due snapshots on the selected source datasets.

Every dataset that gets the same snapshot name gets it in one `zfs snapshot a@n b@n ...` call,
which ZFS performs atomically (all datasets of a pair live in one pool). Only an argument list
too long for one command is split.

Which snapshots exist comes either from the pair's bulk listing, or, with `--cache-snapshots`,
from one `zfs list -o snapshots_changed` plus the cache: only datasets whose snapshots changed
since they were cached are listed again, together in one call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Optional

from zferry import zfs
from zferry.errors import CommandError, DatasetNotFound
from zferry.exec.runner import Runner
from zferry.inventory import Side, list_inventory
from zferry.lifecycle.config import CreateConfig
from zferry.lifecycle.plan import PlanEntry, due_snapshot_names
from zferry.model import Inventory, Version
from zferry.observe.host_clock import host_time, host_time_floor
from zferry.observe.snapshot_cache import SnapshotCache, latest_by_key
from zferry.retry import call_idempotent, call_with_retries, is_transient
from zferry.select.datasets import DatasetFilter

log = logging.getLogger("zferry")
MAX_ARGV_CHARS = 100_000
"""Split one `zfs snapshot` or `zfs list` call when its arguments would exceed this many characters."""


@dataclass
class CreateResult:
    """What the creation step did: snapshot name -> datasets that got it, and cache statistics."""

    created: dict[str, list[str]] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0

    @property
    def count(self) -> int:
        return sum(len(d) for d in self.created.values())


def entry_keys(entries: Sequence[PlanEntry]) -> dict[str, PlanEntry]:
    """A stable key per plan entry (`org_target_*_period`), as the cache stores them."""
    return {f"{e.prefix}*{e.suffix}": e for e in entries}


def due_by_name(existing: Mapping[str, Sequence[Version]], now: float, create: CreateConfig) -> dict[str, list[str]]:
    """Snapshot name -> the datasets (in the given order) on which it is due at `now`. Pure."""
    by_name: dict[str, list[str]] = {}
    for dataset, snapshots in existing.items():
        names = due_snapshot_names(snapshots, now, create.plan, create.naming, create.anchors, create.even_if_not_due)
        for name in names:
            by_name.setdefault(name, []).append(dataset)
    return by_name


def take_snapshots(runner: Runner, side: Side, by_name: Mapping[str, Sequence[str]]) -> None:
    """One `zfs snapshot` per name for all its datasets (split only when the argv gets too long)."""
    for name, datasets in by_name.items():
        parts = zfs.argument_batches([f"{d}@{name}" for d in datasets], MAX_ARGV_CHARS)
        if len(parts) > 1:
            log.warning(
                "%s: @%s on %d datasets needs %d zfs snapshot calls; they are not atomic together",
                side,
                name,
                len(datasets),
                len(parts),
            )
        for part in parts:
            log.info("%s: creating @%s on %d dataset(s)", side, name, len(part))
            call_idempotent(
                partial(runner.run, side.host, zfs.snapshot(part), changes=True, classify=zfs.classify_error),
                side.retry,
                f"{side}: zfs snapshot @{name}",
                zfs.already_exists,
            )


def create_snapshots(
    runner: Runner,
    side: Side,
    create: CreateConfig,
    datasets: DatasetFilter,
    recursive: bool,
    inventory: Optional[Inventory],
    cache: Optional[SnapshotCache],
    now: Optional[float] = None,
) -> CreateResult:
    """Take the due snapshots; with no `inventory`, read the state through `cache` (required then).

    `now` defaults to the time in the host's clock, the clock of the creation times it compares with.
    """
    now = host_time(side.caps) if now is None else now
    result = CreateResult()
    if inventory is not None:
        if not inventory.detailed:
            raise ValueError("create_snapshots needs an inventory listed with creation times (detail=True)")
        props = {d.name: d.user_props for d in inventory.datasets.values()}
        selected = datasets.select(side.root, list(inventory.datasets), props, recursive)
        existing: dict[str, Sequence[Version]] = {ds: inventory.snapshots(ds) for ds in selected}
    else:
        assert cache is not None
        existing = _existing_via_cache(runner, side, create, datasets, recursive, cache, result)
    by_name = due_by_name(existing, now, create)
    if not by_name:
        log.log(15, "%s: no snapshot due on %d dataset(s)", side, len(existing))
    take_snapshots(runner, side, by_name)
    for name, names in by_name.items():
        result.created[name] = list(names)
        if cache is not None and not runner.dry_run:
            for dataset in names:
                cache.forget(dataset)
    if cache is not None:
        cache.save()
    return result


def _existing_listed(
    runner: Runner, side: Side, datasets: DatasetFilter, recursive: bool, props_wanted: Sequence[str]
) -> dict[str, Sequence[Version]]:
    """The selected datasets' snapshots from a full listing (where `snapshots_changed` does not exist)."""
    inventory = list_inventory(runner, side, props_wanted, detail=True, recursive=recursive)
    if inventory is None:
        raise DatasetNotFound(f"{side} does not exist; check the name")
    props = {d.name: d.user_props for d in inventory.datasets.values()}
    selected = datasets.select(side.root, list(inventory.datasets), props, recursive)
    return {ds: inventory.snapshots(ds) for ds in selected}


def _existing_via_cache(
    runner: Runner,
    side: Side,
    create: CreateConfig,
    datasets: DatasetFilter,
    recursive: bool,
    cache: SnapshotCache,
    result: CreateResult,
) -> dict[str, Sequence[Version]]:
    props_wanted = [datasets.exclude_property] if datasets.exclude_property else []
    if side.caps.zfs_version is not None and side.caps.zfs_version < (2, 2):
        return _existing_listed(runner, side, datasets, recursive, props_wanted)  # no snapshots_changed
    listed_at = host_time_floor(side.host, side.caps)  # before the listings: a lower bound for them
    try:
        out = call_with_retries(
            lambda: runner.run(
                side.host, zfs.list_snapshots_changed(side.root, props_wanted, recursive), classify=zfs.classify_error
            ),
            side.retry,
            f"{side}: zfs list",
        )
    except CommandError as error:
        if is_transient(error) or isinstance(error, DatasetNotFound):
            raise
        log.info("%s: no snapshots_changed property (OpenZFS < 2.2?): checking without the cache (%s)", side, error)
        return _existing_listed(runner, side, datasets, recursive, props_wanted)
    listed = zfs.parse_snapshots_changed(out, props_wanted)
    props = {name: p for name, (_, p) in listed.items()}
    selected = datasets.select(side.root, list(listed), props, recursive)
    keys = entry_keys(create.plan.active)
    existing: dict[str, Sequence[Version]] = {}
    misses: list[str] = []
    for dataset in selected:
        hit = cache.lookup(dataset, listed[dataset][0], list(keys), listed[dataset][1]["guid"])
        if hit is None:
            misses.append(dataset)
            continue
        existing[dataset] = sorted(
            (Version(dataset, name, 0, 0, creation) for name, creation in (v for v in hit.values() if v)),
            key=lambda v: v.creation,
        )
    result.cache_hits, result.cache_misses = len(selected) - len(misses), len(misses)
    log.log(15, "%s: snapshot cache: %d hit(s), %d miss(es)", side, result.cache_hits, result.cache_misses)
    for part in zfs.argument_batches(misses, MAX_ARGV_CHARS):
        out = call_with_retries(
            partial(runner.run, side.host, zfs.list_versions_of(part, detail=True), classify=zfs.classify_error),
            side.retry,
            f"{side}: zfs list",
        )
        snapshots = zfs.parse_versions(out, detail=True)
        for dataset in part:
            existing[dataset] = snapshots.get(dataset, ())
            latest = latest_by_key(existing[dataset], keys)
            cache.store(dataset, listed[dataset][0], latest, listed_at, listed[dataset][1]["guid"])
    return {ds: existing[ds] for ds in selected}
