"""Drive the OpenZFS test VM from tests: run shell scripts and zferry inside it, read back state.

The VM is the project's own (testbed/vm). Every call goes over one ssh ControlMaster
connection, so a call costs a fraction of a second instead of a fresh 2-3 s handshake.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
VM_SCRIPT = PROJECT / "testbed" / "vm"
GUEST_CHECKOUT = os.environ.get("ZFERRY_VM_CHECKOUT", "/opt/zferry")
_counter = itertools.count(1)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Vm:
    """A running test VM."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.zfs_version = parse_zfs_version(self.sh("zfs version"))

    def require_zfs(self, major: int, minor: int, reason: str) -> None:
        """Skip the calling test when the VM's OpenZFS is older than `major.minor`."""
        if self.zfs_version < (major, minor):
            version = ".".join(map(str, self.zfs_version))
            pytest.skip(f"needs OpenZFS >= {major}.{minor} (the VM has {version}): {reason}")

    def _ssh(self, remote: str, stdin: str = "", timeout: float = 600) -> Result:
        proc = subprocess.run(
            [str(VM_SCRIPT), "ssh", remote], input=stdin, capture_output=True, text=True, env=self.env, timeout=timeout
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def sh(self, script: str, check: bool = True, timeout: float = 600) -> str:
        """Run a bash script in the VM as root (set -euo pipefail); return its stdout."""
        result = self._ssh("bash -euo pipefail -s", script, timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"VM script failed ({result.returncode}):\n{script}\n--- stderr:\n{result.stderr}")
        return result.stdout

    def zferry(self, *args: str, check: bool = True, env: str = "", timeout: float = 600) -> Result:
        """Run the checkout's zferry inside the VM (local mode)."""
        command = f"cd {GUEST_CHECKOUT} && {env} PYTHONPATH=src python3 -m zferry {shlex.join(args)}"
        result = self._ssh(command, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"zferry {' '.join(args)} exited {result.returncode}:\n{result.output}")
        return result

    def snapshot_guids(self, root: str) -> dict[str, int]:
        """Snapshots under `root`, named relative to it (`@s1`, `/child@s1`), mapped to their GUIDs."""
        out = self.sh(f"zfs list -H -p -t snapshot -o name,guid -r {shlex.quote(root)} 2>/dev/null || true")
        guids = {}
        for line in out.splitlines():
            name, guid = line.split("\t")
            guids[name[len(root) :]] = int(guid)
        return guids

    def datasets(self, root: str) -> list[str]:
        """Filesystems and volumes under `root` (relative names, the root itself as '')."""
        out = self.sh(f"zfs list -H -o name -t filesystem,volume -r {shlex.quote(root)} 2>/dev/null || true")
        return [line[len(root) :] for line in out.splitlines()]

    def exists_path(self, path: str) -> bool:
        return self._ssh(f"test -e {shlex.quote(path)}").returncode == 0

    def exists(self, dataset: str) -> bool:
        return self._ssh(f"zfs list -H -o name {shlex.quote(dataset)} >/dev/null 2>&1").returncode == 0


def parse_zfs_version(text: str) -> tuple[int, int, int]:
    """`zfs version`'s first line (`zfs-2.1.11-1`) as (2, 1, 11)."""
    match = re.search(r"zfs-(\d+)\.(\d+)\.(\d+)", text)
    if match is None:
        raise AssertionError(f"cannot read the OpenZFS version from: {text!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def unique_name(prefix: str) -> str:
    """A dataset name component no other test (or earlier run in the same VM) uses."""
    return f"{prefix}{os.getpid() % 100000}x{next(_counter)}"
