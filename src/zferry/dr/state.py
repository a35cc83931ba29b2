"""What each site says about itself: DR role and epoch (user properties of its root), snapshots, writes.

`SiteState` is plain data; `parse_site` builds it from three listings (pure). `Sites` reads and
writes them through the exec layer: one `zfs get` (the tree's DR properties, `readonly`, `written`,
`origin`), one `zfs list` of snapshots and one `zpool list` per site, sites in parallel; every
change is one batched `zfs set`, recorded through `zferry.destructive` (the audit log).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

from zferry import destructive, zfs
from zferry.dr.config import Group, Site
from zferry.endpoints import Connector
from zferry.errors import CommandError, DatasetNotFound
from zferry.exec.host import Host
from zferry.exec.runner import Runner
from zferry.exec.ssh import SshSide
from zferry.fencing import EPOCH_PROPERTY, ROLE_PROPERTY, parse_epoch, parse_role
from zferry.model import Version
from zferry.observe import audit

log = logging.getLogger("zferry")

MUST_FENCE_PROPERTY = "zferry:dr-must-fence"
"""On a site promoted while the old primary was unreachable: the sites to fence on first contact (comma-separated)."""
PENDING_PROPERTY = "zferry:dr-pending"
"""A multi-step operation under way on this site: `failover:<to>:<epoch>` or `failback:<aside dataset>`."""
DR_LOCAL_PROPERTIES = (MUST_FENCE_PROPERTY, PENDING_PROPERTY)
READ_PROPERTIES = (
    ROLE_PROPERTY,
    EPOCH_PROPERTY,
    *DR_LOCAL_PROPERTIES,
    "readonly",
    "written",
    "origin",
    "mounted",
    "canmount",
)


@dataclass(frozen=True)
class DatasetState:
    """One filesystem or volume of a site's tree, named relative to the site's root ('' is the root)."""

    written: int = 0  # bytes written since its latest snapshot
    origin: Optional[str] = None  # a clone's origin snapshot
    mountable: bool = False  # a filesystem that is not mounted and may be (canmount=on)


@dataclass(frozen=True)
class SiteState:
    """A site as read: reachable or not, its root's DR state, its tree's datasets and snapshots."""

    site: str
    reachable: bool = True
    error: str = ""  # why it could not be read
    exists: bool = False  # the root dataset exists
    role: Optional[str] = None
    epoch: Optional[int] = None
    must_fence: tuple[str, ...] = ()
    pending: str = ""
    readonly: bool = False
    health: str = ""
    datasets: Mapping[str, DatasetState] = field(default_factory=dict)
    snapshots: Mapping[str, tuple[Version, ...]] = field(default_factory=dict)  # relative name -> oldest first

    @property
    def usable(self) -> bool:
        return self.reachable and self.exists

    def latest(self, rel: str = "") -> Optional[Version]:
        snaps = self.snapshots.get(rel, ())
        return snaps[-1] if snaps else None


def relative(root: str, name: str) -> Optional[str]:
    """`name` relative to `root` ('' for the root, '/child' below it), None when outside the tree."""
    if name == root:
        return ""
    return name[len(root) :] if name.startswith(root + "/") else None


def parse_site(site: str, root: str, properties: str, snapshots: str, health: str) -> SiteState:
    """A reachable site's state from `zfs.get_values`, `zfs.list_versions` (detail) and `zpool list` output."""
    values: dict[str, dict[str, str]] = {}
    for line in properties.splitlines():
        fields = line.split("\t")
        if len(fields) == 4 and relative(root, fields[0]) is not None:
            values.setdefault(fields[0], {})[fields[1]] = fields[2]
    mine = values.get(root, {})
    datasets = {
        rel: DatasetState(
            _number(props.get("written", "0")),
            _unset(props.get("origin")),
            props.get("mounted") == "no" and props.get("canmount") == "on",
        )
        for name, props in values.items()
        if (rel := relative(root, name)) is not None
    }
    versions = {
        rel: tuple(v for v in vs if not v.is_bookmark)
        for name, vs in zfs.parse_versions(snapshots, detail=True).items()
        if (rel := relative(root, name)) is not None
    }
    must_fence = _unset(mine.get(MUST_FENCE_PROPERTY)) or ""
    return SiteState(
        site=site,
        exists=root in values,
        role=parse_role(mine.get(ROLE_PROPERTY), root),
        epoch=parse_epoch(mine.get(EPOCH_PROPERTY), root),
        must_fence=tuple(sorted({s for s in must_fence.split(",") if s})),
        pending=_unset(mine.get(PENDING_PROPERTY)) or "",
        readonly=mine.get("readonly") == "on",
        health=health.strip(),
        datasets=datasets,
        snapshots={rel: versions.get(rel, ()) for rel in datasets},
    )


def _unset(value: Optional[str]) -> Optional[str]:
    return None if value is None or value in ("", "-") else value


def _number(text: str) -> int:
    return int(text) if text.isdigit() else 0


class Sites:
    """Reads and changes sites' state through one runner (dry run, audit) and one connector (ssh masters)."""

    def __init__(self, runner: Runner, connector: Connector) -> None:
        self.runner = runner
        self.connector = connector
        self._health: dict[tuple[str, str], str] = {}  # (host, pool) -> health, read once per command
        self._lock = threading.Lock()

    def health(self, host: Host, pool: str) -> str:
        """`zpool list -o health` of `pool` on `host`, read once (many groups share a pool)."""
        key = (host.label, pool)
        with self._lock:
            known = self._health.get(key)
        if known is None:
            known = self.runner.run(host, zfs.pool_health(pool), classify=zfs.classify_error)
            with self._lock:
                self._health[key] = known
        return known

    def host(self, site: Site) -> Host:
        """The site's host (connecting and probing it the first time); raises CommandError when unreachable."""
        side = SshSide(config_file=site.ssh_config_file, private_key=site.ssh_private_key)
        return self.connector.host(site.endpoint, side)[0]

    def read(self, group: Group, site: Site, root: Optional[str] = None) -> SiteState:
        """One site's state (of its root, or of another tree `root` there); an unreachable site is a state
        too (reachable False, with the error)."""
        root = root or site.root
        try:
            host = self.host(site)
            try:
                health = self.health(host, root.split("/")[0])
                depth = None if group.recursive else 0
                props = self.runner.run(host, zfs.get_values(root, READ_PROPERTIES, depth), classify=zfs.classify_error)
                versions = zfs.list_versions(root, detail=True, recursive=group.recursive)
                snaps = self.runner.run(host, versions, classify=zfs.classify_error)
            except DatasetNotFound:
                health, props, snaps = "", "", ""
        except CommandError as error:
            self.runner.check_cancelled()
            return SiteState(site.name, reachable=False, error=" ".join(str(error).split()))
        return parse_site(site.name, root, props, snaps, health)

    def read_group(self, group: Group) -> dict[str, SiteState]:
        """Every site of the group, in parallel."""
        with ThreadPoolExecutor(max_workers=min(8, len(group.sites))) as pool:
            states = list(pool.map(lambda s: self.read(group, s), group.sites))
        return {state.site: state for state in states}

    def set(self, site: Site, dataset: str, values: Sequence[tuple[str, str]], reason: str) -> None:
        """Set some properties of `dataset` on `site` in one `zfs set`, recorded in the audit log."""
        log.info("%s: zfs set %s %s (%s)", site.name, " ".join(f"{n}={v}" for n, v in values), dataset, reason)
        host = self.host(site)
        destructive.run(self.runner, host, zfs.set_values(dataset, values), audit.PROPERTY, (dataset,), reason)

    def clear(self, site: Site, dataset: str, prop: str, reason: str) -> None:
        """`zfs inherit` one property of `dataset` on `site`, recorded."""
        log.info("%s: zfs inherit %s %s (%s)", site.name, prop, dataset, reason)
        destructive.run(self.runner, self.host(site), zfs.inherit(dataset, prop), audit.PROPERTY, (dataset,), reason)

    def change(self, site: Site, argv: Sequence[str], action: str, target: Sequence[str], reason: str) -> str:
        """Any other recorded zfs command on `site` (snapshot, rename, clone, promote)."""
        log.info("%s: %s (%s)", site.name, " ".join(argv), reason)
        return destructive.run(self.runner, self.host(site), argv, action, target, reason)

    def run_change(self, site: Site, argv: Sequence[str]) -> str:
        """A command that changes something but needs no audit record (a mount): skipped in a dry run."""
        return self.runner.run(self.host(site), argv, changes=True, classify=zfs.classify_error)

    def run(self, site: Site, argv: Sequence[str]) -> str:
        """A read-only command on `site`."""
        return self.runner.run(self.host(site), argv, classify=zfs.classify_error)
