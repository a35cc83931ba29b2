"""Command-line options of the snapshot lifecycle: creation, filter groups, pruning, bookmarks, cache.

`add_lifecycle_options` adds them to the parser; `build_lifecycle_config` and
`build_snapshot_filter` turn the parsed values into typed configuration, validating every
value before anything runs. The snapshot filter options are order-sensitive (as in bzfs):
each occurrence is recorded in command-line order, so that `--new-snapshot-filter-group`
can split them into groups (AND within a group, UNION across groups).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Optional

from zferry.errors import UsageError
from zferry.lifecycle.config import (
    BOOKMARK_MODES,
    DEFAULT_BOOKMARK_MODE,
    DUMMY,
    CreateConfig,
    LifecycleConfig,
)
from zferry.lifecycle.naming import DEFAULT_TIMEFORMAT, make_naming
from zferry.lifecycle.periods import PeriodAnchors
from zferry.model import Endpoint
from zferry.select.regex import NameFilter, compile_patterns
from zferry.select.snapshots import SnapshotFilter, SnapshotGroup

if TYPE_CHECKING:
    from zferry.lifecycle.plan import Plan
    from zferry.select.times import TimesAndRanks

# The plans (zferry.lifecycle.plan) and the time filters (zferry.select.times) are imported
# where an option needs them: a plain run does without them, and start-up time counts (bench/).

STEPS = "snapshot_filter_steps"
"""Namespace attribute: the snapshot filter options as (dest, value) pairs, in command-line order."""


class SnapshotFilterStep(argparse.Action):
    """Appends the value to its own list and records it in command-line order (see STEPS)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: Optional[str] = None,
    ) -> None:
        if self.nargs != 0:
            items = list(getattr(namespace, self.dest, None) or [])
            items.append(values)
            setattr(namespace, self.dest, items)
        steps = list(getattr(namespace, STEPS, None) or [])
        steps.append((self.dest, values))
        setattr(namespace, STEPS, steps)


def default_cache_dir() -> str:
    """`$XDG_CACHE_HOME/zferry`, or `~/.cache/zferry`."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "zferry")


def add_lifecycle_options(parser: argparse.ArgumentParser) -> None:
    """Add the snapshot-lifecycle option groups to `parser`."""
    _filters(parser)
    _creation(parser)
    _pruning(parser)
    _anchors(parser)


def _filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "snapshot times, ranks and plans (order matters; see --new-snapshot-filter-group)"
    )
    group.add_argument(
        "--include-snapshot-times-and-ranks",
        nargs="+",
        action=SnapshotFilterStep,
        default=[],
        metavar=("TIMERANGE", "RANKRANGE"),
        help="select snapshots created in TIMERANGE ('2024-01-01..2024-02-01', '1 week ago..anytime', "
        "'notime'), or whose rank is in a RANKRANGE ('latest 10', 'oldest 5', 'all except latest 3', "
        "'latest 10%%'); repeatable, applied one after the other",
    )
    group.add_argument(
        "--include-snapshot-plan",
        action=SnapshotFilterStep,
        default=[],
        metavar="DICT",
        help="select the snapshots a plan keeps, e.g. \"{'prod': {'onsite': {'hourly': 36, 'daily': 31}}}\": "
        "per period, the latest N and those younger than N periods",
    )
    group.add_argument(
        "--new-snapshot-filter-group",
        nargs=0,
        action=SnapshotFilterStep,
        help="start a new group of snapshot filters: a snapshot is selected if every filter of one "
        "group selects it (AND within a group, UNION across groups)",
    )


def _creation(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("taking snapshots on the source")
    group.add_argument(
        "--create-src-snapshots",
        action="store_true",
        help="first take the snapshots of --create-src-snapshots-plan that are due, one atomic "
        "'zfs snapshot' for all selected datasets",
    )
    group.add_argument(
        "--create-src-snapshots-plan",
        metavar="DICT",
        help="org -> target -> period -> count, e.g. \"{'prod': {'onsite': {'hourly': 36, 'daily': 31}}}\"; "
        "names are org_target_<timestamp>_period; periods secondly..yearly, also e.g. 10minutely",
    )
    group.add_argument(
        "--create-src-snapshots-timeformat",
        default=DEFAULT_TIMEFORMAT,
        metavar="STRFTIME",
        help=f"timestamp in new snapshot names (default: {DEFAULT_TIMEFORMAT.replace('%', '%%')}; a trailing "
        "%%F gives milliseconds)",
    )
    group.add_argument(
        "--create-src-snapshots-timezone",
        default="",
        metavar="TZ",
        help="time zone of names and schedules: '' local (default), 'UTC', '+0200', or e.g. 'Europe/Berlin'; "
        "in the hour repeated when clocks go back, timestamps end in 'dst'",
    )
    group.add_argument(
        "--create-src-snapshots-even-if-not-due",
        action="store_true",
        help="take every snapshot of the plan now, even those that are not due",
    )
    group.add_argument(
        "--skip-replication",
        action="store_true",
        help="do not replicate: only create, prune or delete; 'dummy' may then name a missing source or destination",
    )
    group.add_argument(
        "--cache-snapshots",
        nargs="?",
        const="true",
        default="true",
        choices=["true", "false"],
        help="(default: true) remember each dataset's snapshot list, keyed on its snapshots_changed property "
        "(OpenZFS >= 2.2; older OpenZFS lists as without it), so a run where nothing changed skips "
        "'zfs list -t snapshot'; destroys and bookmarks always decide on fresh lists. "
        "Turn it off with --cache-snapshots=false or --no-cache-snapshots",
    )
    group.add_argument(
        "--no-cache-snapshots",
        dest="cache_snapshots",
        action="store_const",
        const="false",
        help="list every snapshot on every run (no snapshot cache), "
        "e.g. zferry --no-cache-snapshots -r tank/data backup/data",
    )
    group.add_argument(
        "--cache-dir", metavar="DIR", help=f"where --cache-snapshots keeps its files (default: {default_cache_dir()})"
    )


def _pruning(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("deleting on the destination (destructive, off by default)")
    group.add_argument(
        "--delete-dst-snapshots",
        nargs="?",
        const="snapshots",
        choices=["snapshots", "bookmarks"],
        help="after replication, delete the destination snapshots (or bookmarks) the snapshot filters "
        "select; never what still exists on the source (by GUID) nor the latest common snapshot",
    )
    group.add_argument(
        "--delete-dst-snapshots-except",
        action="store_true",
        help="the snapshot filters select what to keep; delete the rest",
    )
    group.add_argument(
        "--delete-dst-snapshots-except-plan",
        metavar="DICT",
        help="keep what this plan keeps (per period the latest N and those younger than N periods) and "
        "delete every other snapshot; implies --delete-dst-snapshots-except",
    )
    group.add_argument(
        "--delete-dst-snapshots-no-crosscheck",
        action="store_true",
        help="protect only source snapshots (or, for bookmarks, source bookmarks) with the same GUID, "
        "not the other kind",
    )
    group.add_argument(
        "--delete-dst-datasets",
        action="store_true",
        help="delete selected destination datasets (zfs destroy -r) that the source does not have",
    )
    group.add_argument(
        "--delete-dst-datasets-whole-tree",
        action="store_true",
        help="with a 'dummy' source, --delete-dst-datasets may destroy every dataset of the destination "
        "tree; without this (or an --include-dataset[-regex] filter) it is refused",
    )
    group.add_argument(
        "--delete-empty-dst-datasets",
        nargs="?",
        const="snapshots+bookmarks",
        choices=["snapshots", "snapshots+bookmarks"],
        help="with -r, delete selected destination datasets that are empty (no snapshots, nor bookmarks, "
        "at most 64 KiB of data) and whose descendants are too; never one the source lacks unless "
        "the source is 'dummy' or --delete-dst-datasets is given",
    )
    group.add_argument(
        "--create-bookmarks",
        choices=BOOKMARK_MODES,
        default=DEFAULT_BOOKMARK_MODE,
        help="after sending, bookmark on the source: every sent snapshot (all), or the hourly and longer "
        "ones (hourly, the default; minutely and secondly add those), always the full and the latest "
        "one; none: never",
    )


def _anchors(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("when periodic snapshots are due (anchors, in the plan's time zone)")
    defaults = PeriodAnchors()
    for f in fields(PeriodAnchors):
        period, unit = f.name.split("_", 1)
        group.add_argument(
            f"--{f.name}",
            type=int,
            default=getattr(defaults, f.name),
            metavar="N",
            help=argparse.SUPPRESS
            if period == "millisecondly"
            else f"{_ANCHOR_UNITS[unit]} at which {period} snapshots are due (default: {getattr(defaults, f.name)})",
        )


_ANCHOR_UNITS = {
    "year": "the year (1..9999) that fixes the phase of multi-year periods",
    "month": "the month (1..12)",
    "monthday": "the day of the month (1..31)",
    "weekday": "the day of the week (0 = Sunday .. 6 = Saturday)",
    "hour": "the hour (0..23)",
    "minute": "the minute (0..59)",
    "second": "the second (0..59)",
    "millisecond": "the millisecond (0..999)",
    "microsecond": "the microsecond (0..999)",
}


def _parse_plan(text: str, option: str, for_creation: bool = False) -> Plan:
    from zferry.lifecycle.plan import parse_plan

    return parse_plan(text, option, for_creation)


def _plan_groups(text: str, option: str) -> tuple[SnapshotGroup, ...]:
    from zferry.lifecycle.plan import plan_groups

    groups = plan_groups(_parse_plan(text, option), option)
    return groups or (SnapshotGroup(names=NameFilter(compile_patterns(["!.*"], option))),)


def build_snapshot_filter(args: argparse.Namespace) -> SnapshotFilter:
    """The snapshot filter groups in command-line order, plus those of the plans.

    Empty groups are dropped; if none is left, every snapshot is selected.
    """
    groups: list[SnapshotGroup] = []
    include: list[str] = []
    exclude: list[str] = []
    times: list[TimesAndRanks] = []
    times_first = False

    def close() -> None:
        nonlocal include, exclude, times, times_first
        if include or exclude or times:
            names = NameFilter(
                compile_patterns(include, "--include-snapshot-regex"),
                compile_patterns(exclude, "--exclude-snapshot-regex"),
            )
            groups.append(SnapshotGroup(names, tuple(times), ranks_first=times_first))
        include, exclude, times, times_first = [], [], [], False

    for dest, value in getattr(args, STEPS, None) or []:
        if dest == "new_snapshot_filter_group":
            close()
        elif dest == "include_snapshot_regex":
            include.append(value)
        elif dest == "exclude_snapshot_regex":
            exclude.append(value)
        elif dest == "include_snapshot_times_and_ranks":
            from zferry.select.times import parse_times_and_ranks

            times_first = times_first or not (include or exclude)
            times.append(parse_times_and_ranks(value))
        elif dest == "include_snapshot_plan":
            groups.extend(_plan_groups(value, "--include-snapshot-plan"))
    close()
    if args.delete_dst_snapshots_except_plan is not None:
        from zferry.lifecycle.plan import except_plan_filter

        option = "--delete-dst-snapshots-except-plan"
        groups.extend(except_plan_filter(_parse_plan(args.delete_dst_snapshots_except_plan, option)).groups)
    return SnapshotFilter(tuple(groups) or (SnapshotGroup(),))


def build_lifecycle_config(args: argparse.Namespace) -> LifecycleConfig:
    """Validate the lifecycle options and return their typed configuration."""
    create: Optional[CreateConfig] = None
    anchors = PeriodAnchors(**{f.name: getattr(args, f.name) for f in fields(PeriodAnchors)})
    naming = make_naming(args.create_src_snapshots_timeformat, args.create_src_snapshots_timezone)
    if args.create_src_snapshots:
        if not args.create_src_snapshots_plan:
            raise UsageError(
                "--create-src-snapshots needs --create-src-snapshots-plan, e.g. "
                "\"{'prod': {'onsite': {'hourly': 36, 'daily': 31}}}\""
            )
        plan = _parse_plan(args.create_src_snapshots_plan, "--create-src-snapshots-plan", for_creation=True)
        create = CreateConfig(plan, naming, anchors, args.create_src_snapshots_even_if_not_due)
    elif args.create_src_snapshots_plan:  # still report a bad plan
        _parse_plan(args.create_src_snapshots_plan, "--create-src-snapshots-plan", for_creation=True)
    delete_except = args.delete_dst_snapshots_except or args.delete_dst_snapshots_except_plan is not None
    if delete_except and not args.delete_dst_snapshots:
        raise UsageError(
            "--delete-dst-snapshots-except and --delete-dst-snapshots-except-plan say what to keep when "
            "deleting; add --delete-dst-snapshots"
        )
    if args.delete_empty_dst_datasets and not args.recursive:
        raise UsageError("--delete-empty-dst-datasets looks at whole subtrees; add --recursive")
    if args.delete_dst_datasets_whole_tree and not args.delete_dst_datasets:
        raise UsageError("--delete-dst-datasets-whole-tree confirms --delete-dst-datasets; add it, or drop this")
    cache_dir: Optional[str] = None
    if args.cache_snapshots == "true":
        cache_dir = args.cache_dir or default_cache_dir()
    return LifecycleConfig(
        create=create,
        skip_replication=args.skip_replication,
        delete_snapshots=args.delete_dst_snapshots,
        delete_except=delete_except,
        crosscheck_other_kind=not args.delete_dst_snapshots_no_crosscheck,
        delete_datasets=args.delete_dst_datasets,
        delete_datasets_chosen=args.delete_dst_datasets_whole_tree
        or bool(args.include_dataset or args.include_dataset_regex),
        delete_empty=args.delete_empty_dst_datasets,
        create_bookmarks=args.create_bookmarks,
        cache_dir=cache_dir,
    )


def check_dummy_pairs(pairs: Sequence[tuple[Endpoint, Endpoint]], lifecycle: LifecycleConfig) -> None:
    """'dummy' (no dataset) is a valid source or destination only when nothing is replicated."""
    for src, dst in pairs:
        if src.dataset == DUMMY and dst.dataset == DUMMY:
            raise UsageError("both source and destination are 'dummy': there is nothing to work on")
        if DUMMY in (src.dataset, dst.dataset) and not lifecycle.skip_replication:
            raise UsageError(
                f"'{DUMMY}' stands for no dataset and cannot be replicated to or from; add --skip-replication "
                "to only create or delete snapshots"
            )
        if src.dataset == DUMMY and lifecycle.delete_datasets and not lifecycle.delete_datasets_chosen:
            raise UsageError(
                f"'{DUMMY}' as source with --delete-dst-datasets would destroy every dataset under {dst}. "
                "Nothing was changed. Choose what to delete with --include-dataset or --include-dataset-regex, "
                "or confirm the whole tree with --delete-dst-datasets-whole-tree"
            )
