"""SIGTERM/SIGINT as a stop of the runner: the handler only writes to a pipe, a thread acts on it."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Optional

from zferry.exec.runner import Runner


class SignalStop:
    """Turns SIGTERM/SIGINT into `runner.stop(signum)` on a watcher thread.

    The handler only writes the signal number to a pipe: it runs between two bytecodes of the
    main thread, which may hold any lock at that moment (the runner's, a logging handler's).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._watcher = threading.Thread(target=self._watch, name="zferry-signals", daemon=True)
        self._watcher.start()
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        try:
            os.write(self._write, bytes([signum]))
        except OSError:
            pass  # the pipe is full: a stop is already on its way

    def _watch(self) -> None:
        data = os.read(self._read, 1)
        if data and data[0]:
            self.runner.stop(data[0])

    def close(self) -> None:
        """Restore the previous handlers and end the watcher."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        os.write(self._write, b"\0")  # wakes the watcher, which then ends without stopping anything
        self._watcher.join(timeout=5)
        os.close(self._write)
        os.close(self._read)
