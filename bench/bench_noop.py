#!/usr/bin/env python3
"""No-op runs over a large tree: zferry against the bare listing floor, with and without the
snapshot cache. Prints figures and ratios, never pass/fail.

A tree of --datasets datasets x --snapshots snapshots on its own pools (pnsrc, pndst: other
benchmarks' pools are left alone) is replicated once in one `zfs send -R | zfs receive -u`
stream (received datasets unmounted, as zferry receives them); then, timed in the VM: a bare `zfs list -t snapshot -r` of each side (the
floor a listing run cannot beat), zferry's no-op re-run without the cache (--no-cache-snapshots)
and with it (the default on OpenZFS >= 2.2, after one run that fills it), with the zfs processes
each spawned (a PATH wrapper). --checkout runs another zferry checkout in the VM (e.g. /opt/zferry
for main's) for a before/after comparison.

Run: python3 bench/bench_noop.py [--datasets 100] [--snapshots 20] [--checkout /opt/zferry-perfnoop]
"""

from __future__ import annotations

import argparse

from bench_replication import sh, timed  # this directory is on the path of a script run from it

SHIM = "/opt/zfs-count-noop"
CALLS = "/tmp/zfs-calls-noop"
COUNTER = f"""
mkdir -p {SHIM}
printf '#!/bin/sh\\necho "$*" >> {CALLS}\\nexec /usr/sbin/zfs "$@"\\n' > {SHIM}/zfs
chmod +x {SHIM}/zfs
"""


def build(datasets: int, snapshots: int) -> None:
    """The pools and the tree, unless an earlier run left them; the destination as one replication
    stream (`zfs send -R | zfs receive -u`: received and unmounted, as zferry leaves them)."""
    want = (datasets + 1) * snapshots
    have = sh("zfs list -H -t snapshot -o name -r pndst/meta 2>/dev/null | wc -l || true").strip()
    if have == str(want):
        return
    if sh("zfs list -H -t snapshot -o name -r pnsrc/meta 2>/dev/null | wc -l || true").strip() != str(want):
        names = " ".join(f"pnsrc/meta/d{i}" for i in range(datasets))
        snaps = "\n".join(f"zfs snapshot -r pnsrc/meta@s{i}" for i in range(snapshots))
        sh(f"""
            for p in pnsrc pndst; do
              zpool list -H $p >/dev/null 2>&1 && zpool destroy $p
              rm -f /pools/$p.img; truncate -s 1G /pools/$p.img
              zpool create -O atime=off $p /pools/$p.img
            done
            zfs create pnsrc/meta; for d in {names}; do zfs create $d; done
            {snaps}
        """)
    sh(f"""
        zfs destroy -r pndst/meta 2>/dev/null || true
        zfs send -R pnsrc/meta@s{snapshots - 1} | zfs receive -u pndst/meta
    """)


def counted(zferry: str, label: str, extra: str = "") -> float:
    sh(f"rm -f {CALLS}")
    seconds = timed(f"{zferry.replace('python3', f'PATH={SHIM}:$PATH python3')} {extra} -r pnsrc/meta pndst/meta")
    calls = sh(f"cat {CALLS}").splitlines()
    kinds: dict[str, int] = {}
    for call in calls:
        kinds[call.split()[0]] = kinds.get(call.split()[0], 0) + 1
    print(f"  {label}: {seconds:.1f} s, {len(calls)} zfs processes {kinds}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--checkout", default="/opt/zferry", help="the zferry checkout in the VM to run")
    args = parser.parse_args()
    zferry = f"cd {args.checkout} && PYTHONPATH=src python3 -m zferry --no-progress"
    build(args.datasets, args.snapshots)
    sh(COUNTER)
    first = timed(f"{zferry} -r pnsrc/meta pndst/meta")
    print(f"no-op runs, {args.datasets + 1} datasets x {args.snapshots} snapshots, {args.checkout} (local in the VM):")
    print(f"  first run (nothing to send; the caches fill when the tree is seconds old): {first:.1f} s")
    src = timed("zfs list -H -p -t snapshot -o name -r pnsrc/meta >/dev/null")
    dst = timed("zfs list -H -p -t snapshot -o name -r pndst/meta >/dev/null")
    both = src + dst
    print(f"  bare zfs list -t snapshot -r: source {src:.1f} s, destination {dst:.1f} s; both {both:.1f} s (the floor)")
    uncached = counted(zferry, "no-op, --no-cache-snapshots", "--no-cache-snapshots")
    sh(f"rm -rf /tmp/bench-noop-cache; {zferry} --cache-dir /tmp/bench-noop-cache -r pnsrc/meta pndst/meta")
    cached = counted(zferry, "no-op, snapshot cache", "--cache-snapshots --cache-dir /tmp/bench-noop-cache")
    python_start = timed("python3 -c pass")
    print(f"  ratios to the floor: without the cache {uncached / both:.2f}, with it {cached / both:.2f}")
    print(f"  (for scale: one python3 start-up in the VM takes {python_start:.1f} s including ssh)")


if __name__ == "__main__":
    main()
