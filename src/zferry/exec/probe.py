"""What a host offers: are we root there, and which stream helpers (zstd, mbuffer, pv) exist.

The helpers probed are the ones configured (`--compression-program=/usr/bin/zstd` is looked
for as given). A remote host is asked once, in one ssh round trip that also opens its
ControlMaster.
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass

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

    def has(self, program: str) -> bool:
        return program in self.programs


def probe_script(programs: Sequence[str]) -> list[str]:
    """A POSIX sh command printing `uid=N`, `now=UNIX_TIME` and each program found (a name on PATH, or a path)."""
    checks = "".join(f"command -v {shlex.quote(p)} >/dev/null 2>&1 && echo {shlex.quote(p)}; " for p in programs)
    return ["sh", "-c", f"echo uid=$(id -u) now=$(date +%s); {checks}true"]


def parse_probe(output: str, started: float = 0.0, ended: float = 0.0) -> Capabilities:
    """Parse `probe_script` output; `started`/`ended` (our clock) bracket the call, for the clock offset."""
    words = output.split()
    uid = next((w[4:] for w in words if w.startswith("uid=")), "")
    now = next((w[4:] for w in words if w.startswith("now=")), "")
    programs = frozenset(w for w in words if "=" not in w)
    if not now.isdigit() or not ended:
        return Capabilities(uid == "0", programs, 0.0, float("inf"))
    middle = (started + ended) / 2
    return Capabilities(uid == "0", programs, int(now) - middle, (ended - started) / 2 + 1)


def probe(runner: Runner, host: Host, programs: Sequence[str] = HELPERS) -> Capabilities:
    """Capabilities of `host` (local: no process is started)."""
    if host.is_local:
        return Capabilities(os.geteuid() == 0, frozenset(p for p in programs if shutil.which(p)))
    started = time.time()
    output = runner.run(host, probe_script(programs))
    return parse_probe(output, started, time.time())
