"""Run zferry's `main` several times in one process as if the clock read given times.

Test-side only, run inside the VM (`python3 tests/integration/fake_clock.py T1,T2,... -- ARGS`):
zferry itself has no clock hook. Run k sees `time.time()` as T_k plus the real seconds since
it started. ZFS stamps snapshots with the real time, so creation times read back from `zfs
list` are moved onto the fake timeline of the run that took them (runs are more than a second
apart in real time, so a creation second tells which run it was). The VM's system clock is
never touched. Prints `run T_k exit N` per run; exits with the highest status.
"""

from __future__ import annotations

import dataclasses
import sys
import time

from zferry import zfs
from zferry.cli.main import main
from zferry.model import Version

REAL_TIME = time.time
REAL_PARSE_VERSIONS = zfs.parse_versions
runs: list[tuple[int, float]] = []  # (the real second a run started, its fake-minus-real offset)


def fake_creation(real: int) -> int:
    """The fake time of a snapshot created at real second `real`: the offset of the run taking it."""
    offset = runs[0][1]
    for started, run_offset in runs:
        if started <= real:
            offset = run_offset
    return int(real + offset)


def parse_versions(output: str, detail: bool = False) -> dict[str, tuple[Version, ...]]:
    parsed = REAL_PARSE_VERSIONS(output, detail)
    if not detail:
        return parsed
    return {
        ds: tuple(dataclasses.replace(v, creation=fake_creation(v.creation)) for v in versions)
        for ds, versions in parsed.items()
    }


def run_all(times: list[float], args: list[str]) -> int:
    zfs.parse_versions = parse_versions  # type: ignore[assignment]
    worst = 0
    for fake in times:
        time.sleep(1.1)  # each run's snapshots get creation seconds of their own
        started = REAL_TIME()
        offset = fake - started
        runs.append((int(started), offset))
        time.time = lambda offset=offset: REAL_TIME() + offset  # type: ignore[misc]
        status = main(args)
        time.time = REAL_TIME
        print(f"run {fake:.0f} exit {status}", flush=True)
        worst = max(worst, status)
    return worst


if __name__ == "__main__":
    separator = sys.argv.index("--")
    sys.exit(run_all([float(t) for t in sys.argv[1].split(",")], sys.argv[separator + 1 :]))
