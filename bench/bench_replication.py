#!/usr/bin/env python3
"""Replication benchmarks on real OpenZFS in the test VM. Prints figures and ratios, never pass/fail.

1. Throughput: a dataset of --size-mib MiB of incompressible data, replicated by zferry and by a
   raw `zfs send | zfs receive` in the same VM; ratio of the two times.
2. Metadata cost: --datasets datasets x --snapshots snapshots: a no-op re-run and a run with one
   new snapshot per dataset, timed, counting the zfs processes zferry spawns (a PATH wrapper).

Run: python3 bench/bench_replication.py [--size-mib 1024] [--datasets 100] [--snapshots 20]
(starts the VM with testbed/vm up if needed). zferry runs inside the VM (local mode).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

VM = str(Path(__file__).resolve().parents[1] / "testbed" / "vm")
ZFERRY = "cd /opt/zferry && PYTHONPATH=src python3 -m zferry --no-progress"
COUNTED = "cd /opt/zferry && PATH=/opt/zfs-count:$PATH PYTHONPATH=src python3 -m zferry --no-progress"
COUNTER = """
mkdir -p /opt/zfs-count
printf '#!/bin/sh\\necho "$*" >> /tmp/zfs-calls\\nexec /usr/sbin/zfs "$@"\\n' > /opt/zfs-count/zfs
chmod +x /opt/zfs-count/zfs
"""


def sh(script: str) -> str:
    return subprocess.run(
        [VM, "ssh", "bash -euo pipefail -s"], input=script, text=True, check=True, capture_output=True
    ).stdout


def timed(script: str) -> float:
    start = time.monotonic()
    sh(script)
    return time.monotonic() - start


def setup_pools() -> None:
    """Fresh pools, unless the metadata tree of an earlier run can be reused (it takes minutes to build)."""
    if sh("zfs list -H -o name bdst/meta 2>/dev/null || true").strip():
        sh(
            "zfs destroy -r bsrc/big 2>/dev/null || true; zfs destroy -r bdst/raw 2>/dev/null || true;"
            "zfs destroy -r bdst/zferry 2>/dev/null || true"
        )
        return
    sh("""
        for p in bsrc bdst; do
          zpool list -H $p >/dev/null 2>&1 && zpool destroy $p
          rm -f /pools/$p.img; truncate -s 3G /pools/$p.img
          zpool create -O atime=off $p /pools/$p.img
        done
    """)


def throughput(size_mib: int) -> None:
    sh(f"""
        zfs create bsrc/big
        dd if=/dev/urandom of=/bsrc/big/data bs=1M count={size_mib} status=none
        zfs snapshot bsrc/big@s1; zpool sync bsrc
    """)
    raw = timed("zfs send bsrc/big@s1 | zfs receive -u bdst/raw; zpool sync bdst")
    sh("zfs destroy -r bdst/raw")
    ours = timed(f"{ZFERRY} bsrc/big bdst/zferry; zpool sync bdst")
    noop = timed(f"{ZFERRY} bsrc/big bdst/zferry")  # the fixed cost: python start-up, listing
    sh("zfs destroy -r bdst/zferry")
    raw2 = timed("zfs send bsrc/big@s1 | zfs receive -u bdst/raw; zpool sync bdst")
    sh("zfs destroy -r bdst/raw; zfs destroy -r bsrc/big")
    raw_best = min(raw, raw2)
    print(f"throughput, {size_mib} MiB incompressible, local in the VM:")
    print(f"  raw zfs send | zfs receive: {raw:.1f} s and {raw2:.1f} s ({size_mib / raw_best:.0f} MiB/s best)")
    print(f"  zferry (incl. python start-up and two zfs list): {ours:.1f} s ({size_mib / ours:.0f} MiB/s)")
    print(f"  ratio zferry / raw: {ours / raw_best:.2f}")
    print(
        f"  fixed cost of a zferry run (a no-op re-run: python start-up, 4 zfs list): {noop:.1f} s;"
        f" streaming part ratio: {(ours - noop) / raw_best:.2f}"
    )


def metadata(datasets: int, snapshots: int) -> None:
    names = " ".join(f"bsrc/meta/d{i}" for i in range(datasets))
    snaps = "\n".join(f"zfs snapshot -r bsrc/meta@s{i}" for i in range(snapshots))
    reuse = sh("zfs list -H -o name bdst/meta 2>/dev/null || true").strip()
    if not reuse:
        sh(f"zfs create bsrc/meta; for d in {names}; do zfs create $d; done\n{snaps}")
    first = timed(f"{ZFERRY} -r bsrc/meta bdst/meta")
    sh(COUNTER)

    def counted(label: str, extra: str = "") -> None:
        sh("rm -f /tmp/zfs-calls")
        seconds = timed(f"{COUNTED} {extra} -r bsrc/meta bdst/meta")
        calls = sh("cat /tmp/zfs-calls").splitlines()
        kinds: dict[str, int] = {}
        for call in calls:
            kinds[call.split()[0]] = kinds.get(call.split()[0], 0) + 1
        print(f"  {label}: {seconds:.1f} s, {len(calls)} zfs processes {kinds}")

    print(f"metadata, {datasets + 1} datasets x {snapshots} snapshots (zferry -r, local in the VM):")
    print(f"  {'re-run over the kept tree' if reuse else 'initial replication'}: {first:.1f} s")
    counted("no-op re-run")
    cached = "--cache-snapshots --cache-dir /tmp/bench-cache"
    sh(f"rm -rf /tmp/bench-cache; {ZFERRY} {cached} -r bsrc/meta bdst/meta")  # fills the cache
    counted("no-op re-run with --cache-snapshots", cached)
    sh("zfs snapshot -r bsrc/meta@new")
    counted("one new snapshot per dataset")
    python_start = timed("python3 -c pass")
    print(f"  (for scale: one python3 start-up in the VM takes {python_start:.1f} s including ssh)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--snapshots", type=int, default=20)
    args = parser.parse_args()
    subprocess.run([VM, "up"], check=True)
    setup_pools()
    throughput(args.size_mib)
    metadata(args.datasets, args.snapshots)


if __name__ == "__main__":
    main()
