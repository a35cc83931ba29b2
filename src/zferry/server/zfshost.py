"""The ZFS host a server manages: this machine, or one host over ssh through one ControlMaster.

Queries (lists, estimates, pools) run through one long-lived runner; each task gets a runner of
its own, so that cancelling a task terminates its processes only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Optional

from zferry import zfs
from zferry.endpoints import Connector
from zferry.errors import DatasetNotFound
from zferry.exec.host import Host
from zferry.exec.runner import Runner
from zferry.exec.ssh import SshConnections, SshSettings, SshSide
from zferry.model import Dataset, Endpoint, Version
from zferry.observe.audit import AuditLog, Origin
from zferry.server.sendspace import SendSpace
from zferry.server.settings import ServerSettings

POOL_COLUMNS = ("name", "health", "size", "allocated", "free")


def list_pools() -> list[str]:
    """`zpool list` of every pool with the columns the status shows, in bytes."""
    return ["zpool", "list", "-H", "-p", "-o", ",".join(POOL_COLUMNS)]


def parse_pools(output: str) -> list[dict[str, Any]]:
    """`list_pools` output as a list of {name, health, size, allocated, free}. Pure."""
    pools = []
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) == len(POOL_COLUMNS):
            row: dict[str, Any] = dict(zip(POOL_COLUMNS, fields))
            for key in ("size", "allocated", "free"):
                row[key] = int(row[key]) if row[key].isdigit() else None
            pools.append(row)
    return pools


class ZfsHost:
    """Runs zfs commands on the managed host (connecting on first use)."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.side = SshSide(config_file=settings.ssh_config_file)
        self.runner = Runner()
        self.connections = SshConnections(SshSettings(src=self.side, dst=self.side), cancel=self.runner.cancel)
        self._connector = Connector(self.runner, self.connections)
        self._host: Optional[Host] = None
        self._lock = threading.Lock()
        self._pools: tuple[float, list[dict[str, Any]]] = (0.0, [])
        self._pools_lock = threading.Lock()
        self.send_space = SendSpace(lambda: self.host)

    @property
    def host(self) -> Host:
        """The managed host (its ssh master is started the first time)."""
        with self._lock:
            if self._host is None:
                endpoint = Endpoint("-", self.settings.zfs_host, self.settings.zfs_user)
                self._host = self._connector.host(endpoint, self.side)[0]
                self.send_space.prepare()
            return self._host

    def task_runner(self, job: str) -> Runner:
        """A runner for one task, recording to the audit log when the server has one."""
        trail = AuditLog(self.settings.audit_log, Origin.current(job)) if self.settings.audit_log else None
        return Runner(audit=trail)

    def query(self, argv: Sequence[str]) -> str:
        """Run a read-only command on the host; its output."""
        return self.runner.run(self.host, argv, classify=zfs.classify_error)

    def dataset(self, name: str) -> Optional[Dataset]:
        """The dataset `name`, or None when it does not exist."""
        try:
            output = self.query(zfs.list_datasets(name, recursive=False))
        except DatasetNotFound:
            return None
        return zfs.parse_datasets(output).get(name)

    def versions(self, name: str) -> tuple[Version, ...]:
        """The snapshots and bookmarks of `name`, oldest first (with creation times)."""
        output = self.query(zfs.list_versions(name, detail=True, recursive=False))
        return zfs.parse_versions(output, detail=True).get(name, ())

    def send_size(self, send: Sequence[str]) -> Optional[int]:
        """The size estimate of the send `send`: libzfs_core's where the host has pyzfs, else `zfs send -nP`'s."""
        size = self.send_space.estimate(send)
        if size is not None:
            return size
        return zfs.parse_size_estimate(self.query(zfs.send_size_estimate(send)))

    def pools(self) -> list[dict[str, Any]]:
        """The host's pools; one `zpool list` serves every caller for `pools_cache_seconds`."""
        with self._pools_lock:
            taken, pools = self._pools
            if time.monotonic() - taken > self.settings.pools_cache_seconds or not pools:
                pools = parse_pools(self.query(list_pools()))
                self._pools = (time.monotonic(), pools)
            return [dict(p) for p in pools]

    def close(self) -> None:
        """Terminate what the query runner runs, the send-size helper and the ssh master."""
        self.send_space.close()
        self.runner.terminate_all()
        self.connections.close()
