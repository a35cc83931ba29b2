"""`--monitor-snapshots PLAN`: are the latest (and oldest) snapshots of each plan entry young enough?

The plan names org, target and period like the snapshot plans (`lifecycle/plan.py`), and gives
age limits instead of counts:

    {"prod": {"onsite": {"hourly": {"warning": "90 minutes", "critical": "2 hours",
                                    "oldest_warning": "40 days", "oldest_critical": "45 days"}}}}

(bzfs's nested form, `{"latest": {"warning": ...}, "oldest": {...}}`, reads the same.) A
snapshot `prod_onsite_<timestamp>_hourly` belongs to that entry. For each selected dataset of the
checked side (the destination, or the source when the destination is `dummy`) and each entry,
the age of the latest matching snapshot (its `creation`) is compared with `warning` and
`critical`; the oldest one's with `oldest_warning` and `oldest_critical` (pruning that stalled).
No matching snapshot at all counts as too old: CRITICAL when a critical limit is set, else WARNING.

The result reads like a Nagios/Icinga plugin's: one status line `ZFERRY <STATE> - <summary> |
<perfdata>`, then details; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (a missing dataset, an
unreachable host, a failed listing). UNKNOWN outranks CRITICAL: the check could not look.
`dont_warn`/`dont_crit` still report those levels but keep them out of the exit status.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Optional

from zferry import zfs
from zferry.engine import JobConfig, Pair
from zferry.errors import CommandError, DatasetNotFound, Interrupted, UsageError
from zferry.exec.runner import Runner
from zferry.exec.ssh import SshConnections
from zferry.inventory import Side, list_inventory
from zferry.lifecycle.plan import PlanEntry, plan_items
from zferry.model import Version
from zferry.observe.host_clock import host_time, host_time_floor
from zferry.observe.readonly import Session, human_duration, read_only_session
from zferry.observe.snapshot_cache import SnapshotCache
from zferry.replicate import ReplicationConfig
from zferry.retry import call_with_retries, is_transient
from zferry.select.times import parse_duration

log = logging.getLogger("zferry")
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
OPTION = "--monitor-snapshots"
_EXAMPLE = "{'prod': {'onsite': {'hourly': {'warning': '90 minutes', 'critical': '2 hours'}}}}"
_LIMIT_KEYS = {"warning": ("latest", "warning"), "critical": ("latest", "critical")}
_LIMIT_KEYS.update({f"oldest_{k}": ("oldest", k) for k in ("warning", "critical")})
_RANK = {OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3}  # what wins when checks disagree


@dataclass(frozen=True)
class Limits:
    """Age limits in seconds; None: not checked."""

    warning: Optional[float] = None
    critical: Optional[float] = None

    @property
    def active(self) -> bool:
        return self.warning is not None or self.critical is not None


@dataclass(frozen=True)
class MonitorEntry:
    """One org/target/period of the plan with its limits for the latest and the oldest snapshot."""

    entry: PlanEntry
    latest: Limits = Limits()
    oldest: Limits = Limits()

    @property
    def key(self) -> str:
        """`org_target_*_period`: how logs, perfdata and the cache name the entry."""
        return f"{self.entry.prefix}*{self.entry.suffix}"


@dataclass(frozen=True)
class MonitorConfig:
    """`--monitor-snapshots` and its options."""

    entries: tuple[MonitorEntry, ...]
    dont_warn: bool = False
    dont_crit: bool = False


# -- the plan ------------------------------------------------------------------------------------


def parse_monitor_plan(text: str, option: str = OPTION) -> tuple[MonitorEntry, ...]:
    """Parse and check a monitoring plan (JSON or a Python literal, never evaluated as code)."""
    entries = []
    for org, target, period, value in plan_items(text, option, _EXAMPLE):
        where = f"{option}: {org}/{target}/{period}"
        if not isinstance(value, dict) or not value:
            raise UsageError(f"{where} must map to a dict of limits, e.g. {_EXAMPLE}")
        limits: dict[str, dict[str, float]] = {"latest": {}, "oldest": {}}
        for key, text_value in _flat_limits(value, where).items():
            if key not in _LIMIT_KEYS:
                raise UsageError(
                    f"{where}: unknown limit {key!r}; use warning, critical, oldest_warning, oldest_critical"
                )
            if not isinstance(text_value, str):
                raise UsageError(f"{where}: {key} must be a duration such as '90 minutes', not {text_value!r}")
            kind, level = _LIMIT_KEYS[key]
            limits[kind][level] = parse_duration(text_value, f"{where}: {key}")
        latest, oldest = Limits(**limits["latest"]), Limits(**limits["oldest"])
        for kind, pair in (("", latest), ("oldest_", oldest)):
            if pair.warning is not None and pair.critical is not None and pair.warning > pair.critical:
                raise UsageError(f"{where}: {kind}warning is longer than {kind}critical; warning comes first")
        entries.append(MonitorEntry(PlanEntry(org, target, period, 1), latest, oldest))
    if not entries:
        raise UsageError(f"{option}: the plan names nothing to check; e.g. {_EXAMPLE}")
    return tuple(entries)


def _flat_limits(value: Mapping[object, object], where: str) -> dict[object, object]:
    """bzfs's `{"latest": {...}, "oldest": {...}}` as `warning`, `oldest_warning`, ...; flat ones as given."""
    flat: dict[object, object] = {}
    for key, inner in value.items():
        if key in ("latest", "oldest"):
            if not isinstance(inner, dict):
                raise UsageError(f"{where}: {key} must map to a dict of limits, e.g. {{'warning': '2 hours'}}")
            prefix = "" if key == "latest" else "oldest_"
            flat.update({f"{prefix}{k}": v for k, v in inner.items()})
        else:
            flat[key] = inner
    return flat


# -- pure evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One dataset, entry and kind (latest or oldest): which snapshot, how old, and the verdict."""

    dataset: str
    key: str
    kind: str  # "latest" | "oldest"
    snapshot: Optional[str]
    age: Optional[float]  # None: no matching snapshot
    limits: Limits
    state: int

    def describe(self) -> str:
        if self.age is None:
            return f"{self.dataset}: no snapshot {self.key}"
        limit = self.limits.critical if self.state == CRITICAL else self.limits.warning
        over = f" (limit {human_duration(limit)})" if self.state in (WARNING, CRITICAL) and limit is not None else ""
        return f"{self.dataset}@{self.snapshot}: {self.kind} {self.key} is {human_duration(self.age)} old{over}"


def evaluate(age: Optional[float], limits: Limits) -> int:
    """OK, WARNING or CRITICAL for a snapshot `age` in seconds (None: there is none)."""
    if age is None:
        return CRITICAL if limits.critical is not None else WARNING
    if limits.critical is not None and age > limits.critical:
        return CRITICAL
    if limits.warning is not None and age > limits.warning:
        return WARNING
    return OK


def check_dataset(
    dataset: str, found: Mapping[str, Optional[tuple[str, int]]], entries: Sequence[MonitorEntry], now: float
) -> list[Check]:
    """The checks of one dataset from `found`: `latest:KEY`/`oldest:KEY` -> (name, creation) or None."""
    checks = []
    for monitored in entries:
        for kind, limits in (("latest", monitored.latest), ("oldest", monitored.oldest)):
            if not limits.active:
                continue
            hit = found.get(f"{kind}:{monitored.key}")
            age = None if hit is None else max(0.0, now - hit[1])
            name = None if hit is None else hit[0]
            checks.append(Check(dataset, monitored.key, kind, name, age, limits, evaluate(age, limits)))
    return checks


def extremes(snapshots: Sequence[Version], entries: Sequence[MonitorEntry]) -> dict[str, Optional[tuple[str, int]]]:
    """Per entry, the latest and oldest of `snapshots` (oldest first) it matches, as `check_dataset` reads them."""
    found: dict[str, Optional[tuple[str, int]]] = {}
    for monitored in entries:
        matching = [s for s in snapshots if not s.is_bookmark and monitored.entry.matches(s.name)]
        found[f"latest:{monitored.key}"] = (matching[-1].name, matching[-1].creation) if matching else None
        found[f"oldest:{monitored.key}"] = (matching[0].name, matching[0].creation) if matching else None
    return found


def counted_state(state: int, dont_warn: bool, dont_crit: bool) -> int:
    """The state a check adds to the exit status (dont-warn/dont-crit report without alerting)."""
    if (state == WARNING and dont_warn) or (state == CRITICAL and dont_crit):
        return OK
    return state


def perf_label(check: Check) -> str:
    """A perfdata label, single-quoted (a quote inside doubled; `=` is not allowed in labels)."""
    text = f"{check.dataset}:{check.key}:{check.kind}".replace("=", "_").replace("'", "''")
    return f"'{text}'"


def perfdata(check: Check) -> str:
    """`'label'=<age>s;<warn>;<crit>;0;` (`U` when no snapshot matched)."""
    value = "U" if check.age is None else f"{check.age:.0f}s"
    warn, crit = (f"{v:.0f}" if v is not None else "" for v in (check.limits.warning, check.limits.critical))
    return f"{perf_label(check)}={value};{warn};{crit};0;"


def render(
    checks: Sequence[Check], unknown: Sequence[str], dont_warn: bool = False, dont_crit: bool = False
) -> tuple[int, str]:
    """The exit status and the plugin output: a status line with perfdata, then one line per finding."""
    states = [counted_state(c.state, dont_warn, dont_crit) for c in checks] + [UNKNOWN] * len(unknown)
    status = max(states, key=_RANK.__getitem__, default=UNKNOWN)
    counts = {s: sum(1 for c in checks if c.state == s) for s in (CRITICAL, WARNING, OK)}
    findings = list(unknown) + [c.describe() for c in sorted(checks, key=lambda c: -_RANK[c.state]) if c.state != OK]
    if not checks and not unknown:
        findings = ["no dataset selected: nothing was checked"]
    summary = f"{counts[CRITICAL]} critical, {counts[WARNING]} warning, {counts[OK]} ok of {len(checks)} checks"
    if unknown:
        summary = f"{len(unknown)} unknown, {summary}"
    if findings:
        summary += f": {findings[0]}"
    muted = [name for name, on in (("warnings", dont_warn), ("criticals", dont_crit)) if on]
    if muted:
        summary += f" ({' and '.join(muted)} do not alert)"
    line = f"ZFERRY {STATE_NAMES[status]} - {summary}"
    if checks:
        line += " | " + " ".join(perfdata(c) for c in checks)
    return status, "\n".join([line, *findings[1:]]) + "\n"


# -- the job -------------------------------------------------------------------------------------


@dataclass
class MonitorReport:
    """The checks made, what could not be checked, and the plugin output and exit status."""

    checks: list[Check] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    exit_code: int = UNKNOWN
    text: str = ""


def monitor(
    config: JobConfig,
    plan: MonitorConfig,
    cancel: Optional[threading.Event] = None,
    runner: Optional[Runner] = None,
    connections: Optional[SshConnections] = None,
) -> MonitorReport:
    """Check the snapshot ages of every pair's checked side; takes no lock and changes nothing."""
    report = MonitorReport()
    with read_only_session(config, cancel, runner, connections) as session:
        for pair in config.pairs:
            session.runner.check_cancelled()
            try:
                report.checks += _monitor_pair(session, pair, plan.entries)
            except Interrupted:
                raise
            except (CommandError, UsageError) as error:
                report.unknown.append(f"{pair[1] if pair[1].dataset != 'dummy' else pair[0]}: {error}")
    report.exit_code, report.text = render(report.checks, report.unknown, plan.dont_warn, plan.dont_crit)
    return report


def _monitor_pair(session: Session, pair: Pair, entries: Sequence[MonitorEntry]) -> list[Check]:
    src, dst = session.sides(pair)
    side = dst if dst is not None else src
    assert side is not None  # both dummy is refused as usage
    replication = session.config.replication
    now = host_time(side.caps)  # creation times are in the zfs host's clock
    cache_dir = session.config.lifecycle.cache_dir
    if cache_dir and replication.snapshots.selects_all:
        found = _via_cache(
            session.runner, side, replication, entries, SnapshotCache(cache_dir, side.host.label, side.root)
        )
    else:
        found = _listed(session.runner, side, replication, entries, now)
    if found is None:
        raise DatasetNotFound(f"dataset {side} does not exist")
    checks = []
    for dataset, extreme in found.items():
        checks += check_dataset(dataset, extreme, entries, now)
    return checks


Found = dict[str, dict[str, Optional[tuple[str, int]]]]
"""Per dataset, `check_dataset`'s input."""


def _selected(side: Side, replication: ReplicationConfig, props: Mapping[str, Mapping[str, str]]) -> list[str]:
    return replication.datasets.select(
        side.root, list(props), {k: dict(v) for k, v in props.items()}, replication.recursive
    )


def _listed(
    runner: Runner, side: Side, replication: ReplicationConfig, entries: Sequence[MonitorEntry], now: float
) -> Optional[Found]:
    """Per selected dataset, the extremes of each entry, from one listing of the tree."""
    prop = replication.datasets.exclude_property
    inventory = list_inventory(runner, side, [prop] if prop else [], True, replication.recursive)
    if inventory is None:
        return None
    names = _selected(side, replication, {d.name: d.user_props for d in inventory.datasets.values()})
    return {n: extremes(replication.snapshots.select(inventory.snapshots(n), now), entries) for n in names}


def _via_cache(
    runner: Runner, side: Side, replication: ReplicationConfig, entries: Sequence[MonitorEntry], cache: SnapshotCache
) -> Optional[Found]:
    """Like `_listed`, but datasets whose `snapshots_changed` still reads as cached are not listed again."""
    prop = replication.datasets.exclude_property
    props_wanted = [prop] if prop else []
    if side.caps.zfs_version is not None and side.caps.zfs_version < (2, 2):
        return _listed(runner, side, replication, entries, host_time(side.caps))  # no snapshots_changed
    listed_at = host_time_floor(side.host, side.caps)  # before the listings: a lower bound for them
    try:
        out = call_with_retries(
            lambda: runner.run(
                side.host,
                zfs.list_snapshots_changed(side.root, props_wanted, replication.recursive),
                classify=zfs.classify_error,
            ),
            side.retry,
            f"{side}: zfs list",
        )
    except DatasetNotFound:
        return None
    except CommandError as error:
        if is_transient(error):
            raise
        log.info("%s: no snapshots_changed property (OpenZFS < 2.2?): checking without the cache (%s)", side, error)
        return _listed(runner, side, replication, entries, host_time(side.caps))
    listed = zfs.parse_snapshots_changed(out, props_wanted)
    names = _selected(side, replication, {name: p for name, (_, p) in listed.items()})
    keys = [f"{kind}:{e.key}" for e in entries for kind in ("latest", "oldest")]
    found: Found = {}
    misses = []
    for name in names:
        hit = cache.lookup(name, listed[name][0], keys, listed[name][1]["guid"])
        if hit is None:
            misses.append(name)
        else:
            found[name] = hit
    log.debug("%s: snapshot cache: %d hit(s), %d miss(es)", side, len(names) - len(misses), len(misses))
    for part in zfs.argument_batches(misses):
        argv = zfs.list_versions_of(part, detail=True)
        out = call_with_retries(
            partial(runner.run, side.host, argv, classify=zfs.classify_error),
            side.retry,
            f"{side}: zfs list",
        )
        versions = zfs.parse_versions(out, detail=True)
        for name in part:
            found[name] = extremes(versions.get(name, ()), entries)
            cache.store(name, listed[name][0], found[name], listed_at, listed[name][1]["guid"])
    cache.save()
    return {name: found[name] for name in names}
