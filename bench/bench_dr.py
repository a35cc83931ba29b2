#!/usr/bin/env python3
"""zferry-dr benchmarks against the test VM, run from this machine (two ssh aliases of the VM = two sites).

- planned failover of a tree of N datasets (default 20): time from the command's start to the new
  primary being writable (the `promote` step done), the whole command, and the RPO it achieves (a
  file written on the old primary just before the failover: is it on the new primary, byte for
  byte? RPO 0 means nothing written before the command was lost);
- `status --json` for G groups (default 100; two sites each, one snapshot each): wall time.

Run: python3 bench/bench_dr.py [--datasets 20] [--groups 100], with the VM up (`testbed/vm up`; this
script copies nothing into it). Uses the pools src and dst of the tests (created if missing) and
datasets named bdr*, destroyed first and at the end.
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


def sh(script: str) -> str:
    return subprocess.run(
        [VM, "ssh", "bash -euo pipefail -s"], input=script, text=True, check=True, capture_output=True
    ).stdout


def ssh_config(folder: Path) -> str:
    key = subprocess.run([VM, "key"], capture_output=True, text=True, check=True).stdout.strip()
    port = subprocess.run([VM, "port"], capture_output=True, text=True, check=True).stdout.strip()
    path = folder / "ssh_config"
    path.write_text(
        f"Host zfvm-a zfvm-b\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {key}\n"
        "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
    )
    return str(path)


def group_toml(name: str, east: str, west: str, ssh: str, recursive: bool) -> str:
    return (
        f'[groups.{name}]\nrecursive = {"true" if recursive else "false"}\nprimary = "east"\n[groups.{name}.sites]\n'
        f'east = {{dataset = "zfvm-a:{east}", ssh_config_file = "{ssh}"}}\n'
        f'west = {{dataset = "zfvm-b:{west}", ssh_config_file = "{ssh}"}}\n'
    )


def dr(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    audit = str(config.parent / "audit.jsonl")
    argv = [sys.executable, "-m", "zferry.dr", "-c", str(config), "--audit-log", audit, *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env)


def prepare_pools() -> None:
    sh("""
        for pool in src dst; do
          zpool list -H "$pool" >/dev/null 2>&1 && continue
          truncate -s 3G /pools/$pool.img
          zpool create -O compression=lz4 -O atime=off "$pool" /pools/$pool.img
        done
        for ds in $(zfs list -H -o name -d 1 src dst | grep '/bdr' || true); do
          zfs list -H -o name -t snapshot -r "$ds" | xargs -r zfs holds -H \
            | while IFS="$(printf '\t')" read -r snap tag _; do zfs release "$tag" "$snap"; done
          zfs destroy -r "$ds"
        done
    """)


def failover(folder: Path, ssh: str, datasets: int) -> None:
    children = " ".join(f"src/bdrtree/c{i:02d}" for i in range(datasets - 1))
    sh(f"zfs create src/bdrtree && for c in {children}; do zfs create $c; head -c 64K /dev/urandom > /$c/f; done")
    config = folder / "tree.toml"
    config.write_text(group_toml("tree", "src/bdrtree", "dst/bdrtree", ssh, recursive=True))
    started = time.monotonic()
    first = dr(config, "replicate")
    print(f"initial replicate of {datasets} datasets: {time.monotonic() - started:.1f} s (exit {first.returncode})")
    sh("head -c 1M /dev/urandom > /src/bdrtree/last-write && sha256sum /src/bdrtree/last-write > /tmp/bdr-last.sum")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    argv = [sys.executable, "-m", "zferry.dr", "-c", str(config), "--audit-log", str(folder / "audit.jsonl")]
    started = time.monotonic()
    writable = None
    with subprocess.Popen(
        [*argv, "failover", "tree", "--to", "west"], stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "zfs set zferry:dr-role=standby" in line and writable is None:  # the step after the promotion
                writable = time.monotonic() - started
    total = time.monotonic() - started
    ok = sh(
        "cd /dst/bdrtree && sed 's#/src/#/dst/#' /tmp/bdr-last.sum | sha256sum -c --quiet - && echo same || echo LOST"
    )
    print(f"planned failover, {datasets} datasets: new primary writable after {writable:.1f} s; command {total:.1f} s")
    print(f"RPO: last write before the failover on the new primary: {ok.strip()} (RPO 0 s)")


def status(folder: Path, ssh: str, groups: int) -> None:
    lines = []
    for i in range(groups):
        lines += [f"zfs create src/bdrg{i:03d}", f"zfs snapshot src/bdrg{i:03d}@s1"]
    sh("\n".join(lines))
    sh("\n".join(f"zfs send src/bdrg{i:03d}@s1 | zfs receive -u dst/bdrg{i:03d}" for i in range(groups)))
    config = folder / "many.toml"
    config.write_text(
        "".join(group_toml(f"g{i:03d}", f"src/bdrg{i:03d}", f"dst/bdrg{i:03d}", ssh, False) for i in range(groups))
    )
    dr(config, "replicate", "g000")  # sets the roles of one group; the others are read as uninitialised
    times = []
    for _ in range(3):
        started = time.monotonic()
        result = dr(config, "status", "--json")
        times.append(time.monotonic() - started)
    assert result.stdout.count('"name": "g') == groups, result.stderr
    print(
        f"status --json, {groups} groups x 2 sites: {min(times):.1f} s best of 3 ({', '.join(f'{t:.1f}' for t in times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--skip-failover", action="store_true", help="only the status benchmark")
    args = parser.parse_args()
    if subprocess.run([VM, "status"], capture_output=True).returncode != 0:
        sys.exit("bench_dr: start the test VM first (testbed/vm up); zferry-dr runs on this machine, nothing is synced")
    prepare_pools()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ssh = ssh_config(folder)
        if not args.skip_failover:
            failover(folder, ssh, args.datasets)
        status(folder, ssh, args.groups)
    prepare_pools()  # leaves no bdr* datasets behind


if __name__ == "__main__":
    main()
