"""What the read-only modes (`--compare-snapshot-lists`, `--monitor-snapshots`) share: a session
that reaches the hosts of a job without taking any lock, the sides of a pair, and durations in words.

They list with the same runner, ssh connections, privilege elevation and retries as replication,
and stop when the front end's cancel token is set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

from zferry.endpoints import Connector
from zferry.engine import CancelWatcher, JobConfig, Pair, make_runner
from zferry.exec.runner import Runner
from zferry.exec.ssh import SshConnections
from zferry.inventory import Side
from zferry.lifecycle.config import DUMMY


@dataclass
class Session:
    """A runner and the connector that turns endpoints into sides, for one read-only job."""

    runner: Runner
    connector: Connector
    config: JobConfig

    def sides(self, pair: Pair) -> tuple[Optional[Side], Optional[Side]]:
        """The source and destination of a pair; None for `dummy` (no dataset)."""
        src, dst = pair
        src_side = None if src.dataset == DUMMY else self.connector.side(src, self.config.ssh.src)
        dst_side = None if dst.dataset == DUMMY else self.connector.side(dst, self.config.ssh.dst)
        return src_side, dst_side


@contextmanager
def read_only_session(
    config: JobConfig,
    cancel: Optional[threading.Event] = None,
    runner: Optional[Runner] = None,
    shared: Optional[SshConnections] = None,
) -> Iterator[Session]:
    """Connect to the job's hosts (no lock: nothing is written); close everything at the end
    (but `shared` ssh connections, which their owner closes)."""
    runner = runner or make_runner(config)
    runner.dry_run = False  # only listings run, and a listing changes nothing
    watcher = CancelWatcher(cancel, runner) if cancel is not None else None
    if cancel is not None and cancel.is_set():
        runner.stop()
    connections = shared or SshConnections(config.ssh, runner.env, runner.cancel)
    try:
        connector = Connector(
            runner,
            connections,
            config.execution.privilege_elevation,
            config.execution.sudo,
            config.replication.stream.programs(),
            config.replication.retry,
        )
        yield Session(runner, connector, config)
    finally:
        runner.terminate_all()
        if shared is None:
            connections.close()
        if watcher is not None:
            watcher.close()


def human_duration(seconds: float) -> str:
    """A duration in words for logs: `45 s`, `12 min`, `3.5 h`, `2.0 days`."""
    if seconds < 0:
        return f"-{human_duration(-seconds)}"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
