"""The ssh master connections the sub-jobs of one jobrunner run share.

Sub-jobs with the same ssh settings and environment (with the same passed-through options, all of
them) get one `SshConnections`, which keeps one master per (user, host, port, ssh options): ten
sub-jobs to a host make one ssh handshake, not ten. `SshConnections` is thread-safe; the pool
closes every master at the end of the run, a stop by a signal included.
"""

from __future__ import annotations

import threading
from typing import Optional

from zferry.engine import JobConfig
from zferry.exec.ssh import SshConnections, SshSettings


class SharedConnections:
    """One `SshConnections` per (ssh settings, environment), made on first use; `close()` ends them all."""

    def __init__(self, cancel: Optional[threading.Event] = None) -> None:
        self.cancel = cancel or threading.Event()
        self._pools: dict[tuple[SshSettings, Optional[tuple[tuple[str, str], ...]]], SshConnections] = {}
        self._lock = threading.Lock()
        self._closed = False

    def get(self, job: JobConfig) -> Optional[SshConnections]:
        """The connections for `job`'s ssh settings, or None once closed (the job then makes its own)."""
        env = job.execution.env
        key = (job.ssh, tuple(sorted(env.items())) if env is not None else None)
        with self._lock:
            if self._closed:
                return None
            if key not in self._pools:
                self._pools[key] = SshConnections(job.ssh, env, self.cancel)
            return self._pools[key]

    def close(self) -> None:
        """Stop every master and remove the control sockets."""
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()
