"""One run of a job at a time: an advisory lock file keyed on the job's arguments."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Optional

from zferry.errors import LockedError


def default_lock_dir() -> str:
    return os.path.join(tempfile.gettempdir(), f"zferry-locks-{os.getuid()}")


class JobLock:
    """`with JobLock(args):` holds a lock for this exact job, or raises LockedError.

    The kernel drops an flock when its holder dies (even by kill -9), so a stale lock
    never blocks the next run.
    """

    def __init__(self, job_args: Sequence[str], lock_dir: Optional[str] = None) -> None:
        digest = hashlib.sha256("\0".join(job_args).encode()).hexdigest()[:24]
        self.path = os.path.join(lock_dir or default_lock_dir(), f"{digest}.lock")
        self._file: Optional[IO[str]] = None

    def __enter__(self) -> JobLock:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise LockedError(
                f"another zferry run of this same job is in progress ({holder}); "
                f"skipping this run (lock file {self.path})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._file = handle
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
