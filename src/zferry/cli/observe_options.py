"""Command-line options of the read-only modes: `--compare-snapshot-lists` and `--monitor-snapshots`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

from zferry.errors import UsageError
from zferry.observe.compare import DEFAULT_SELECTOR, SELECTORS

if TYPE_CHECKING:
    from zferry.observe.monitor import MonitorConfig

MONITOR_OPTION = "--monitor-snapshots"


def add_observe_options(parser: argparse.ArgumentParser) -> None:
    """Add the compare and monitor options to `parser`."""
    group = parser.add_argument_group("checking without changing anything (no lock is taken)")
    group.add_argument(
        "--compare-snapshot-lists",
        nargs="?",
        const=DEFAULT_SELECTOR,
        choices=SELECTORS,
        metavar="src|dst|all|src+dst|src+dst+all",
        help="replicate nothing: print a TSV row per snapshot and bookmark of each pair, whether it is only "
        "on the source (src), only on the destination (dst) or on both by GUID (all), and log per dataset the "
        "counts and the latest common snapshot's age; the value picks the rows printed (default: all three), "
        "e.g. zferry -r --compare-snapshot-lists=src tank/db backup/db > missing.tsv",
    )
    group.add_argument(
        MONITOR_OPTION,
        metavar="DICT",
        help="replicate nothing: check the age of the latest (and oldest) snapshot of each plan entry on the "
        "destination (the source if DST is dummy), like a Nagios plugin (exit 0 OK, 1 WARNING, 2 CRITICAL, "
        "3 UNKNOWN), e.g. \"{'prod': {'onsite': {'daily': {'warning': '25 hours', 'critical': '26 hours', "
        "'oldest_critical': '100 days'}}}}\"",
    )
    group.add_argument(
        "--monitor-snapshots-dont-warn",
        action="store_true",
        help="report warnings of --monitor-snapshots but do not exit 1 for them, e.g. while a new plan settles",
    )
    group.add_argument(
        "--monitor-snapshots-dont-crit",
        action="store_true",
        help="report criticals of --monitor-snapshots but do not exit 2 for them, e.g. during maintenance",
    )


def read_only_mode(args: argparse.Namespace) -> Optional[str]:
    """`compare`, `monitor` or None; refuses combinations with each other or with steps that write."""
    modes = [m for m, on in (("compare", args.compare_snapshot_lists), ("monitor", args.monitor_snapshots)) if on]
    if (args.monitor_snapshots_dont_warn or args.monitor_snapshots_dont_crit) and "monitor" not in modes:
        raise UsageError("--monitor-snapshots-dont-warn and -dont-crit go with --monitor-snapshots PLAN")
    if not modes:
        return None
    if len(modes) > 1:
        raise UsageError("--compare-snapshot-lists and --monitor-snapshots are separate runs; give one of them")
    writers = [
        option
        for option, on in (
            ("--create-src-snapshots", args.create_src_snapshots),
            ("--delete-dst-snapshots", args.delete_dst_snapshots),
            ("--delete-dst-datasets", args.delete_dst_datasets),
            ("--delete-empty-dst-datasets", args.delete_empty_dst_datasets),
        )
        if on
    ]
    if writers:
        option = "--compare-snapshot-lists" if modes[0] == "compare" else MONITOR_OPTION
        raise UsageError(f"{option} only reads; run {', '.join(writers)} in a separate zferry run")
    args.skip_replication = True  # nothing is replicated; `dummy` may name a missing side
    return modes[0]


def build_monitor_config(args: argparse.Namespace) -> MonitorConfig:
    """The parsed and checked monitoring plan and its options."""
    from zferry.observe.monitor import MonitorConfig, parse_monitor_plan  # only in monitor mode

    entries = parse_monitor_plan(args.monitor_snapshots, MONITOR_OPTION)
    return MonitorConfig(entries, args.monitor_snapshots_dont_warn, args.monitor_snapshots_dont_crit)


def monitor_requested(argv: Sequence[str]) -> bool:
    """Does the command line ask for monitoring (so that every error must exit 3, UNKNOWN)?"""
    for word in argv:
        if word == "--":
            return False
        if word.startswith("--monitor-s"):
            return True
    return False
