"""The building blocks of every DR command, each safe to repeat after a kill -9.

`Steps` reads site state, fences on first contact, snapshots, replicates through zferry's engine
(in-process), changes roles and epochs, and moves divergent data aside (rename, clone @common back,
promote). Each state-changing zfs command is recorded in the audit log (`zferry.destructive`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Callable, Optional

from zferry import engine, zfs
from zferry.dr import plan
from zferry.dr.config import Group, Site, replication_argv
from zferry.dr.state import DR_LOCAL_PROPERTIES, MUST_FENCE_PROPERTY, PENDING_PROPERTY, Sites, SiteState
from zferry.engine import JobConfig
from zferry.errors import CommandError, ZferryError
from zferry.fencing import EPOCH_PROPERTY, ROLE_FENCED, ROLE_PRIMARY, ROLE_PROPERTY, ROLE_STANDBY
from zferry.jobrunner.connections import SharedConnections

log = logging.getLogger("zferry")
States = dict[str, SiteState]
SNAPSHOT_PREFIX = "zferry-dr_"
RECV_OPTS = "--zfs-recv-program-opts"
# Audit actions of DR steps besides property changes (observe/audit.py names the engine's).
SNAPSHOT, RENAME, CLONE, PROMOTE = "dr-snapshot", "dr-rename", "dr-clone", "dr-promote"


class DrError(ZferryError):
    """A DR command cannot go on (unreachable site, divergence, refused replication); exit 1."""


def utc_stamp(now: float) -> str:
    """`20261207T135517Z`: the time part of DR snapshot and side-dataset names."""
    return datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def with_recv_excludes(argv: Sequence[str]) -> list[str]:
    """`argv` whose `zfs receive` options exclude DR's local properties (`-x`), merged with the group's own."""
    excludes = " ".join(f"-x {prop}" for prop in DR_LOCAL_PROPERTIES)
    out = list(argv)
    for i, word in enumerate(out):
        if word == RECV_OPTS and i + 1 < len(out):
            out[i + 1] = f"{out[i + 1]} {excludes}"
            return out
        if word.startswith(RECV_OPTS + "="):
            out[i] = f"{word} {excludes}"
            return out
    return [f"{RECV_OPTS}={excludes}", *out]


class Steps:
    """DR steps over one runner (audit, dry run) and zferry's engine for the transfers."""

    def __init__(
        self,
        sites: Sites,
        prepare: Callable[[str, Sequence[str]], JobConfig],
        engine_args: Sequence[str] = (),
        cancel: Optional[threading.Event] = None,
        clock: Callable[[], float] = time.time,
        shared: Optional[SharedConnections] = None,
    ) -> None:
        self.sites = sites
        self.prepare = prepare  # zferry's parser and job builder (jobrunner's `prepare`)
        self.engine_args = tuple(engine_args)  # --audit-log, --dryrun, ... for every engine run
        self.cancel = cancel or threading.Event()
        self.clock = clock
        self.shared = shared  # ssh masters the engine runs of one command share (None: each its own)

    # -- reading, first contact ---------------------------------------------------------------

    def read(self, group: Group, initialise: bool = True) -> States:
        """Every site's state, after fencing what must be fenced (and initialising a new group)."""
        states = self.sites.read_group(group)
        if initialise:
            states = self.initialise(group, states)
        return self.fence_stale(group, states)

    def initialise(self, group: Group, states: States) -> States:
        """A group no site has DR state for yet: the site file's primary becomes primary with epoch 1."""
        if plan.initialised(states):
            return states
        first = states[group.primary]
        if not first.usable:
            raise DrError(f"group {group.name}: the initial primary {group.primary} cannot be read: {_why(first)}")
        site = group.site(group.primary)
        values = [(ROLE_PROPERTY, ROLE_PRIMARY), (EPOCH_PROPERTY, "1")]
        self.sites.set(site, site.root, values, f"group {group.name}: first use, {site.name} is the initial primary")
        states[site.name] = dataclasses.replace(first, role=ROLE_PRIMARY, epoch=1)
        return states

    def fence_stale(self, group: Group, states: States) -> States:
        """First contact: fence every reachable site that still claims primary with a lower epoch, or that
        the primary's must-fence list names; then drop the fenced ones from that list."""
        primary = plan.current_primary(group, states)
        if primary is None:
            return states
        top = states[primary]
        for name in plan.must_fence(states, primary):
            site = group.site(name)
            why = f"group {group.name}: {primary} is primary with epoch {top.epoch}; fencing {name} on first contact"
            self.sites.set(site, site.root, [(ROLE_PROPERTY, ROLE_FENCED), ("readonly", "on")], why)
            states[name] = dataclasses.replace(states[name], role=ROLE_FENCED, readonly=True)
        done = {s for s in top.must_fence if states.get(s) is not None and states[s].role == ROLE_FENCED}
        if done:
            states[primary] = self.set_must_fence(group, top, [s for s in top.must_fence if s not in done])
        return states

    def set_must_fence(self, group: Group, state: SiteState, names: Sequence[str]) -> SiteState:
        """Record (or clear) the sites `state`'s site must fence on first contact."""
        site = group.site(state.site)
        why = f"group {group.name}: sites to fence on first contact: {', '.join(names) or 'none left'}"
        if names:
            self.sites.set(site, site.root, [(MUST_FENCE_PROPERTY, ",".join(sorted(names)))], why)
        else:
            self.sites.clear(site, site.root, MUST_FENCE_PROPERTY, why)
        return dataclasses.replace(state, must_fence=tuple(sorted(names)))

    # -- changing roles -------------------------------------------------------------------------

    def promote(self, group: Group, site: Site, epoch: int, must_fence: Sequence[str] = ()) -> None:
        """Make `site` the primary: role primary, `epoch`, writable (and the sites it must fence)."""
        values = [(ROLE_PROPERTY, ROLE_PRIMARY), (EPOCH_PROPERTY, str(epoch)), ("readonly", "off")]
        if must_fence:
            values.append((MUST_FENCE_PROPERTY, ",".join(sorted(must_fence))))
        self.sites.set(site, site.root, values, f"group {group.name}: promote {site.name} to primary, epoch {epoch}")
        self.mount(group, site)

    def mount(self, group: Group, site: Site) -> None:
        """Mount the primary's filesystems that replication received unmounted (parents first)."""
        state = self.sites.read(group, site)
        for rel in sorted((r for r, d in state.datasets.items() if d.mountable), key=lambda r: (r.count("/"), r)):
            try:
                self.sites.run_change(site, zfs.mount(site.root + rel))
            except CommandError as error:  # e.g. not root on Linux: the data is there, mount it by hand
                log.warning("group %s: %s: cannot mount %s%s: %s", group.name, site.name, site.root, rel, error)

    def make_standby(self, group: Group, site: Site, epoch: Optional[int]) -> None:
        """Role standby with the primary's epoch, read-only, atime off (reads leave `written` at 0)."""
        values = [(ROLE_PROPERTY, ROLE_STANDBY), ("readonly", "on"), ("atime", "off")]
        if epoch is not None:
            values.insert(1, (EPOCH_PROPERTY, str(epoch)))
        self.sites.set(site, site.root, values, f"group {group.name}: {site.name} is a standby (epoch {epoch})")

    def fence(self, group: Group, site: Site, why: str) -> None:
        self.sites.set(
            site, site.root, [(ROLE_PROPERTY, ROLE_FENCED), ("readonly", "on")], f"group {group.name}: {why}"
        )

    # -- data -----------------------------------------------------------------------------------

    def snapshot(self, group: Group, site: Site, why: str) -> str:
        """A recursive (for a recursive group) snapshot `zferry-dr_<UTC>` of the site's tree."""
        name = SNAPSHOT_PREFIX + utc_stamp(self.clock())
        argv = zfs.snapshot([f"{site.root}@{name}"])
        if group.recursive:
            argv.insert(2, "-r")
        try:
            self.sites.change(site, argv, SNAPSHOT, (f"{site.root}@{name}",), f"group {group.name}: {why}")
        except CommandError as error:
            if not zfs.already_exists(error):  # a rerun within the same second
                raise
        return name

    def replicate(self, group: Group, src: Site, dst: Site) -> None:
        """zferry's engine, in this process: `src` -> `dst` with the group's options."""
        job_name = f"dr-{group.name}-{src.name}-{dst.name}"
        argv = with_recv_excludes(replication_argv(group, src, dst, [*self.engine_args, "--job-name", job_name]))
        log.info("group %s: replicating %s -> %s", group.name, src.name, dst.name)
        job = self.prepare(job_name, argv)
        connections = self.shared.get(job) if self.shared is not None else None
        report = engine.run(job, cancel=self.cancel, connections=connections)
        if report.exit_code != 0:
            raise DrError(f"group {group.name}: replication {src.name} -> {dst.name} failed (see the messages above)")

    def preserve(self, group: Group, site: Site, primary: SiteState, state: SiteState, why: str) -> Optional[str]:
        """Keep what `site` has beyond the primary: rename its tree aside (`<root>.diverged-<UTC>`), clone
        each dataset's latest common snapshot back in its place and promote the clones. Nothing is
        destroyed. Resumes a preservation a kill cut short. Returns the side dataset (None: none needed)."""
        aside = self.pending_aside(group, site)
        if aside is None:
            if not state.exists or not plan.divergence(primary, state).diverged:
                return None
            aside = f"{site.root}.diverged-{utc_stamp(self.clock())}"
            marks = [(PENDING_PROPERTY, f"failback:{aside}"), (ROLE_PROPERTY, ROLE_FENCED), ("readonly", "on")]
            self.sites.set(site, site.root, marks, f"group {group.name}: {why}; preserving it as {aside}")
            self.sites.change(
                site, zfs.rename(site.root, aside), RENAME, (site.root, aside), f"group {group.name}: {why}"
            )
        self.clone_back(group, site, primary, aside, state.epoch)
        self.sites.clear(site, aside, PENDING_PROPERTY, f"group {group.name}: divergent data kept in {aside}")
        return aside

    def pending_aside(self, group: Group, site: Site) -> Optional[str]:
        """A side dataset whose preservation a kill interrupted (its `zferry:dr-pending` names itself)."""
        parent = zfs.parent_of(site.root)
        if parent is None:
            raise DrError(f"group {group.name}: {site.root} is a pool's root: it cannot be renamed aside")
        out = self.sites.run(site, zfs.get_values(parent, [PENDING_PROPERTY], depth=1))
        for line in out.splitlines():
            name, _, value, _source = ([*line.split("\t"), "", "", "", ""])[:4]
            if name.startswith(f"{site.root}.diverged-") and value == f"failback:{name}":
                return name
        return None

    def clone_back(self, group: Group, site: Site, primary: SiteState, aside: str, epoch: Optional[int]) -> None:
        """Each dataset of `aside` with a snapshot in common with the primary: cloned back, promoted."""
        kept = self.sites.read(group, site, aside)
        here = self.sites.read(group, site, site.root)
        origins = {rel: d.origin or "" for rel, d in here.datasets.items()}
        common = plan.divergence(primary, kept).common
        for rel in sorted(kept.datasets, key=lambda r: (r.count("/"), r)):
            base, target = common.get(rel), site.root + rel
            if base is None or (rel and rel.rpartition("/")[0] not in origins):
                log.warning(
                    "group %s: %s%s stays only in %s (nothing in common with %s)",
                    group.name,
                    aside,
                    rel,
                    aside,
                    primary.site,
                )
                continue
            if rel not in origins:
                values = [("readonly", "on"), ("atime", "off")]
                if not rel:
                    values.append((ROLE_PROPERTY, ROLE_FENCED))
                    values += [(EPOCH_PROPERTY, str(epoch))] if epoch is not None else []
                argv = zfs.clone(f"{aside}{rel}@{base.name}", target, values)
                self.sites.change(site, argv, CLONE, (target,), f"group {group.name}: {target} back at @{base.name}")
                origins[rel] = f"{aside}{rel}@{base.name}"
            if origins[rel].startswith((aside + "/", aside + "@")):
                why = f"group {group.name}: {target} takes back its snapshots up to @{base.name}"
                self.sites.change(site, zfs.promote(target), PROMOTE, (target,), why)


def _why(state: SiteState) -> str:
    return state.error if not state.reachable else "its dataset does not exist"
