#!/usr/bin/env python3
"""Remote replication benchmarks: zferry vs a raw `zfs send | ssh | zfs receive`, as ratios.

- push: inside the VM, to the VM itself over real ssh (`hostb`), zferry vs raw ssh pipe;
- pull-push: from this machine, streaming between two ssh aliases of the VM (a real network
  hop through this machine), zferry vs `ssh a zfs send | ssh b zfs receive`;
each with incompressible and compressible data; and the cost of one metadata round trip
(`ssh host true`) with and without a ControlMaster connection.

Run: python3 bench/bench_remote.py [--size-mib 1024] (the tests' fixtures need not run first:
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
IN_VM = "cd /opt/zferry && PYTHONPATH=src python3 -m zferry --no-progress"


def sh(script: str) -> str:
    return subprocess.run(
        [VM, "ssh", "bash -euo pipefail -s"], input=script, text=True, check=True, capture_output=True
    ).stdout


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def setup(size_mib: int) -> None:
    sh(f"""
        for p in rsrc rdst; do
          zpool list -H $p >/dev/null 2>&1 && zpool destroy $p
          rm -f /pools/$p.img; truncate -s 3G /pools/$p.img
          zpool create -O atime=off -O compression=off $p /pools/$p.img
        done
        zfs create rsrc/random; zfs create rsrc/text
        dd if=/dev/urandom of=/rsrc/random/f bs=1M count={size_mib} status=none
        {{ yes 'zferry compresses streams that cross the network, 0123456789' || true; }} | head -c {size_mib}M > /rsrc/text/f
        zfs snapshot rsrc/random@s1; zfs snapshot rsrc/text@s1; zpool sync
        [ -f /root/.ssh/id_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519
        grep -qF "$(cat /root/.ssh/id_ed25519.pub)" /root/.ssh/authorized_keys || cat /root/.ssh/id_ed25519.pub >> /root/.ssh/authorized_keys
        printf 'Host hostb\\n  HostName 127.0.0.1\\n  StrictHostKeyChecking no\\n  UserKnownHostsFile /dev/null\\n  LogLevel ERROR\\n' > /root/.ssh/config
    """)


def push(kind: str, size_mib: int) -> None:
    raw = timed(lambda: sh(f"zfs send rsrc/{kind}@s1 | ssh hostb zfs receive -u rdst/raw"))
    sh("zfs destroy -r rdst/raw")
    ours = timed(lambda: sh(f"{IN_VM} rsrc/{kind} hostb:rdst/zf"))
    sh("zfs destroy -r rdst/zf")
    print(f"  push {kind:6} {size_mib} MiB: raw {raw:6.1f} s, zferry {ours:6.1f} s, ratio {ours / raw:.2f}")


def pull_push(kind: str, size_mib: int, config: str) -> None:
    ssh = ["ssh", "-F", config]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))

    def raw() -> None:
        send = subprocess.Popen([*ssh, "zfvm-a", f"zfs send rsrc/{kind}@s1"], stdout=subprocess.PIPE)
        subprocess.run([*ssh, "zfvm-b", "zfs receive -u rdst/raw"], stdin=send.stdout, check=True)
        send.wait()

    raw_s = timed(raw)
    sh("zfs destroy -r rdst/raw")
    ours = timed(
        lambda: subprocess.run(
            [
                sys.executable,
                "-m",
                "zferry",
                "--no-progress",
                "--ssh-src-config-file",
                config,
                "--ssh-dst-config-file",
                config,
                f"zfvm-a:rsrc/{kind}",
                "zfvm-b:rdst/zf",
            ],
            check=True,
            env=env,
        )
    )
    sh("zfs destroy -r rdst/zf")
    print(f"  pull-push {kind:6} {size_mib} MiB: raw {raw_s:6.1f} s, zferry {ours:6.1f} s, ratio {ours / raw_s:.2f}")


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
    args = parser.parse_args()
    subprocess.run([VM, "up"], check=True)
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
        push(kind, args.size_mib)
    for kind in ("random", "text"):
        pull_push(kind, args.size_mib, cfg.name)
    round_trips(cfg.name)
    os.unlink(cfg.name)


if __name__ == "__main__":
    main()
