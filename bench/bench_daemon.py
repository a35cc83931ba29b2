#!/usr/bin/env python3
"""Daemon mode at `secondly`: ticks per minute, CPU seconds per tick, zfs processes per tick when
nothing changed, ssh handshakes after the first.

Inside the VM, a push to the VM itself over real ssh (`hostb`), for `--seconds` (default 60) each:
- a no-op daemon (the destination is up to date, `--cache-snapshots`): every zfs process counted,
  local ones by a `zfs` wrapper first on PATH, remote ones from the commands a wrapper around ssh
  passes on; ssh handshakes are the master connections started (`ssh -M`);
- a "snapshot and replicate every second" daemon (`--create-src-snapshots`, a secondly plan).
CPU seconds are the daemon process's own (getrusage RUSAGE_SELF) and its children's (zfs, ssh, pv).

Run: python3 bench/bench_daemon.py [--seconds 60] (ZFERRY_VM_CHECKOUT selects the guest checkout;
it is synced by `testbed/vm up`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VM = str(ROOT / "testbed" / "vm")
CHECKOUT = os.environ.get("ZFERRY_VM_CHECKOUT", "/opt/zferry")
TAG = f"benchdaemon{os.getpid() % 100000}"
ZFS_LOG, SSH_LOG = f"/tmp/{TAG}-zfs", f"/tmp/{TAG}-ssh"
# Runs zferry's main in this python and reports the process's own CPU time and its children's.
LAUNCHER = (
    "import resource, runpy, sys\n"
    "sys.argv = ['zferry', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('zferry', run_name='__main__')\n"
    "finally:\n"
    "    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "    print(f'cpu self={me.ru_utime + me.ru_stime:.3f} children={kids.ru_utime + kids.ru_stime:.3f}',"
    " file=sys.stderr)\n"
)


def sh(script: str) -> str:
    proc = subprocess.run([VM, "ssh", "bash -euo pipefail -s"], input=script, text=True, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"VM script failed ({proc.returncode}):\n{script}\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc.stdout


def setup() -> tuple[str, str]:
    """Pools (as the tests make them), a small dataset with one snapshot, the counting wrappers, hostb."""
    src, dst = f"src/{TAG}", f"dst/{TAG}"
    sh(f"""
        for pool in src dst; do
          zpool list -H "$pool" >/dev/null 2>&1 && continue
          truncate -s 2G /pools/$pool.img; zpool create -O compression=lz4 -O atime=off "$pool" /pools/$pool.img
        done
        zfs create {src}; head -c 1M /dev/urandom > /{src}/data; zfs snapshot {src}@s0
        mkdir -p /opt/{TAG}
        printf '#!/bin/sh\\necho "$*" >> {ZFS_LOG}\\nexec /usr/sbin/zfs "$@"\\n' > /opt/{TAG}/zfs
        printf '#!/bin/sh\\necho "ssh-call $*" >> {SSH_LOG}\\nexec /usr/bin/ssh "$@"\\n' > /opt/{TAG}/ssh
        chmod +x /opt/{TAG}/zfs /opt/{TAG}/ssh
        [ -f /root/.ssh/id_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519
        grep -qF "$(cat /root/.ssh/id_ed25519.pub)" /root/.ssh/authorized_keys \\
          || cat /root/.ssh/id_ed25519.pub >> /root/.ssh/authorized_keys
        grep -q '^Host hosta hostb' /root/.ssh/config 2>/dev/null || printf 'Host hosta hostb\\n  HostName 127.0.0.1\\n  StrictHostKeyChecking no\\n  UserKnownHostsFile /dev/null\\n  LogLevel ERROR\\n' > /root/.ssh/config
    """)
    sh(f"cat > /opt/{TAG}/launch.py <<'PY'\n{LAUNCHER}PY\n")
    return src, dst


def daemon(seconds: int, src: str, dst: str, *extra: str) -> dict[str, float]:
    """One daemon run at secondly with the counters reset; its figures."""
    args = " ".join(
        [
            f"--daemon-lifetime {seconds}seconds --daemon-frequency secondly --cache-snapshots",
            f"--cache-dir /tmp/{TAG}-cache --ssh-program /opt/{TAG}/ssh",
            *extra,
            f"{src} hostb:{dst}",
        ]
    )
    out = sh(f"""
        rm -f {ZFS_LOG} {SSH_LOG}; cd {CHECKOUT}
        PATH=/opt/{TAG}:$PATH PYTHONPATH=src python3 /opt/{TAG}/launch.py {args} 2>&1
        echo "zfs-local=$(cat {ZFS_LOG} 2>/dev/null | wc -l)"
        cat {SSH_LOG}
    """)
    ticks = int(re.findall(r"lifetime over after (\d+) tick", out)[0])
    cpu_self, cpu_children = (float(x) for x in re.findall(r"cpu self=([0-9.]+) children=([0-9.]+)", out)[0])
    ssh_lines = [line for line in out.splitlines() if line.startswith("ssh-call ")]
    masters = sum(" -M " in line for line in ssh_lines)
    remote_zfs = sum(len(re.findall(r"(?<![\w/.-])zfs\s", line)) for line in ssh_lines if " -M " not in line)
    local_zfs = int(re.findall(r"zfs-local=(\d+)", out)[0])
    return {
        "ticks": ticks,
        "cpu_self": cpu_self,
        "cpu_children": cpu_children,
        "zfs": local_zfs + remote_zfs,
        "zfs_local": local_zfs,
        "zfs_remote": remote_zfs,
        "ssh_calls": len(ssh_lines) - masters,
        "ssh_handshakes": masters,
        "skipped": sum(int(n) for n in re.findall(r"skipped (\d+) tick", out)),
    }


def show(title: str, seconds: int, r: dict[str, float]) -> None:
    ticks = r["ticks"]
    print(f"{title}:")
    print(f"  ticks: {ticks} in {seconds} s = {ticks * 60 / seconds:.1f} per minute ({r['skipped']} skipped)")
    print(f"  CPU per tick: zferry {r['cpu_self'] / ticks:.3f} s, its children {r['cpu_children'] / ticks:.3f} s")
    print(
        f"  zfs processes per tick: {r['zfs'] / ticks:.2f} ({r['zfs_local']} local + {r['zfs_remote']} remote "
        f"in {ticks} ticks)"
    )
    print(f"  ssh: {r['ssh_handshakes']} handshake(s) (master connections), {r['ssh_calls']} commands over them")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    seconds = parser.parse_args().seconds
    subprocess.run([VM, "up"], check=True)
    src, dst = setup()
    try:
        sh(f"cd {CHECKOUT} && PYTHONPATH=src python3 -m zferry --no-progress {src} hostb:{dst}")
        show("no-op daemon (destination up to date)", seconds, daemon(seconds, src, dst))
        plan = json.dumps({"db": {"": {"secondly": 100}}}).replace('"', '\\"')
        created = daemon(seconds, src, dst, f'--create-src-snapshots --create-src-snapshots-plan "{plan}"')
        show("snapshot and replicate every second", seconds, created)
    finally:
        sh(f"zfs destroy -r {src} || true; zfs destroy -r {dst} || true; rm -rf /opt/{TAG} /tmp/{TAG}-*")


if __name__ == "__main__":
    main()
