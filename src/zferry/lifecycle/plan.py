"""Snapshot plans: `{"org": {"target": {"hourly": 36, "daily": 31}}}`.

One plan string drives three options, as in bzfs:

* `--create-src-snapshots-plan`: which snapshots to take, named `org_target_<timestamp>_period`,
  and when each is due (`due_snapshot_names`).
* `--include-snapshot-plan`: which snapshots to replicate (`include_plan_filter`).
* `--delete-dst-snapshots-except-plan`: which snapshots to keep when pruning
  (`except_plan_filter`).

For filtering, each org/target/period with count N becomes one filter group: names
`org_target_*_period` that are among the latest N of them, or younger than N periods.
A count of 0 creates, replicates and keeps nothing for that period.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from zferry.errors import UsageError
from zferry.lifecycle.naming import DEFAULT_NAMING, MAX_LABEL, SnapshotNaming
from zferry.lifecycle.periods import Period, PeriodAnchors, check_schedulable, next_boundary, parse_period
from zferry.model import Version
from zferry.select.regex import NameFilter, compile_patterns
from zferry.select.snapshots import SnapshotFilter, SnapshotGroup
from zferry.select.times import EMPTY_TIME_RANGE, Ago, Rank, RankRange, TimeRange, TimesAndRanks

_ORG_RE = re.compile(r"[A-Za-z][A-Za-z0-9.:-]*")
_TARGET_RE = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9.:-]*)?")
_PERIOD_NAME_RE = re.compile(r"[A-Za-z0-9]+")
_YEAR_RE = re.compile(r"[1-9][0-9]{3}")
DEFAULT_ANCHORS = PeriodAnchors()
_NAME_RULES = "letters, digits, '.', ':' and '-'"
_EXAMPLE = '{"prod": {"onsite": {"hourly": 36, "daily": 31}}}'


@dataclass(frozen=True)
class PlanEntry:
    """One org/target/period of a plan with its count (how many to keep or replicate)."""

    org: str
    target: str
    period_name: str
    count: int

    @property
    def period(self) -> Optional[Period]:
        """The schedule of this entry, or None when it is not periodic (e.g. `adhoc`)."""
        return parse_period(self.period_name)

    @property
    def prefix(self) -> str:
        """`org_target_` (or `org_` with an empty target): the start of every snapshot name."""
        return f"{self.org}_{self.target}_" if self.target else f"{self.org}_"

    @property
    def suffix(self) -> str:
        """`_period`: the end of every snapshot name."""
        return f"_{self.period_name}"

    def snapshot_name(self, timestamp: str) -> str:
        """The snapshot name for this entry at the formatted `timestamp`."""
        return f"{self.prefix}{timestamp}{self.suffix}"

    @property
    def name_regex(self) -> str:
        """A full-match regex for this entry's snapshot names, whatever their timestamp."""
        year = "" if self.target else _YEAR_RE.pattern  # an empty target must not match `org_target_...`
        return f"{re.escape(self.prefix)}{year}.*{re.escape(self.suffix)}"

    def matches(self, name: str) -> bool:
        """True if `name` is a snapshot of this entry (the timestamp is not checked)."""
        prefix, suffix = self.prefix, self.suffix
        if not (name.startswith(prefix) and name.endswith(suffix)):
            return False
        if self.target:
            return len(name) >= len(prefix) + len(suffix)
        start = len(prefix)
        return len(name) >= start + 4 + len(suffix) and _YEAR_RE.fullmatch(name, start, start + 4) is not None


@dataclass(frozen=True)
class Plan:
    """A parsed plan: its entries in the order given."""

    entries: tuple[PlanEntry, ...] = ()

    @property
    def active(self) -> tuple[PlanEntry, ...]:
        """The entries with a count above zero."""
        return tuple(e for e in self.entries if e.count > 0)


def load_literal(text: str, option: str, example: str = _EXAMPLE, what: str = "the plan", kind: str = "dict") -> object:
    """JSON, or a Python literal (never evaluated as code); else a UsageError naming `option`."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise UsageError(
            f"{option}: cannot read {what} {text!r}; write a JSON or Python {kind} such as {example}"
        ) from None


def parse_plan(text: str, option: str = "--create-src-snapshots-plan", for_creation: bool = False) -> Plan:
    """Parse and validate a plan (JSON, or a Python literal; never evaluated as code).

    With `for_creation`, periods must also recur at the same time of day (or year).
    """
    entries = [
        _entry(option, org, target, name, count, for_creation) for org, target, name, count in plan_items(text, option)
    ]
    return Plan(tuple(entries))


def plan_items(text: str, option: str, example: str = _EXAMPLE) -> list[tuple[str, str, str, object]]:
    """The (org, target, period, value) of each entry of a plan text, names checked, values as given."""
    data = load_literal(text, option, example)
    if not isinstance(data, dict):
        raise UsageError(f"{option}: the plan must be a dict of orgs, e.g. {example}")
    items: list[tuple[str, str, str, object]] = []
    for org, targets in data.items():
        if not isinstance(org, str) or not _ORG_RE.fullmatch(org):
            raise UsageError(f"{option}: org {org!r} must start with a letter and contain only {_NAME_RULES}")
        if not isinstance(targets, dict):
            raise UsageError(f"{option}: org {org!r} must map to a dict of targets, e.g. {example}")
        for target, periods in targets.items():
            if not isinstance(target, str) or not _TARGET_RE.fullmatch(target):
                raise UsageError(f"{option}: target {target!r} of org {org!r} may contain only {_NAME_RULES}")
            if not isinstance(periods, dict):
                raise UsageError(f"{option}: target {target!r} must map to a dict of periods like {example}")
            for name, value in periods.items():
                if not isinstance(name, str) or not _PERIOD_NAME_RE.fullmatch(name):
                    raise UsageError(f"{option}: period {name!r} may contain only letters and digits, e.g. 'hourly'")
                items.append((org, target, name, value))
    return items


def _entry(option: str, org: str, target: str, name: str, count: object, for_creation: bool) -> PlanEntry:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise UsageError(f"{option}: count of {org}/{target}/{name} must be an integer >= 0, not {count!r}")
    entry = PlanEntry(org, target, name, count)
    if len(entry.prefix) + len(entry.suffix) > MAX_LABEL // 2:
        raise UsageError(f"{option}: names {org!r}/{target!r}/{name!r} are too long; keep them short")
    period = entry.period
    if for_creation and period is not None and count > 0:
        check_schedulable(period, option)
    return entry


def _latest_match(existing: Sequence[Version], entry: PlanEntry) -> Optional[Version]:
    for version in reversed(existing):
        if not version.is_bookmark and entry.matches(version.name):
            return version
    return None


def _order(entry: PlanEntry) -> tuple[int, str]:
    period = entry.period
    return (-(period.milliseconds if period is not None else 0), entry.prefix + entry.suffix)


def due_snapshot_names(
    existing: Sequence[Version],
    now: float,
    plan: Plan,
    naming: SnapshotNaming = DEFAULT_NAMING,
    anchors: PeriodAnchors = DEFAULT_ANCHORS,
    even_if_not_due: bool = False,
) -> list[str]:
    """Names of the snapshots to take now on a dataset with `existing` snapshots (oldest first).

    An entry is due when it is not periodic, when `even_if_not_due`, when no snapshot of it
    exists, or when a period boundary has passed since its latest snapshot's creation.
    Longer periods come first (dailies before hourlies), like bzfs.
    """
    timestamp = naming.timestamp(now)
    now_dt = datetime.fromtimestamp(now, timezone.utc)
    names: list[str] = []
    for entry in sorted(plan.active, key=_order):
        period = entry.period
        due = period is None or even_if_not_due
        if not due:
            assert period is not None
            latest = _latest_match(existing, entry)
            due = latest is None or now_dt >= next_boundary(
                datetime.fromtimestamp(latest.creation, timezone.utc), period, anchors, naming.tz
            )
        if due:
            names.append(entry.snapshot_name(timestamp))
    return names


def next_due_time(
    existing: Sequence[Version], entry: PlanEntry, naming: SnapshotNaming, anchors: PeriodAnchors
) -> Optional[float]:
    """Unix time at which `entry` becomes due on a dataset; None if due now (not periodic, or none yet)."""
    period = entry.period
    latest = _latest_match(existing, entry)
    if period is None or latest is None:
        return None
    created = datetime.fromtimestamp(latest.creation, timezone.utc)
    return next_boundary(created, period, anchors, naming.tz).timestamp()


def _group(entry: PlanEntry, option: str) -> SnapshotGroup:
    period = entry.period
    # Without a schedule (e.g. `adhoc`) only the latest N count.
    times = EMPTY_TIME_RANGE if period is None else TimeRange(Ago(entry.count * period.milliseconds), None)
    latest = RankRange(Rank("latest", 0), Rank("latest", entry.count))
    names = NameFilter(compile_patterns([entry.name_regex], option))
    return SnapshotGroup(names=names, times_and_ranks=(TimesAndRanks(times, (latest,)),))


_NOTHING = SnapshotGroup(names=NameFilter(compile_patterns(["!.*"], "--include-snapshot-plan")))


def plan_groups(plan: Plan, option: str = "--include-snapshot-plan") -> tuple[SnapshotGroup, ...]:
    """One filter group per entry with a count N > 0: its names, latest N or younger than N periods."""
    return tuple(_group(entry, option) for entry in plan.active)


def include_plan_filter(plan: Plan) -> SnapshotFilter:
    """`--include-snapshot-plan`: the union of the plan's groups; an all-zero plan selects nothing."""
    return SnapshotFilter(plan_groups(plan) or (_NOTHING,))


def except_plan_filter(plan: Plan) -> SnapshotFilter:
    """`--delete-dst-snapshots-except-plan`: the snapshots to keep (prune with `except`)."""
    if not plan.entries:
        raise UsageError(
            "--delete-dst-snapshots-except-plan: an empty plan would keep nothing and delete every snapshot; "
            "refusing. List the periods to keep, or use --delete-dst-snapshots with "
            "--include-snapshot-regex='.*' if deleting everything is really intended"
        )
    return SnapshotFilter(plan_groups(plan, "--delete-dst-snapshots-except-plan") or (_NOTHING,))
