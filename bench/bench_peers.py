#!/usr/bin/env python3
"""zferry against its peers, bzfs (PyPI) and syncoid (Debian's sanoid), on the same workloads in
the test VM in one run, as ratios (peer time / zferry time: above 1 means zferry is faster).

Workloads, each local (`src` -> `dst` pool in the VM) and remote (push over real ssh to the VM's
own alias `hostb`): a full replication of a tree (31 datasets x 10 snapshots, recursive), a
no-op run over it, one new snapshot per dataset, and one large dataset (200 MiB incompressible,
full; a raw `zfs send | [ssh] zfs receive` is timed beside it as the floor).

Each tool runs with its defaults, except syncoid's `--no-sync-snap` (replicate the existing
snapshots only, as the others do). Times are measured inside the VM (no ssh overhead from here).
At start-up the script installs what it needs in the VM: sanoid with apt, bzfs's wheel (fetched
here with pip, unpacked into /opt/bzfs), and this checkout (`testbed/vm sync`, to
$ZFERRY_VM_CHECKOUT, default /opt/zferry).

With BENCH_PEERS_BASELINE=/path/to/another/checkout (e.g. main), that checkout runs too, as
"base", so that before and after a change are measured under the same conditions.

Run: [BENCH_PEERS_POOLS=psrc,pdst] [BENCH_PEERS_BASELINE=DIR] python3 bench/bench_peers.py [--datasets 31] [--snapshots 10] [--size-mib 200]
         [--tools zferry,bzfs,syncoid] [--modes local,remote]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VM = str(ROOT / "testbed" / "vm")
CHECKOUT = os.environ.get("ZFERRY_VM_CHECKOUT", "/opt/zferry")
BZFS_VERSION = "1.25.0"
SRC, DST = os.environ.get("BENCH_PEERS_POOLS", "psrc,pdst").split(",")  # another pair lets two runs overlap

# Another checkout (e.g. main before a change), benched as the tool "base" in the same run.
BASELINE = os.environ.get("BENCH_PEERS_BASELINE")
BASE_CHECKOUT = f"{CHECKOUT}-base"
ZFERRY = "env -C {} PYTHONPATH=src python3 -m zferry --no-progress --recursive {{src}} {{dst}}"
COMMANDS = {
    "zferry": ZFERRY.format(CHECKOUT),
    "base": ZFERRY.format(BASE_CHECKOUT),
    "bzfs": "PYTHONPATH=/opt/bzfs python3 -m bzfs_main.bzfs --recursive {src} {dst}",
    "syncoid": "syncoid --quiet --no-sync-snap --recursive {src} {dst}",
}
# How each tool spells a dataset on the host `hostb` (syncoid needs the user@ to see a host).
REMOTE = {"zferry": "hostb:{}", "base": "hostb:{}", "bzfs": "hostb:{}", "syncoid": "root@hostb:{}"}


def sh(script: str) -> str:
    """Run a bash script in the VM; its stdout."""
    done = subprocess.run([VM, "ssh", "bash -euo pipefail -s"], input=script, text=True, capture_output=True)
    if done.returncode:
        sys.exit(f"in the VM: {script.strip()[:400]}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def timed(command: str) -> float:
    """Seconds a command takes in the VM (measured there); its output is shown if it fails."""
    out = sh(f"""
        start=$(date +%s%N)
        if ! {{ {command}; }} </dev/null >/tmp/bench_peers.log 2>&1; then cat /tmp/bench_peers.log; exit 1; fi
        echo $(( ($(date +%s%N) - start) / 1000000 ))
    """)
    return int(out.split()[-1]) / 1000


def install_tools() -> None:
    """sanoid with apt, bzfs's wheel unpacked into /opt/bzfs, this checkout synced."""
    sh("""
        command -v syncoid >/dev/null || { apt-get update -qq && \
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sanoid >/dev/null; }
    """)
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"bzfs=={BZFS_VERSION}", "-d", folder],
            check=True,
        )
        (wheel,) = Path(folder).glob("bzfs-*.whl")
        subprocess.run(
            [
                VM,
                "ssh",
                "rm -rf /opt/bzfs && mkdir -p /opt/bzfs && cd /opt/bzfs && cat > b.whl && "
                "python3 -m zipfile -e b.whl . && rm b.whl",
            ],
            input=wheel.read_bytes(),
            check=True,
        )
    subprocess.run([VM, "sync"], check=True, env=dict(os.environ, ZFERRY_VM_CHECKOUT=CHECKOUT))
    if BASELINE:
        base_vm = str(Path(BASELINE) / "testbed" / "vm")
        subprocess.run([base_vm, "sync"], check=True, env=dict(os.environ, ZFERRY_VM_CHECKOUT=BASE_CHECKOUT))


def setup(datasets: int, snapshots: int, size_mib: int) -> None:
    """Pools psrc and pdst; psrc/tree (datasets x snapshots, 64 KiB written before each) and psrc/big."""
    sh(f"""
        for p in {SRC} {DST}; do
          zpool list -H $p >/dev/null 2>&1 && zpool destroy $p
          rm -f /pools/$p.img; truncate -s 2G /pools/$p.img
          zpool create -O atime=off $p /pools/$p.img
        done
        zfs create {SRC}/tree
        for i in $(seq 1 {datasets - 1}); do zfs create {SRC}/tree/d$i; done
        for s in $(seq -w 1 {snapshots}); do
          for d in /{SRC}/tree /{SRC}/tree/d*; do head -c 64K /dev/urandom > $d/f$s; done
          zfs snapshot -r {SRC}/tree@s$s
        done
        zfs create {SRC}/big
        dd if=/dev/urandom of=/{SRC}/big/f bs=1M count={size_mib} status=none
        zfs snapshot {SRC}/big@s1; zpool sync
        [ -f /root/.ssh/id_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519
        grep -qF "$(cat /root/.ssh/id_ed25519.pub)" /root/.ssh/authorized_keys 2>/dev/null \
          || cat /root/.ssh/id_ed25519.pub >> /root/.ssh/authorized_keys
        printf 'Host hosta hostb\\n  HostName 127.0.0.1\\n  StrictHostKeyChecking no\\n  UserKnownHostsFile /dev/null\\n  LogLevel ERROR\\n' > /root/.ssh/config
        zfs send {SRC}/big@s1 > /dev/null  # warm the cache for every tool alike
    """)


def command(tool: str, src: str, dst: str, mode: str) -> str:
    return COMMANDS[tool].format(src=src, dst=REMOTE[tool].format(dst) if mode == "remote" else dst)


def run_mode(mode: str, tools: list[str], datasets: int, snapshots: int) -> dict[str, dict[str, float]]:
    """Every workload of one mode for every tool: {workload: {tool: seconds}}."""
    times: dict[str, dict[str, float]] = {}
    for workload in ("full", "no-op", "new snapshot"):
        if workload == "new snapshot":
            sh(f"zfs snapshot -r {SRC}/tree@new")
        times[workload] = {t: timed(command(t, f"{SRC}/tree", f"{DST}/{t}", mode)) for t in tools}
    ssh = "ssh hostb " if mode == "remote" else ""
    times["large"] = {"raw": timed(f"zfs send {SRC}/big@s1 | {ssh}zfs receive -u {DST}/raw")}
    times["large"].update({t: timed(command(t, f"{SRC}/big", f"{DST}/{t}big", mode)) for t in tools})
    counts = sh("".join(f"echo {t} $(zfs list -H -t snapshot -r -o name {DST}/{t} | wc -l);" for t in tools)).split()
    expected = datasets * (snapshots + 1)
    for tool, count in zip(counts[::2], counts[1::2]):
        if int(count) != expected:
            print(f"  warning: {tool} ({mode}) left {count} snapshots on the destination, not {expected}")
    sh(f"""
        zfs list -H -t snapshot -r -o name {SRC} {DST} | xargs -r zfs holds -H | while read -r snap tag _; do
          zfs release "$tag" "$snap"
        done
        zfs destroy -r {SRC}/tree@new
        for d in $(zfs list -H -o name -d 1 {DST} | tail -n +2); do zfs destroy -r $d; done
    """)
    return times


def report(mode: str, times: dict[str, dict[str, float]], tools: list[str]) -> None:
    peers = [t for t in tools if t != "zferry"]
    head = "".join(f"{t:>9}" for t in tools) + "".join(f"{t + '/zf':>12}" for t in peers)
    print(f"{mode}:\n  {'workload':14}{'raw':>7}{head}")
    for workload, row in times.items():
        raw = f"{row['raw']:7.1f}" if "raw" in row else " " * 7
        cells = "".join(f"{row[t]:9.1f}" for t in tools)
        ratios = "".join(f"{row[t] / row['zferry']:12.2f}" for t in peers) if "zferry" in row else ""
        print(f"  {workload:14}{raw}{cells}{ratios}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=31)
    parser.add_argument("--snapshots", type=int, default=10)
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--tools", default="zferry,bzfs,syncoid")
    parser.add_argument("--modes", default="local,remote")
    args = parser.parse_args()
    tools = args.tools.split(",") + (["base"] if BASELINE else [])
    if subprocess.run([VM, "status"], capture_output=True).returncode:
        sys.exit("the test VM is not running: start it with testbed/vm up")
    install_tools()
    setup(args.datasets, args.snapshots, args.size_mib)
    print(f"seconds in the VM; {args.datasets} datasets x {args.snapshots} snapshots; large: {args.size_mib} MiB")
    for mode in args.modes.split(","):
        report(mode, run_mode(mode, tools, args.datasets, args.snapshots), tools)
    sh(f"zpool destroy {SRC}; zpool destroy {DST}; rm -f /pools/{SRC}.img /pools/{DST}.img")


if __name__ == "__main__":
    main()
