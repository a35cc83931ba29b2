"""Progress of a transfer: bytes, rate and ETA, as a live line on a terminal or a log line."""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, TextIO

log = logging.getLogger("zferry")


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def format_status(label: str, done: int, total: Optional[int], seconds: float) -> str:
    """`label: 512.0 MiB of 1.0 GiB (50%), 40.0 MiB/s, ETA 13 s` (total and ETA when known)."""
    rate = done / seconds if seconds > 0 else 0.0
    if total and done > total:
        total = None  # the estimate was low (small streams carry headers): show bytes and rate only
    text = f"{label}: {human_bytes(done)}"
    if total:
        text += f" of {human_bytes(total)} ({min(100, 100 * done // max(total, 1))}%)"
    text += f", {human_bytes(rate)}/s"
    if total and rate > 0 and done < total:
        text += f", ETA {int((total - done) / rate)} s"
    return text


@dataclass(frozen=True)
class TransferProgress:
    """One transfer's bytes so far, for a front end that shows live progress (the server's tasks)."""

    dataset: str  # the destination dataset
    transfer: int  # tells the transfers of one pair apart (a dataset may take several)
    bytes_done: int
    bytes_total: Optional[int]  # the estimate, when one was asked for


class Progress:
    """Receives byte counts (from `pv -n -b`) and reports them.

    On a terminal one line is redrawn in place; otherwise a log line per update (the meter's
    interval sets how often). `listener`, when given, also receives every count.
    """

    def __init__(
        self,
        label: str,
        total: Optional[int],
        stream: TextIO = sys.stderr,
        clock: Callable[[], float] = time.monotonic,
        quiet_seconds: float = 0.0,
        listener: Optional[Callable[[int], None]] = None,
    ) -> None:
        self.label = label
        self.listener = listener
        self.total = total
        self.stream = stream
        self.clock = clock
        self.started = clock()
        self.tty = stream.isatty()
        # In logs, a transfer shorter than one interval gets no progress line (pv's final count
        # would otherwise add a line per small transfer).
        self.quiet_seconds = 0.0 if self.tty else quiet_seconds
        self._lock = threading.Lock()
        self.last = 0

    def update(self, done: int) -> None:
        if self.listener is not None:
            self.listener(done)
        with self._lock:
            self.last = done
            if self.clock() - self.started < self.quiet_seconds:
                return
            line = format_status(self.label, done, self.total, self.clock() - self.started)
            if self.tty:
                self.stream.write(f"\r\033[K{line}")
                self.stream.flush()
            else:
                log.info("%s", line)

    def finish(self) -> None:
        if self.tty and self.last:
            self.stream.write("\n")
            self.stream.flush()
