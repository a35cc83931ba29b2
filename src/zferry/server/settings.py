"""What a server runs with: its token, the ZFS host it manages, its folders. Built by `cli`, or by tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from zferry.model import Endpoint


@dataclass(frozen=True)
class ServerSettings:
    token: str
    zfs_host: Optional[str] = None  # None: this machine's ZFS
    zfs_user: Optional[str] = None
    ssh_config_file: Optional[str] = None
    export_dir: Optional[str] = None
    import_dir: Optional[str] = None
    audit_log: Optional[str] = None  # forced receives and replicate's destroys are recorded here
    max_json_bytes: int = 64 * 1024
    task_ttl: float = 3600.0
    pools_cache_seconds: float = 2.0  # `zpool list` answers shared by concurrent status requests

    def endpoint(self, dataset: str) -> Endpoint:
        """`dataset` on the managed host."""
        return Endpoint(dataset, self.zfs_host, self.zfs_user)

    def pool_key(self, endpoint: Endpoint) -> str:
        """How a pool is named for busy checks: `pool` on the managed host, else `[user@]host:pool`."""
        pool = endpoint.dataset.split("/")[0]
        if endpoint.host is None or endpoint.host == self.zfs_host:
            return pool
        return f"{endpoint.host}:{pool}"
