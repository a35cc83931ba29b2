"""Private folders for ssh control sockets, and the removal of those a killed run left behind.

Each run keeps its ControlMaster sockets in a folder of its own, `zferry-ssh-<pid>-<random>` in the
temporary folder, removed when the run ends. A run killed with SIGKILL cannot remove it, and its
masters (killed too, or ended by PR_SET_PDEATHSIG) may leave their sockets in it; so every run first
removes the folders of runs whose process is gone. Only folders that are ours (owner, no symlink)
and whose pid no longer runs are touched: a live run's folder, or another user's, is never removed.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable
from typing import Callable, Optional

PREFIX = "zferry-ssh-"
_NAME = re.compile(rf"{PREFIX}(\d+)-[^/]+")


def new_control_dir() -> str:
    """A fresh private folder (mode 0700) named after this process, after sweeping stale ones."""
    parent = tempfile.gettempdir()
    remove_stale(parent)
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent)


def stale_names(names: Iterable[str], alive: Callable[[int], bool], own_pid: int) -> list[str]:
    """The control folder names among `names` whose run (the pid in the name) is gone."""
    out = []
    for name in names:
        match = _NAME.fullmatch(name)
        if match is not None and int(match.group(1)) != own_pid and not alive(int(match.group(1))):
            out.append(name)
    return out


def pid_alive(pid: int) -> bool:
    """True while a process `pid` exists (also one of another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(parent: str, alive: Optional[Callable[[int], bool]] = None) -> list[str]:
    """Remove the control folders in `parent` that belong to us and to a run no longer running."""
    try:
        names = [n for n in os.listdir(parent) if n.startswith(PREFIX)]
    except OSError:
        return []
    removed = []
    for name in stale_names(names, alive or pid_alive, os.getpid()):
        path = os.path.join(parent, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
