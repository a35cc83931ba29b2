"""NFR-PERF-003: the dataset scheduler alone (`zferry.schedule.run_tree`) on a synthetic tree with
a no-op task: wall and CPU seconds and peak memory (goal: 1,000,000 datasets in under 10 s of
CPU and 1 GiB). No VM, no ZFS.

Run: PYTHONPATH=src python bench/bench_schedule.py [--datasets N] [--threads N]
"""

from __future__ import annotations

import argparse
import resource
import time

from zferry.schedule import nearest_parents, run_tree


def tree(count: int) -> list[str]:
    """`count` dataset names: 1,000 children of the pool, each with its own (count/1000 - 1) children."""
    width = 1000
    per = max(1, count // width)
    names = []
    for i in range(width):
        names.append(f"tank/d{i:04d}")
        names += [f"tank/d{i:04d}/e{j:05d}" for j in range(per - 1)]
    return names[:count]


def noop(name: str) -> None:
    """The task: nothing."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=1_000_000, help="datasets in the tree (default 1000000)")
    parser.add_argument("--threads", type=int, default=8, help="run_tree's threads (default 8)")
    args = parser.parse_args()
    names = tree(args.datasets)
    print(f"tree: {len(names)} datasets, {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB so far")

    cpu, wall = time.process_time(), time.perf_counter()
    nearest_parents(names)
    print(f"nearest_parents alone: {time.process_time() - cpu:.2f} s CPU")

    cpu, wall = time.process_time(), time.perf_counter()
    result = run_tree(names, noop, threads=args.threads)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert len(result.succeeded) == len(names) and not result.failed
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"run_tree, {args.threads} threads, no-op task: {wall:.1f} s wall, {cpu:.1f} s CPU "
        f"({cpu / len(names) * 1e6:.1f} us per dataset); peak memory (max RSS) {peak:.0f} MiB"
    )


if __name__ == "__main__":
    main()
