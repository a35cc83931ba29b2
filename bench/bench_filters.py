"""Time snapshot filters, plan filters and the due check on synthetic snapshots (prints ms).

Run: PYTHONPATH=src python bench/bench_filters.py
"""

from __future__ import annotations

import time
from typing import Callable

from zferry.lifecycle.periods import PeriodAnchors
from zferry.lifecycle.plan import SnapshotNaming, due_snapshot_names, except_plan_filter, parse_plan
from zferry.lifecycle.retention import destroy_arguments, snapshots_to_delete
from zferry.model import Version
from zferry.select.regex import NameFilter
from zferry.select.snapshots import SnapshotFilter, SnapshotGroup
from zferry.select.times import parse_times_and_ranks

NOW = 1_700_000_000
PERIODS = ("hourly", "daily", "weekly", "monthly", "yearly", "10minutely", "secondly")
PLAN = (
    '{"prod": {"onsite": {"secondly": 40, "10minutely": 6, "hourly": 36, "daily": 31, "weekly": 12, '
    '"monthly": 18, "yearly": 5}}}'
)


def synthetic(count: int) -> list[Version]:
    """`count` snapshots a minute apart, cycling through the plan's periods, oldest first."""
    return [
        Version(
            "pool/ds",
            f"prod_onsite_2023-01-01_00:00:{i:06d}_{PERIODS[i % len(PERIODS)]}",
            guid=i + 1,
            createtxg=i + 1,
            creation=NOW - (count - i) * 60,
        )
        for i in range(count)
    ]


def timed(label: str, fn: Callable[[], object], repeat: int = 5) -> None:
    best = float("inf")
    result: object = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    size = len(result) if isinstance(result, (list, tuple)) else result
    print(f"{label:<58} {best * 1000:9.1f} ms   (result size {size})")


def main() -> None:
    snaps = synthetic(100_000)
    print(f"{len(snaps)} synthetic snapshots")
    ranks = parse_times_and_ranks(["notime", "latest 10"])
    union = parse_times_and_ranks(["7 days ago..anytime", "latest 1000"])
    multi = parse_times_and_ranks(["2 days ago..anytime", "all except latest 10%", "oldest 50%"])
    timed("times-and-ranks: notime, latest 10", lambda: ranks.select(snaps, NOW))
    timed("times-and-ranks: 7 days ago..anytime, latest 1000", lambda: union.select(snaps, NOW))
    timed("times-and-ranks: 3 steps", lambda: multi.select(snaps, NOW))
    group = SnapshotFilter((SnapshotGroup(NameFilter.build([".*_daily"], [], "snapshot"), (union,)),))
    timed("regex .*_daily + times-and-ranks", lambda: group.select(snaps, NOW))
    keep = except_plan_filter(parse_plan(PLAN))
    timed("except plan filter (7 groups)", lambda: keep.select(snaps, NOW))
    timed(
        "prune: except plan, source cross-check",
        lambda: snapshots_to_delete(
            snaps, keep, NOW, except_selected=True, source_guids=set(range(1, 50_000, 7)), latest_common_guid=99_999
        ),
    )
    deletions = snapshots_to_delete(snaps, keep, NOW, except_selected=True)
    timed("destroy arguments for all deletions", lambda: destroy_arguments(deletions))

    plan = parse_plan(PLAN, for_creation=True)
    few = synthetic(5_000)
    naming = SnapshotNaming("%Y-%m-%d_%H:%M:%S", None)
    timed(
        "due check over 5,000 snapshots (7 periods)",
        lambda: due_snapshot_names(few, NOW, plan, naming, PeriodAnchors()),
        repeat=20,
    )
    unmatched = [Version("pool/ds", f"manual{i}", i + 1, i + 1, NOW - 5000 + i) for i in range(5000)]
    timed(
        "due check over 5,000 unmatched snapshots (worst case)",
        lambda: due_snapshot_names(unmatched, NOW, plan, naming, PeriodAnchors()),
        repeat=20,
    )


if __name__ == "__main__":
    main()
