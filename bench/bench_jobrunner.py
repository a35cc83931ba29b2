"""zferry-jobrunner's own overhead, without ZFS: sub-job generation, checking, scheduling (prints figures).

Run: PYTHONPATH=src python bench/bench_jobrunner.py [--hosts N] [--tasks N]
"""

from __future__ import annotations

import argparse
import resource
import time

from zferry.cli.jobrunner import plan_jobs
from zferry.jobrunner import runner, scheduler


def fleet(hosts: int) -> list[str]:
    """An Alex-like fleet: `hosts` sources, two DR sites, every verb that writes."""
    return [
        *["tank/home", "home", "--recursive", "--src-hosts", repr([f"src{i:05d}" for i in range(hosts)])],
        *["--dst-hosts", "{'dr1': ['onsite'], 'dr2': ['offsite']}"],
        *["--dst-root-datasets", "{'dr1': 'backups/^SRC_HOST', 'dr2': 'archive/^SRC_HOST'}"],
        *["--src-snapshot-plan", "{'prod': {'onsite': {'hourly': 36, 'daily': 31}, 'offsite': {'daily': 31}}}"],
        *["--dst-snapshot-plan", "{'prod': {'onsite': {'daily': 90}, 'offsite': {'daily': 365}}}"],
        *["--create-src-snapshots", "--replicate", "--prune-src-snapshots", "--prune-dst-snapshots"],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=1000, help="source hosts of the fleet (default 1000)")
    parser.add_argument("--tasks", type=int, default=10_000, help="no-op tasks for the scheduler (default 10000)")
    args = parser.parse_args()

    started = time.perf_counter()
    jobs, _, _ = plan_jobs(fleet(args.hosts))
    print(f"generate: {len(jobs)} sub-jobs in {time.perf_counter() - started:.3f} s")

    sample = jobs[:1000]
    started = time.perf_counter()
    for job in sample:
        runner.prepare(job.name, job.argv)
    per_job = (time.perf_counter() - started) / len(sample)
    print(f"check (zferry's parser and job builder): {per_job * 1000:.2f} ms per sub-job")

    half = args.tasks // 2
    names = [f"h{i}/run/a" for i in range(half)] + [f"h{i}/run/~/b" for i in range(args.tasks - half)]
    started, cpu = time.perf_counter(), time.process_time()
    results = scheduler.run_tasks(names, lambda name: 0, scheduler.Pace(workers=8))
    wall = time.perf_counter() - started
    assert all(r.status == scheduler.OK for r in results)
    print(
        f"schedule: {len(names)} no-op tasks (half behind a barrier), 8 workers: {wall:.2f} s, "
        f"{time.process_time() - cpu:.2f} s CPU, {wall / len(names) * 1e6:.0f} us per task"
    )
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
