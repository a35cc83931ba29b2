"""`--compare-snapshot-lists` on many snapshots: snapshots per second and peak memory.

Synthetic (no VM): N snapshot lines per side, half of them common, parsed and merged by the
same code the command runs (`zfs.parse_version_line`, `compare_dataset`), rows written to
/dev/null. Real (`--real N`): one dataset with N snapshots in the test VM (a `zfs snapshot`
loop: a channel program takes one snapshot per dataset and txg), replicated with `zfs send -R`, then `zferry --compare-snapshot-lists` there.

Run: PYTHONPATH=src python bench/bench_compare.py [--snapshots 100000] [--real 5000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from zferry import zfs
from zferry.observe.compare import Entry, compare_dataset

VM = Path(__file__).resolve().parents[1] / "testbed" / "vm"
CHECKOUT = os.environ.get("ZFERRY_VM_CHECKOUT", "/opt/zferry")


def lines(n: int, offset: int) -> Iterator[str]:
    for i in range(n):
        name = f"pool/ds@prod_onsite_2026-01-01_00:00:{i:06d}_hourly"
        yield f"{name}\t{i + offset}\t{i + 1}\t{1_700_000_000 + i}\t{4096 + i}"


def listing(n: int, offset: int) -> Iterator[Entry]:
    return (zfs.parse_version_line(line) for line in lines(n, offset))


def synthetic(n: int) -> None:
    show = frozenset({"src", "dst", "all"})
    with open(os.devnull, "w") as sink:
        started = time.perf_counter()
        counts = compare_dataset(
            "", lambda: listing(n, 0), lambda: listing(n, n // 2), show, lambda s: sink.write(s + "\n")
        )
        seconds = time.perf_counter() - started
        tracemalloc.start()  # a second run for memory: tracing slows it several times
        compare_dataset("", lambda: listing(n, 0), lambda: listing(n, n // 2), show, lambda s: sink.write(s + "\n"))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        tracemalloc.start()
        held = list(listing(n, 0))
        _, whole = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del held
    listed = 2 * n + counts.dst_only  # source once, destination once plus its own rows again
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"synthetic: {n} snapshots per side, {counts.common} common, {counts.src_only} src, {counts.dst_only} dst")
    print(f"  {seconds:.2f} s, {n * 2 / seconds:,.0f} snapshots/s ({listed / seconds:,.0f} lines parsed/s)")
    print(f"  peak traced memory {peak / 2**20:.1f} MiB (one side's parsed list alone: {whole / 2**20:.1f} MiB)")
    print(f"  process max RSS {rss:.0f} MiB (includes the list above)")


def vm(script: str) -> str:
    return subprocess.run(
        [str(VM), "ssh", "bash -euo pipefail -s"], input=script, text=True, capture_output=True, check=True
    ).stdout


def real(n: int) -> None:
    subprocess.run([str(VM), "up"], check=True)
    started = time.perf_counter()
    vm(f"""
        zpool list -H src >/dev/null && zpool list -H dst >/dev/null
        zfs destroy -r src/benchcmp 2>/dev/null || true; zfs destroy -r dst/benchcmp 2>/dev/null || true
        zfs create src/benchcmp
        for i in $(seq 1 {n}); do zfs snapshot src/benchcmp@s$i; done  # a channel program takes one per txg
        zfs send -R src/benchcmp@s{n} | zfs receive -u dst/benchcmp
        zfs snapshot src/benchcmp@extra
    """)
    print(f"real: {n} snapshots taken and replicated in {time.perf_counter() - started:.0f} s")
    out = vm(f"""
        cd {CHECKOUT}
        start=$(date +%s%N)
        PYTHONPATH=src python3 -c 'import resource, sys, runpy; sys.argv = ["zferry", "-q", "--compare-snapshot-lists", "src/benchcmp", "dst/benchcmp"]
try:
    runpy.run_module("zferry", run_name="__main__")
except SystemExit:
    pass
print("maxrss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)' > /tmp/cmp.tsv 2>/tmp/cmp.err
        end=$(date +%s%N)
        echo "$(wc -l < /tmp/cmp.tsv) $(( (end - start) / 1000000 )) $(grep maxrss /tmp/cmp.err | cut -d' ' -f2)"
        zfs destroy -r src/benchcmp; zfs destroy -r dst/benchcmp
    """).split()
    rows, seconds, rss = int(out[0]) - 1, int(out[1]) / 1000, int(out[2]) / 1024
    print(
        f"  compare: {rows} rows in {seconds:.1f} s ({2 * n / seconds:,.0f} snapshots/s incl. python start and 2-3 zfs lists)"
    )
    print(f"  max RSS of the zferry process {rss:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snapshots", type=int, default=100_000)
    parser.add_argument("--real", type=int, default=0, metavar="N", help="also N real snapshots in the VM")
    args = parser.parse_args()
    synthetic(args.snapshots)
    if args.real:
        real(args.real)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
