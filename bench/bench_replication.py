#!/usr/bin/env python3
"""Replication benchmarks on real OpenZFS in the test VM. Prints figures and ratios, never pass/fail.

1. fixed: the fixed cost of a run: a one-snapshot dataset of 1 MiB, replicated by zferry (default
   options, as from cron: progress to the log) and by a raw `zfs send | zfs receive`; medians of
   --repeat runs each; the difference in seconds and the zfs processes zferry starts; and the floor:
   the same zfs steps from a bare Python script (bench/fixed_floor.py), to tell zferry's own cost
   from what any Python tool doing those steps pays in this VM.
2. stream: marginal throughput: --size-mib MiB of incompressible data, raw and zferry; the marginal
   ratio subtracts each side's fixed cost: (raw_big - raw_small) / (zferry_big - zferry_small).
3. flags: `zfs send` with -c, -L, -e and combinations against a plain send, on compressible data
   (system files) in datasets with compression=lz4 (recordsize 128K) and zstd (1M), locally and over ssh
   to the VM itself; seconds and stream bytes of each.
4. metadata: --datasets datasets x --snapshots snapshots: a no-op re-run and a run with one new
   snapshot per dataset, timed, counting the zfs processes zferry spawns (a PATH wrapper).

Run: python3 bench/bench_replication.py [--only fixed,stream,flags,metadata] [--size-mib 400]
  [--datasets 100] [--snapshots 20] [--checkout /opt/zferry] [--pools b] [--before /opt/zferry-old]
(starts the VM with testbed/vm up if needed). zferry runs inside the VM (local mode), from the
checkout synced to --checkout (`ZFERRY_VM_CHECKOUT=... testbed/vm sync`); --pools names the pools
PREFIXsrc and PREFIXdst, so that several benchmarks can share the VM; --before names a second
checkout (e.g. main before a change) whose runs alternate with this one's, for a before/after ratio
in one run on a VM whose speed drifts.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

VM = str(Path(__file__).resolve().parents[1] / "testbed" / "vm")
COUNTER = """
mkdir -p /opt/zfs-count
printf '#!/bin/sh\\necho "$*" >> /tmp/zfs-calls\\nexec /usr/sbin/zfs "$@"\\n' > /opt/zfs-count/zfs
chmod +x /opt/zfs-count/zfs
"""
# Undo a zferry run: its holds on both sides, its bookmarks on the source, the destination.
UNDO = """
for s in $(zfs list -H -o name -t snapshot -r {src} {dst}); do
  zfs holds -H $s | while read -r name tag rest; do zfs release "$tag" "$name"; done
done
for b in $(zfs list -H -o name -t bookmark -r {src}); do zfs destroy "$b"; done
zfs destroy -r {dst}
"""
FLAG_SETS = ("", "-c", "-L", "-e", "-Lc", "-Lce")


class Bench:
    def __init__(self, checkout: str, prefix: str, repeat: int, before: str = "") -> None:
        self.src, self.dst = f"{prefix}src", f"{prefix}dst"
        self.floor = f"cd {checkout} && python3 bench/fixed_floor.py"
        self.zferry = f"cd {checkout} && PYTHONPATH=src python3 -m zferry"
        self.counted = f"cd {checkout} && PATH=/opt/zfs-count:$PATH PYTHONPATH=src python3 -m zferry"
        self.before = f"cd {before} && PYTHONPATH=src python3 -m zferry" if before else ""
        self.repeat = repeat

    def setup_pools(self) -> None:
        """Fresh pools, unless the metadata tree of an earlier run can be reused (it takes minutes to build)."""
        if sh(f"zfs list -H -o name {self.dst}/meta 2>/dev/null || true").strip():
            sh(
                f"for d in {self.src}/big {self.src}/small {self.src}/lz4 {self.src}/zstd; do zfs destroy -r $d 2>/dev/null || true; done"
            )
            sh(f"for d in raw zferry; do zfs destroy -r {self.dst}/$d 2>/dev/null || true; done")
            return
        sh(f"""
            for p in {self.src} {self.dst}; do
              zpool list -H $p >/dev/null 2>&1 && zpool destroy $p
              rm -f /pools/$p.img; truncate -s 3G /pools/$p.img
              zpool create -O atime=off $p /pools/$p.img
            done
        """)

    def raw(self, snapshot: str, flags: str = "", ssh: bool = False) -> float:
        receive = f"{'ssh hostb ' if ssh else ''}zfs receive -u {self.dst}/raw"
        seconds = timed(f"zfs send {flags} {snapshot} | {receive}; zpool sync {self.dst}")
        sh(f"zfs destroy -r {self.dst}/raw")
        return seconds

    def ours(self, dataset: str, options: str = "", zferry: str = "") -> float:
        """One zferry run (`zferry`: the command, default this checkout's), undone afterwards."""
        seconds = timed(
            f"{zferry or self.zferry} {options} {dataset} {self.dst}/zferry > /tmp/bench-zferry.log 2>&1;"
            f" zpool sync {self.dst}"
        )
        sh(UNDO.format(src=dataset, dst=f"{self.dst}/zferry"))
        return seconds

    def median(self, run) -> float:  # type: ignore[no-untyped-def]
        return statistics.median(run() for _ in range(self.repeat))

    def rounds(self, snapshot: str, variants: dict[str, str]) -> dict[str, float]:
        """Medians over --repeat rounds; each round runs raw and every zferry variant once, in turn,
        so that a busy VM slows them alike. `variants`: label -> (zferry command, options)."""
        times: dict[str, list[float]] = {"raw": []}
        dataset = snapshot.partition("@")[0]
        for _ in range(self.repeat):
            times["raw"].append(self.raw(snapshot))
            for label, command in variants.items():
                zferry, _, options = command.partition("\t")
                times.setdefault(label, []).append(self.ours(dataset, options, zferry))
        return {label: statistics.median(values) for label, values in times.items()}

    def variants(self, options: str = "") -> dict[str, str]:
        out = {"zferry": f"{self.zferry}\t{options}"}
        if self.before:
            out["before"] = f"{self.before}\t{options}"
        return out

    def fixed(self) -> dict[str, float]:
        sh(
            f"zfs create {self.src}/small; head -c 1M /dev/urandom > /{self.src}/small/f; zfs snapshot {self.src}/small@s1"
        )
        variants = self.variants()
        variants["floor"] = f"{self.floor}\t"  # the same zfs steps from a bare Python script
        times = self.rounds(f"{self.src}/small@s1", variants)
        floor = times.pop("floor")
        sh(COUNTER + "rm -f /tmp/zfs-calls")
        sh(f"{self.counted} {self.src}/small {self.dst}/zferry > /dev/null 2>&1")
        sh(UNDO.format(src=f"{self.src}/small", dst=f"{self.dst}/zferry"))
        calls = [c.split()[0] for c in sh("cat /tmp/zfs-calls").splitlines()]
        python_start = self.median(lambda: timed("python3 -c pass"))
        imports = self.median(lambda: timed(self.zferry.replace("-m zferry", "-c 'import zferry.cli.main'")))
        print(f"fixed cost, one snapshot of 1 MiB, local in the VM (median of {self.repeat} interleaved rounds):")
        for label, seconds in times.items():
            extra = "" if label == "raw" else f"; over raw {seconds - times['raw']:.2f} s"
            print(f"  {label}: {seconds:.2f} s{extra}")
        print(f"  zfs processes of a zferry run: {len(calls)} {dict(sorted((c, calls.count(c)) for c in set(calls)))}")
        print(
            f"  floor, the same zfs steps from a bare Python script (bench/fixed_floor.py): {floor:.2f} s; "
            f"over raw {floor - times['raw']:.2f} s; zferry over the floor {times['zferry'] - floor:.2f} s"
        )
        print(
            f"  (for scale: python3 -c pass through the VM's ssh: {python_start:.2f} s; with zferry's imports {imports:.2f} s)"
        )
        return times

    def stream(self, size_mib: int, small: dict[str, float]) -> None:
        sh(f"""
            zfs create {self.src}/big
            dd if=/dev/urandom of=/{self.src}/big/data bs=1M count={size_mib} status=none
            zfs snapshot {self.src}/big@s1; zpool sync {self.src}
        """)
        variants = self.variants()
        variants["zferry --no-progress"] = f"{self.zferry}\t--no-progress"
        times = self.rounds(f"{self.src}/big@s1", variants)
        sh(f"zfs destroy -r {self.src}/big")
        print(
            f"streaming, {size_mib} MiB incompressible, local in the VM (median of {self.repeat} interleaved rounds):"
        )
        raw = times["raw"]
        print(f"  raw: {raw:.2f} s ({size_mib / raw:.0f} MiB/s)")
        for label, seconds in times.items():
            if label == "raw":
                continue
            fixed = small.get(label, small.get("zferry", 0.0))
            marginal = (raw - small["raw"]) / (seconds - fixed)
            print(
                f"  {label}: {seconds:.2f} s, zferry / raw overall {seconds / raw:.2f}; marginal throughput"
                f" (each minus its fixed cost) {marginal:.2f} of raw"
            )

    def flags(self, size_mib: int) -> None:
        for compression, recordsize in (("lz4", "128K"), ("zstd", "1M")):
            ds = f"{self.src}/{compression}"
            sh(f"""
                zfs create -o compression={compression} -o recordsize={recordsize} {ds}
                {{ tar -cf - /usr 2>/dev/null || true; }} | head -c {size_mib}M > /{ds}/f
                dd if=/dev/urandom of=/{ds}/r bs=1M count={max(1, size_mib // 8)} status=none
                zfs snapshot {ds}@s1; zpool sync {self.src}
            """)
            ratio = sh(f"zfs get -H -o value compressratio {ds}").strip()
            print(
                f"send flags, {size_mib} MiB of system files + {max(1, size_mib // 8)} MiB random, compression={compression} ({ratio}), recordsize={recordsize}:"
            )
            sizes = {flags: int(sh(f"zfs send {flags} {ds}@s1 | wc -c").strip()) for flags in FLAG_SETS}
            times: dict[tuple[str, bool], list[float]] = {}
            for _ in range(self.repeat):  # rounds over every flag set, so that a busy VM slows them alike
                for flags in FLAG_SETS:
                    for ssh in (False, True):
                        times.setdefault((flags, ssh), []).append(self.raw(f"{ds}@s1", flags, ssh))
            best = {key: statistics.median(values) for key, values in times.items()}
            for flags in FLAG_SETS:
                local, remote = best[(flags, False)], best[(flags, True)]
                print(
                    f"  {flags or 'plain':5} stream {sizes[flags] / 2**20:6.1f} MiB ({sizes[flags] / sizes['']:.2f});"
                    f" local {local:5.2f} s ({local / best[('', False)]:.2f});"
                    f" over ssh {remote:5.2f} s ({remote / best[('', True)]:.2f})"
                )
            sh(f"zfs destroy -r {ds}")

    def metadata(self, datasets: int, snapshots: int) -> None:
        names = " ".join(f"{self.src}/meta/d{i}" for i in range(datasets))
        snaps = "\n".join(f"zfs snapshot -r {self.src}/meta@s{i}" for i in range(snapshots))
        reuse = sh(f"zfs list -H -o name {self.dst}/meta 2>/dev/null || true").strip()
        if not reuse:
            sh(f"zfs create {self.src}/meta; for d in {names}; do zfs create $d; done\n{snaps}")
        first = timed(f"{self.zferry} --no-progress -r {self.src}/meta {self.dst}/meta")
        sh(COUNTER)

        def counted(label: str, extra: str = "") -> None:
            sh("rm -f /tmp/zfs-calls")
            seconds = timed(f"{self.counted} --no-progress {extra} -r {self.src}/meta {self.dst}/meta")
            calls = sh("cat /tmp/zfs-calls").splitlines()
            kinds: dict[str, int] = {}
            for call in calls:
                kinds[call.split()[0]] = kinds.get(call.split()[0], 0) + 1
            print(f"  {label}: {seconds:.1f} s, {len(calls)} zfs processes {kinds}")

        print(f"metadata, {datasets + 1} datasets x {snapshots} snapshots (zferry -r, local in the VM):")
        print(f"  {'re-run over the kept tree' if reuse else 'initial replication'}: {first:.1f} s")
        counted("no-op re-run")
        cached = "--cache-snapshots --cache-dir /tmp/bench-cache"
        sh(f"rm -rf /tmp/bench-cache; {self.zferry} --no-progress {cached} -r {self.src}/meta {self.dst}/meta")
        counted("no-op re-run with --cache-snapshots", cached)
        sh(f"zfs snapshot -r {self.src}/meta@new")
        counted("one new snapshot per dataset")


def sh(script: str) -> str:
    return subprocess.run(
        [VM, "ssh", "bash -euo pipefail -s"], input=script, text=True, check=True, capture_output=True
    ).stdout


def timed(script: str) -> float:
    start = time.monotonic()
    sh(script)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="fixed,stream,flags,metadata", help="comma-separated sections")
    parser.add_argument("--size-mib", type=int, default=400)
    parser.add_argument("--flags-size-mib", type=int, default=128)
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--checkout", default="/opt/zferry", help="zferry's checkout in the VM")
    parser.add_argument("--pools", default="b", help="pool name prefix: PREFIXsrc and PREFIXdst")
    parser.add_argument("--before", default="", help="another checkout in the VM to compare with, run in turn")
    args = parser.parse_args()
    only = set(args.only.split(","))
    subprocess.run([VM, "up"], check=True)
    bench = Bench(args.checkout, args.pools, args.repeat, args.before)
    bench.setup_pools()
    small = bench.fixed() if only & {"fixed", "stream"} else {}
    if "stream" in only:
        bench.stream(args.size_mib, small)
    if "flags" in only:
        bench.flags(args.flags_size_mib)
    if "metadata" in only:
        bench.metadata(args.datasets, args.snapshots)


if __name__ == "__main__":
    main()
