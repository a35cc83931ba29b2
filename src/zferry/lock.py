"""One writer per destination: advisory `flock`s keyed on the destination host and root.

Lock files live in a private folder: `/run/zferry` for root, else `$XDG_RUNTIME_DIR/zferry`, else
`zferry-<uid>` in the temp folder. The folder must be ours and writable by nobody else (a world-writable
folder would let any local user plant a symlink or hold the lock); files are opened with O_NOFOLLOW
and never truncated before they are locked and checked. The kernel drops an flock when its holder
dies (even by kill -9), so a stale lock never blocks the next run.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Callable, Optional

from zferry.errors import LockedError, UsageError

log = logging.getLogger("zferry")


def default_lock_dir() -> str:
    """/run/zferry for root, else the per-user runtime folder (or a private folder in the temp folder)."""
    if os.geteuid() == 0:
        return "/run/zferry"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "zferry")
    return os.path.join(tempfile.gettempdir(), f"zferry-{os.geteuid()}")


def private_dir(path: str, what: str = "--lock-dir") -> str:
    """Create `path` (mode 0700) if missing; refuse it unless it is a real folder of ours, writable by us alone."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as error:
        raise UsageError(f"{what}: cannot create {path!r}: {error.strerror}") from None
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{what}: {path!r} is not a folder (a symlink?); remove it or choose another with {what}")
    if info.st_uid != os.geteuid():
        raise UsageError(f"{what}: {path!r} belongs to uid {info.st_uid}, not to us; choose a folder of our own")
    if info.st_mode & 0o022:
        raise UsageError(
            f"{what}: {path!r} is writable by group or others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"chmod go-w it or choose another folder"
        )
    return path


def lock_key(host: Optional[str], root: str) -> str:
    """The lock file name for writes to `root` on `host` (None: this machine)."""
    digest = hashlib.sha256(f"{host or ''}\0{root}".encode()).hexdigest()[:24]
    return f"dst-{digest}.lock"


def stale_holder(content: str) -> Optional[int]:
    """The pid a lock file names ("pid N"), if that process no longer exists (its holder died)."""
    word = content.strip().rpartition(" ")[2]
    if not content.startswith("pid ") or not word.isdigit() or int(word) == os.getpid():
        return None
    try:
        os.kill(int(word), 0)
    except ProcessLookupError:
        return int(word)
    except PermissionError:  # exists, belongs to someone else
        return None
    return None


class DestinationLocks:
    """`with DestinationLocks(targets, dir, wait):` holds one lock per (host, root), or raises LockedError.

    Locks are taken in sorted order, so two runs with overlapping destinations cannot deadlock.
    `wait` seconds are spent retrying (watching `cancel`) before giving up.
    """

    def __init__(
        self,
        targets: Sequence[tuple[Optional[str], str]],
        lock_dir: Optional[str] = None,
        wait: float = 0.0,
        cancel: Optional[threading.Event] = None,
        on_takeover: Optional[Callable[[str, str, int], None]] = None,
    ) -> None:
        self.dir = lock_dir or default_lock_dir()
        # called with (lock file, "host:root", pid) when the file names a holder whose process is gone
        self.on_takeover = on_takeover
        self.targets = sorted(set(targets), key=lambda t: (t[0] or "", t[1]))
        self.wait = wait
        self.cancel = cancel or threading.Event()
        self._fds: list[int] = []

    def __enter__(self) -> DestinationLocks:
        private_dir(self.dir)
        try:
            for host, root in self.targets:
                self._fds.append(self._take(os.path.join(self.dir, lock_key(host, root)), host, root))
        except BaseException:
            self._release()
            raise
        return self

    def _take(self, path: str, host: Optional[str], root: str) -> int:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise UsageError(f"lock file {path!r} is a symlink; remove it") from None
            raise UsageError(f"cannot open lock file {path!r}: {error.strerror}") from None
        try:
            self._check_file(fd, path)
            self._acquire(fd, path, host, root)
            stale = stale_holder(os.pread(fd, 64, 0).decode(errors="replace"))
            if stale is not None:  # the file names a run that ended without releasing the lock: killed
                where = f"{host}:{root}" if host else root
                log.warning("taking over the lock for %s from pid %d, which ended without releasing it", where, stale)
                if self.on_takeover is not None:
                    self.on_takeover(path, where, stale)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _check_file(fd: int, path: str) -> None:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink != 1:
            raise UsageError(f"lock file {path!r} is not a plain file of ours (a hard link?); remove it")

    def _acquire(self, fd: int, path: str, host: Optional[str], root: str) -> None:
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline or self.cancel.wait(min(0.2, max(0.0, deadline - time.monotonic()))):
                break
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "pid unknown"
        where = f"{host}:{root}" if host else root
        waited = f" after waiting {self.wait:g} s" if self.wait else ""
        raise LockedError(
            f"another zferry run writing to {where} holds its lock ({holder}){waited}; not running. "
            f"Try again later, or wait for it with --lock-wait SECONDS (lock file {path})"
        )

    def _release(self) -> None:
        for fd in reversed(self._fds):
            try:
                os.ftruncate(fd, 0)  # a clean end names no holder: a pid left in the file means a crash
            except OSError:
                pass
            os.close(fd)  # closing drops the flock
        self._fds = []

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._release()
