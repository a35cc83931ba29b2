"""The two listings a pair's replication works from, shared by its threads, and listing one dataset again.

A run lists each tree once. A dataset is listed again on its own when the run changed it (a
receive, a discarded partial receive), when the origin of a clone may have just arrived, and when
its list came from the snapshot cache but the plan would do more than a plain send or nothing:
cached lists never decide a conflict, a destroy or rollback (the destroy guard's facts) or which
snapshots get bookmarked (`needs_fresh_lists`).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Optional

from zferry.exec.background import Background
from zferry.exec.runner import Runner
from zferry.inventory import Side, list_inventory, list_own_versions
from zferry.model import Dataset, Inventory, Version
from zferry.plan import guard
from zferry.plan.replication import Conflict, ConflictPolicy, DatasetPlan, destructions


def needs_fresh_lists(
    outcome: DatasetPlan | Conflict, policy: ConflictPolicy, src_cached: bool, dst_cached: bool, resumed: bool
) -> bool:
    """A plan from a cached list may only say "up to date" or be a plain send: a conflict, anything
    destructive, or a send or resumed send from a cached source list (bookmarks follow it; the cache
    may lack newer ones) is planned again from fresh lists."""
    if not (src_cached or dst_cached):
        return False
    if isinstance(outcome, Conflict):
        return True
    sends = bool(outcome.steps) or resumed
    return bool(destructions(outcome, policy, ())) or (src_cached and sends)


def merged(inventory: Inventory, name: str, fresh: Optional[Inventory], datasets_too: bool) -> Inventory:
    """`inventory` with dataset `name`'s versions (and, with `datasets_too`, its dataset entry) as `fresh`
    lists them (gone when `fresh` is None), and `name` no longer counted as coming from the cache."""
    datasets = dict(inventory.datasets)
    versions = dict(inventory.versions)
    versions.pop(name, None)
    if datasets_too:
        datasets.pop(name, None)
    if fresh is not None:
        versions.update(fresh.versions)
        if datasets_too:
            datasets.update(fresh.datasets)
    return Inventory(datasets, versions, inventory.detailed, inventory.cached - {name})


class PairLists:
    """The source and destination listings of one pair's run, behind one lock its threads share."""

    def __init__(self, runner: Runner, src: Side, dst: Side) -> None:
        self.runner = runner
        self.src_side = src
        self.dst_side = dst
        self.lock = threading.Lock()  # also guards the other per-run state of the pair's threads
        self.src = Inventory.empty()
        self.dst = Inventory.empty()
        self.present: set[str] = set()  # destination datasets known to exist

    def is_cached(self, src_name: str, dst_name: str) -> tuple[bool, bool]:
        """Whether each side's list of this dataset came from the snapshot cache."""
        with self.lock:
            return src_name in self.src.cached, dst_name in self.dst.cached

    def dst_snapshots(self, dst_name: str) -> tuple[Version, ...]:
        with self.lock:
            return self.dst.snapshots(dst_name)

    def relist_src(self, src_name: str) -> None:
        """List one source dataset's snapshots and bookmarks again (not from the cache)."""
        versions = list_own_versions(self.runner, self.src_side, src_name)
        fresh = None if versions is None else Inventory({}, versions)
        with self.lock:
            self.src = merged(self.src, src_name, fresh, datasets_too=False)

    def relist_cached(self, src_name: str, dst_name: str, dst_dataset: Optional[Dataset]) -> Optional[Dataset]:
        """List again, both at once, the sides whose lists of this dataset came from the snapshot cache;
        the destination dataset as it is now."""
        src_cached, dst_cached = self.is_cached(src_name, dst_name)
        src_job = Background(lambda: self.relist_src(src_name), "zferry-relist-src") if src_cached else None
        if dst_cached:
            dst_dataset = self.relist_dst(dst_name)
        if src_job is not None:
            src_job.result()
        return dst_dataset

    def relist_dst(self, dst_name: str) -> Optional[Dataset]:
        """List one destination dataset again; it as it is now (None when it does not exist)."""
        side = dataclasses.replace(self.dst_side, root=dst_name)
        fresh = list_inventory(self.runner, side, detail=self.dst.detailed, recursive=False)
        if fresh is None:
            return None
        with self.lock:
            self.dst = merged(self.dst, dst_name, fresh, datasets_too=True)
        return fresh.datasets.get(dst_name)

    def is_empty(self, dataset: Dataset) -> bool:
        """Whether a destination dataset holds nothing a receive could lose (`guard.is_empty`)."""
        with self.lock:
            children = any(n.startswith(dataset.name + "/") for n in self.dst.datasets)
            return guard.is_empty(dataset, self.dst.snapshots(dataset.name), children)
