"""What a host offers: are we root there, and which stream helpers (zstd, mbuffer, pv) exist.

The helpers probed are the ones configured (`--compression-program=/usr/bin/zstd` is looked
for as given). A remote host is asked once, in one ssh round trip that also opens its
ControlMaster.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from zferry.exec.host import Host
from zferry.exec.runner import Runner

HELPERS = ("zstd", "mbuffer", "pv")


@dataclass(frozen=True)
class Capabilities:
    is_root: bool
    programs: frozenset[str]
    # The host's clock minus ours, in seconds, give or take `clock_error` (a round trip).
    clock_offset: float = 0.0
    clock_error: float = 0.0
    # The host's own clock as the probe read it (whole seconds) and our `time.monotonic()` when the
    # probe answered, after that reading: a lower bound of the host's time for the snapshot caches.
    host_clock: Optional[tuple[int, float]] = None
    zfs_version: Optional[tuple[int, int]] = None  # (major, minor) of the loaded OpenZFS, where known

    def has(self, program: str) -> bool:
        return program in self.programs


def probe_script(programs: Sequence[str]) -> list[str]:
    """A POSIX sh command printing `uid=N`, `now=UNIX_TIME` and each program found (a name on PATH, or a path)."""
    checks = "".join(f"command -v {shlex.quote(p)} >/dev/null 2>&1 && echo {shlex.quote(p)}; " for p in programs)
    version = "zfsver=$(cat /sys/module/zfs/version 2>/dev/null || sysctl -n vfs.zfs.version.module 2>/dev/null)"
    return ["sh", "-c", f"echo uid=$(id -u) now=$(date +%s) {version}; {checks}true"]


def parse_probe(output: str, started: float = 0.0, ended: float = 0.0, ended_monotonic: float = 0.0) -> Capabilities:
    """Parse `probe_script` output; `started`/`ended` (our clock) bracket the call, for the clock
    offset; `ended_monotonic` is our monotonic clock when it answered."""
    words = output.split()
    uid = next((w[4:] for w in words if w.startswith("uid=")), "")
    now = next((w[4:] for w in words if w.startswith("now=")), "")
    version = parse_zfs_version(next((w[7:] for w in words if w.startswith("zfsver=")), ""))
    programs = frozenset(w for w in words if "=" not in w)
    if not now.isdigit() or not ended:
        return Capabilities(uid == "0", programs, 0.0, float("inf"), zfs_version=version)
    middle = (started + ended) / 2
    clock = (int(now), ended_monotonic)
    return Capabilities(uid == "0", programs, int(now) - middle, (ended - started) / 2 + 1, clock, version)


def parse_zfs_version(text: str) -> Optional[tuple[int, int]]:
    """`2.3.2-2~bpo12+2` (the module's version) as (2, 3); None if it is not one."""
    match = re.match(r"(?:zfs-)?(\d+)\.(\d+)", text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def local_zfs_version() -> Optional[tuple[int, int]]:
    """The loaded OpenZFS module's version on this machine (Linux: a file; else unknown)."""
    try:
        with open("/sys/module/zfs/version", encoding="ascii") as handle:
            return parse_zfs_version(handle.read())
    except OSError:
        return None


def probe(runner: Runner, host: Host, programs: Sequence[str] = HELPERS) -> Capabilities:
    """Capabilities of `host` (local: no process is started)."""
    if host.is_local:
        found = frozenset(p for p in programs if shutil.which(p))
        return Capabilities(os.geteuid() == 0, found, zfs_version=local_zfs_version())
    started = time.time()
    output = runner.run(host, probe_script(programs))
    return parse_probe(output, started, time.time(), time.monotonic())
