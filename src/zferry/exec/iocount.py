"""Counting the bytes a local process writes without copying its output: the kernel's counter.

Linux keeps, per process, the bytes it wrote through write(2) and the kernel's own writes
(`wchar` in /proc/<pid>/io). `zfs send` writes nothing but the stream, so its `wchar` is the
stream's size so far, exactly (measured on OpenZFS 2.1 and 2.3: equal to `zfs send | wc -c`).
Reading it costs a file read per sample instead of a `pv` copying every byte.

The count stays readable until the process is reaped (a zombie keeps it), so the runner takes
the last sample after the later stages of the pipeline ended and before it reaps the sender.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class WriteMeter:
    """Report the bytes a stage's process has written to `callback`, every `interval` seconds and at its end."""

    callback: Callable[[int], None]
    interval: float


def available() -> bool:
    """Can this process read the kernel's per-process I/O counters (Linux with /proc)?"""
    return written(os.getpid()) is not None


def written(pid: int) -> Optional[int]:
    """The bytes process `pid` wrote so far (`wchar`), or None if the counter cannot be read."""
    try:
        with open(f"/proc/{pid}/io", encoding="ascii") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key == "wchar":
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


class Sampler:
    """Samples one child's write counter for its `WriteMeter`."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        interval: float,
        callback: Callable[[int], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.proc = proc
        self.interval = interval
        self.callback = callback
        self.clock = clock
        self.last = clock()

    def poll(self) -> None:
        """Report the count if an interval has passed since the last report."""
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self.sample()

    def sample(self) -> None:
        """Report the count now, if the child has not been reaped (its pid could be another's then)."""
        if self.proc.returncode is None:
            count = written(self.proc.pid)
            if count is not None:
                self.callback(count)
