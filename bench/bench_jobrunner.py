"""zferry-jobrunner's own overhead, without ZFS: sub-job generation, checking, scheduling (prints figures).

With `--vm N`, instead: in-process versus subprocess sub-jobs on the sandbox VM. Inside the VM, N
sub-jobs of a no-op replication (a push to the VM itself over ssh, `hostb`, already up to date)
run one after the other: in-process as the jobrunner runs them (zferry's parser and the engine in
one interpreter, ssh masters shared), in-process without shared masters, and as `python3 -m
zferry` subprocesses. Prints seconds per sub-job for each and the ratio.

Run: PYTHONPATH=src python bench/bench_jobrunner.py [--hosts N] [--tasks N] | [--vm N]
(ZFERRY_VM_CHECKOUT selects the guest checkout, synced by `testbed/vm up`).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
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


# Runs inside the VM: N no-op sub-jobs each way; prints seconds per sub-job as JSON.
DRIVER = """
import json, subprocess, sys, threading, time
from zferry.jobrunner import runner
from zferry.jobrunner.connections import SharedConnections
count, argv = int(sys.argv[1]), sys.argv[2:]
def in_process(shared):
    cancel = threading.Event()
    started = time.perf_counter()
    for i in range(count):
        assert runner.run(runner.prepare(f"sub{i}", argv), cancel, [], shared) == 0
    return (time.perf_counter() - started) / count
pool = SharedConnections()
shared = in_process(pool)
pool.close()
own = in_process(None)
started = time.perf_counter()
for i in range(count):
    subprocess.run([sys.executable, "-m", "zferry", *argv], check=True)
print(json.dumps({"shared": shared, "own": own, "subprocess": (time.perf_counter() - started) / count}))
"""


def in_process_vs_subprocess(count: int) -> None:
    """`--vm N`: the sub-job execution choice, measured on the sandbox (see the module's docstring)."""
    import bench_daemon  # same folder: its VM helpers (pools, `hostb` over ssh, the guest checkout)

    subprocess.run([bench_daemon.VM, "up"], check=True)
    src, dst = bench_daemon.setup()
    argv = f"--no-log-file --no-progress -q {src} hostb:{dst}"
    try:
        out = bench_daemon.sh(f"""
            cd {bench_daemon.CHECKOUT}; export PYTHONPATH=src
            python3 -m zferry {argv}
            python3 - {count} {argv} <<'PY'\n{DRIVER}PY
        """)
    finally:
        bench_daemon.sh(f"zfs destroy -r {src} || true; zfs destroy -r {dst} || true; rm -rf /opt/{bench_daemon.TAG}")
    figures = json.loads(out.strip().splitlines()[-1])
    print(f"{count} no-op sub-jobs (push over ssh, up to date), seconds per sub-job:")
    print(f"  in-process, shared ssh masters (the jobrunner's way): {figures['shared']:.2f}")
    print(f"  in-process, own ssh masters: {figures['own']:.2f}")
    print(f"  subprocess (python3 -m zferry): {figures['subprocess']:.2f}")
    print(f"  subprocess / in-process shared: {figures['subprocess'] / figures['shared']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000, help="source hosts of the fleet (default 1000)")
    parser.add_argument("--tasks", type=int, default=10_000, help="no-op tasks for the scheduler (default 10000)")
    parser.add_argument("--vm", type=int, metavar="N", help="instead: N sub-jobs in-process vs subprocess on the VM")
    args = parser.parse_args()
    if args.vm:
        in_process_vs_subprocess(args.vm)
        return

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
