"""What a host offers: are we root there, and which stream helpers (zstd, mbuffer, pv) exist.

A remote host is asked once, in one ssh round trip that also opens its ControlMaster.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

from zferry.exec.host import Host
from zferry.exec.runner import Runner

HELPERS = ("zstd", "mbuffer", "pv")


@dataclass(frozen=True)
class Capabilities:
    is_root: bool
    programs: frozenset[str]

    def has(self, program: str) -> bool:
        return program in self.programs


def probe_script(programs: Sequence[str]) -> list[str]:
    """A POSIX sh command printing `uid=N` and the name of each program found on PATH."""
    checks = "; ".join(f"command -v {p} >/dev/null 2>&1 && echo {p}" for p in programs)
    return ["sh", "-c", f"echo uid=$(id -u); {checks}; true"]


def parse_probe(output: str) -> Capabilities:
    lines = output.split()
    uid = next((line[4:] for line in lines if line.startswith("uid=")), "")
    return Capabilities(uid == "0", frozenset(line for line in lines if not line.startswith("uid=")))


def probe(runner: Runner, host: Host, programs: Sequence[str] = HELPERS) -> Capabilities:
    """Capabilities of `host` (local: no process is started)."""
    if host.is_local:
        return Capabilities(os.geteuid() == 0, frozenset(p for p in programs if shutil.which(p)))
    return parse_probe(runner.run(host, probe_script(programs)))
