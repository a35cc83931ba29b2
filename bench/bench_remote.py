#!/usr/bin/env python3
"""Remote replication benchmarks: zferry vs a raw `zfs send | ssh | zfs receive`, as ratios.

- push: inside the VM, to the VM itself over real ssh (`hostb`), zferry vs raw ssh pipe;
- pull-push: from this machine, streaming between two ssh aliases of the VM (a real network
  hop through this machine), zferry vs `ssh a zfs send | ssh b zfs receive`;
each with incompressible and compressible data; and the cost of one metadata round trip
(`ssh host true`) with and without a ControlMaster connection.

Run: python3 bench/bench_remote.py [--size-mib 1024] [--variants default,no zstd,...] [--modes push,pull-push]
(pools with compression on, as most have it; the tests' fixtures need not run first:
this script sets up what it needs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VM = str(ROOT / "testbed" / "vm")
CHECKOUT = os.environ.get("ZFERRY_VM_CHECKOUT", "/opt/zferry")
IN_VM = f"cd {CHECKOUT} && PYTHONPATH=src python3 -m zferry --no-progress"


def sh(script: str) -> str:
    return subprocess.run(
        [VM, "ssh", "bash -euo pipefail -s"], input=script, text=True, check=True, capture_output=True
    ).stdout


def destroy(dataset: str) -> None:
    """Destroy a received tree, releasing zferry's holds on its snapshots first."""
    sh(f"""
        zfs list -H -t snapshot -r -o name {dataset} | xargs -r zfs holds -H | while read -r snap tag _; do
          zfs release "$tag" "$snap"
        done
        zfs destroy -r {dataset}
    """)


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def setup(size_mib: int) -> None:
    sh(f"""
        for p in rsrc rdst; do
          zpool list -H $p >/dev/null 2>&1 && zpool destroy $p
          rm -f /pools/$p.img; truncate -s 3G /pools/$p.img
          zpool create -O atime=off -O compression=on $p /pools/$p.img
        done
        zfs create rsrc/random; zfs create rsrc/text
        dd if=/dev/urandom of=/rsrc/random/f bs=1M count={size_mib} status=none
        {{ yes 'zferry compresses streams that cross the network, 0123456789' || true; }} | head -c {size_mib}M > /rsrc/text/f
        zfs snapshot rsrc/random@s1; zfs snapshot rsrc/text@s1; zpool sync
        [ -f /root/.ssh/id_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519
        grep -qF "$(cat /root/.ssh/id_ed25519.pub)" /root/.ssh/authorized_keys || cat /root/.ssh/id_ed25519.pub >> /root/.ssh/authorized_keys
        printf 'Host hostb\\n  HostName 127.0.0.1\\n  StrictHostKeyChecking no\\n  UserKnownHostsFile /dev/null\\n  LogLevel ERROR\\n' > /root/.ssh/config
    """)


# zferry's pipeline variants: the default, and each helper turned off or forced on.
VARIANTS = {
    "default": "",
    "zstd always": "--compress-when always",
    "no zstd": "--compression-program -",
    "no mbuffer": "--mbuffer-program -",
    "neither": "--compression-program - --mbuffer-program -",
}


def push(kind: str, size_mib: int, variants: list[str]) -> None:
    raw = timed(lambda: sh(f"zfs send rsrc/{kind}@s1 | ssh hostb zfs receive -u rdst/raw"))
    sh("zfs destroy -r rdst/raw")
    for variant in variants:
        ours = timed(lambda v=variant: sh(f"{IN_VM} {VARIANTS[v]} rsrc/{kind} hostb:rdst/zf"))
        destroy("rdst/zf")
        print(
            f"  push {kind:6} {size_mib} MiB, {variant:11}: raw {raw:6.1f} s, zferry {ours:6.1f} s, "
            f"ratio {ours / raw:.2f}",
            flush=True,
        )


def pull_push(kind: str, size_mib: int, config: str, variants: list[str]) -> None:
    ssh = ["ssh", "-F", config]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))

    def raw() -> None:
        send = subprocess.Popen([*ssh, "zfvm-a", f"zfs send rsrc/{kind}@s1"], stdout=subprocess.PIPE)
        subprocess.run([*ssh, "zfvm-b", "zfs receive -u rdst/raw"], stdin=send.stdout, check=True)
        send.wait()

    raw_s = timed(raw)
    sh("zfs destroy -r rdst/raw")
    zferry = [sys.executable, "-m", "zferry", "--no-progress", "--ssh-src-config-file", config]
    for variant in variants:
        argv = [*zferry, "--ssh-dst-config-file", config, *VARIANTS[variant].split()]
        ours = timed(lambda a=argv: subprocess.run([*a, f"zfvm-a:rsrc/{kind}", "zfvm-b:rdst/zf"], check=True, env=env))
        destroy("rdst/zf")
        print(
            f"  pull-push {kind:6} {size_mib} MiB, {variant:11}: raw {raw_s:6.1f} s, zferry {ours:6.1f} s, "
            f"ratio {ours / raw_s:.2f}",
            flush=True,
        )


def round_trips(config: str, count: int = 5) -> None:
    plain = ["ssh", "-F", config, "-o", "ControlMaster=no", "-o", "ControlPath=none", "zfvm-a", "true"]
    without = timed(lambda: [subprocess.run(plain, check=True) for _ in range(count)]) / count
    with tempfile.TemporaryDirectory() as folder:
        shared = [
            "ssh",
            "-F",
            config,
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={folder}/%C",
            "-o",
            "ControlPersist=30",
            "zfvm-a",
            "true",
        ]
        subprocess.run(shared, check=True)
        with_master = timed(lambda: [subprocess.run(shared, check=True) for _ in range(count)]) / count
        subprocess.run([*shared[:-2], "-O", "exit", "zfvm-a"], capture_output=True, check=False)
    print(
        f"  metadata round trip: {without:.2f} s without ControlMaster, {with_master:.2f} s with "
        f"({without / with_master:.0f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--variants", default="default", help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--modes", default="push,pull-push")
    args = parser.parse_args()
    variants = args.variants.split(",")
    if subprocess.run([VM, "status"], capture_output=True).returncode:
        sys.exit("the test VM is not running: start it with testbed/vm up")
    subprocess.run([VM, "sync"], check=True, env=dict(os.environ, ZFERRY_VM_CHECKOUT=CHECKOUT))
    key = subprocess.run([VM, "key"], capture_output=True, text=True, check=True).stdout.strip()
    port = os.environ.get("ZFERRY_VM_PORT", "10022")
    with tempfile.NamedTemporaryFile("w", suffix=".ssh_config", delete=False) as cfg:
        cfg.write(
            f"Host zfvm-a zfvm-b\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {key}\n"
            "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
        )
    setup(args.size_mib)
    print("remote replication (ratios: zferry time / raw time; below 1 means zferry is faster):")
    for kind in ("random", "text"):
        if "push" in args.modes.split(","):
            push(kind, args.size_mib, variants)
        if "pull-push" in args.modes.split(","):
            pull_push(kind, args.size_mib, cfg.name, variants)
    round_trips(cfg.name)
    os.unlink(cfg.name)


if __name__ == "__main__":
    main()
