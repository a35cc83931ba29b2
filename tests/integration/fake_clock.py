"""Run zferry's `main` several times in one process as if the clock read given times.

Test-side only, run inside the VM: `python3 tests/integration/fake_clock.py RUNS_JSON`, where
RUNS_JSON is a list of `[unix_time, [zferry args...]]`. zferry itself has no clock hook: run k
sees `time.time()` stand still at its time T_k. ZFS stamps snapshots with the real time, so
creation times read back from `zfs list` are moved onto the fake timeline: a snapshot taken
during run k reads as taken at T_k (runs are more than a second apart in real time, so a
creation second tells which run took it). The VM's system clock is never touched. Prints
`run T_k exit N` per run; exits with the highest status.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time

from zferry import zfs
from zferry.cli.main import main
from zferry.model import Version

REAL_TIME = time.time
REAL_PARSE_VERSIONS = zfs.parse_versions
runs: list[tuple[int, float]] = []  # (the real second a run started, its fake time)


def fake_creation(real: int) -> int:
    """The fake time of a snapshot created at real second `real`: the time of the run that took it."""
    if real < runs[0][0]:  # taken before the first run: as long before its time
        return int(runs[0][1] - (runs[0][0] - real))
    return int(max(fake for started, fake in runs if started <= real))


def parse_versions(output: str, detail: bool = False) -> dict[str, tuple[Version, ...]]:
    parsed = REAL_PARSE_VERSIONS(output, detail)
    if not detail:
        return parsed
    return {
        ds: tuple(dataclasses.replace(v, creation=fake_creation(v.creation)) for v in versions)
        for ds, versions in parsed.items()
    }


def run_all(plan: list[tuple[float, list[str]]]) -> int:
    zfs.parse_versions = parse_versions  # type: ignore[assignment]
    worst = 0
    for fake, args in plan:
        time.sleep(1.1)  # each run's snapshots get creation seconds of their own
        runs.append((int(REAL_TIME()), fake))  # the previous run's snapshots are in earlier seconds
        time.time = lambda fake=fake: fake  # type: ignore[misc]
        try:
            status = main(args)
        finally:
            time.time = REAL_TIME
        print(f"run {fake:.0f} exit {status}", flush=True)
        worst = max(worst, status)
    return worst


if __name__ == "__main__":
    sys.exit(run_all([(float(t), list(a)) for t, a in json.loads(sys.argv[1])]))
