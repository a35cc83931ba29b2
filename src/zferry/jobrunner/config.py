"""The jobrunner's own options: hosts, targets, root datasets, plans, verbs, workers.

Everything else on the command line is a zferry option and passes through, unchanged, to every
sub-job (`split_arguments` tells them apart with zferry's own parser). Values are checked here,
before anything runs: a bad one is a `UsageError` (exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from zferry import validate
from zferry.cli.numbers import seconds
from zferry.errors import UsageError
from zferry.jobrunner.systemd import DEFAULT_ON_CALENDAR, DEFAULT_USER, check_calendar
from zferry.lifecycle.plan import load_literal, parse_plan, plan_items
from zferry.observe.monitor import parse_monitor_plan

PlanDict = dict[str, dict[str, dict[str, object]]]
"""org -> target -> period -> count (or, in a monitoring plan, a dict of limits)."""

VERBS = (
    "create_src_snapshots",
    "replicate",
    "prune_src_snapshots",
    "prune_src_bookmarks",
    "prune_dst_snapshots",
    "monitor_src_snapshots",
    "monitor_dst_snapshots",
)
LOCALHOST = "localhost"
TAKEN_OVER = (
    "--create-src-snapshots-plan",
    "--include-snapshot-plan",
    "--delete-dst-snapshots",
    "--delete-dst-snapshots-except",
    "--delete-dst-snapshots-except-plan",
    "--skip-replication",
    "--monitor-snapshots",
    "--compare-snapshot-lists",
    "--daemon-lifetime",
)
"""zferry options the jobrunner sets itself per sub-job; giving them to the jobrunner is an error."""


@dataclass(frozen=True)
class FleetConfig:
    """What to do on which hosts: the input of `subjobs.generate` (pure data, all values checked)."""

    pairs: tuple[tuple[str, str], ...]
    src_hosts: tuple[str, ...]
    dst_hosts: Mapping[str, tuple[str, ...]]  # host -> the targets whose snapshots it receives
    retain_dst_targets: Mapping[str, tuple[str, ...]]  # host -> the targets whose snapshots it keeps
    dst_root_datasets: Mapping[str, str]  # host -> root dataset, may hold ^SRC_HOST and ^DST_HOST
    verbs: tuple[str, ...]
    recursive: bool = False
    src_snapshot_plan: Optional[PlanDict] = None
    src_bookmark_plan: Optional[PlanDict] = None
    dst_snapshot_plan: Optional[PlanDict] = None
    monitor_snapshot_plan: Optional[PlanDict] = None
    local_names: tuple[str, ...] = (LOCALHOST,)  # hosts reached without ssh
    passthrough: tuple[str, ...] = ()  # zferry options for every sub-job
    job_name: str = "jobrunner"  # each sub-job's --job-name is this and the sub-job's name


@dataclass(frozen=True)
class RunSettings:
    """How the sub-jobs run."""

    workers: int = 1
    work_period_seconds: float = 0.0
    jitter: bool = False
    jobrunner_dryrun: bool = False
    job_id: str = "jobrunner"
    emit_systemd: Optional[str] = None  # a folder: write the units there instead of running
    on_calendar: str = DEFAULT_ON_CALENDAR
    systemd_user: str = DEFAULT_USER


def build_parser() -> argparse.ArgumentParser:
    """The jobrunner's own options (zferry's options are accepted too and passed through)."""
    parser = argparse.ArgumentParser(
        prog="zferry-jobrunner",
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run zferry sub-jobs for a fleet: N source hosts, M destination hosts with targets, snapshot "
        "plans. Options it does not know are zferry options and pass through to every sub-job (e.g. --dryrun, "
        "-v, --ssh-src-config-file).",
        epilog=_EXAMPLES,
    )
    parser.add_argument(
        "root_dataset_pairs",
        nargs="*",
        metavar="SRC_DATASET DST_DATASET",
        help="pairs of datasets; the destination is relative to the destination host's root dataset "
        "(--dst-root-datasets), or absolute when it starts with '/', e.g. tank/home home",
    )
    parser.add_argument("-r", "--recursive", action="store_true", help="pass --recursive to every sub-job")
    _hosts(parser)
    _plans(parser)
    _verbs(parser)
    _execution(parser)
    _scheduling(parser)
    return parser


SYSTEMD_OPTIONS = ("--emit-systemd", "--systemd-on-calendar", "--systemd-user")


def _scheduling(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scheduling (write the files, run nothing)")
    group.add_argument(
        "--emit-systemd",
        metavar="DIR",
        help="write DIR/zferry-JOBID.timer and .service (running this command line daily), a .logrotate file "
        "and a .cron line, e.g. --emit-systemd /tmp/units, then copy them to /etc/systemd/system, "
        "/etc/logrotate.d or /etc/cron.d",
    )
    group.add_argument(
        "--systemd-on-calendar",
        default=DEFAULT_ON_CALENDAR,
        metavar="SPEC",
        help=f"when the timer fires (default: '{DEFAULT_ON_CALENDAR}', plus up to 10 minutes of random delay), "
        "e.g. --systemd-on-calendar hourly",
    )
    group.add_argument(
        "--systemd-user",
        default=DEFAULT_USER,
        metavar="USER",
        help=f"the unprivileged user the service runs as, with rights from 'zfs allow' (default: {DEFAULT_USER}), "
        "e.g. --systemd-user backup",
    )


_EXAMPLES = """examples:
  zferry-jobrunner tank/home home --src-hosts "['src1', 'src2']" \\
      --dst-hosts "{'nas1': ['onsite'], 'dr': ['offsite']}" \\
      --dst-root-datasets "{'nas1': 'backups/^SRC_HOST', 'dr': 'archive/^SRC_HOST'}" \\
      --src-snapshot-plan "{'prod': {'onsite': {'hourly': 36}, 'offsite': {'daily': 31}}}" \\
      --create-src-snapshots --replicate --jobrunner-dryrun
  zferry-jobrunner ... --replicate --prune-dst-snapshots --dst-host nas1   (on nas1: its own share)
"""


def _hosts(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hosts and targets")
    group.add_argument(
        "--src-hosts",
        metavar="LIST",
        help="the source hosts ([user@]host, 'localhost' for no ssh), e.g. \"['src1', 'src2']\"",
    )
    group.add_argument(
        "--src-host",
        action="append",
        default=[],
        metavar="HOST",
        help="only this source host's share of the work (repeatable), e.g. --src-host src1 on src1",
    )
    group.add_argument(
        "--dst-hosts",
        metavar="DICT",
        help="destination host -> the targets whose snapshots it receives, "
        "e.g. \"{'nas1': ['onsite'], 'dr': ['offsite']}\"",
    )
    group.add_argument(
        "--dst-host",
        action="append",
        default=[],
        metavar="HOST",
        help="only this destination host's share of the work (repeatable), e.g. --dst-host nas1 on nas1",
    )
    group.add_argument(
        "--retain-dst-targets",
        metavar="DICT",
        help="destination host -> the targets whose snapshots it keeps when pruning (default: --dst-hosts), "
        "e.g. \"{'nas1': ['onsite'], 'dr': ['offsite']}\"",
    )
    group.add_argument(
        "--dst-root-datasets",
        metavar="DICT",
        help="destination host -> root dataset ('' for none); ^SRC_HOST and ^DST_HOST are replaced by the "
        "host names, e.g. \"{'nas1': 'backups/^SRC_HOST'}\"",
    )
    group.add_argument(
        "--localhost",
        metavar="NAME",
        help="this host's name in the host lists: it is reached without ssh, like 'localhost', e.g. --localhost nas1",
    )


def _plans(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("plans (org -> target -> period -> count)")
    example = "\"{'prod': {'onsite': {'hourly': 36, 'daily': 31}}}\""
    group.add_argument(
        "--src-snapshot-plan", metavar="DICT", help=f"snapshots to take and keep on the sources, e.g. {example}"
    )
    group.add_argument(
        "--src-bookmark-plan",
        metavar="DICT",
        help=f"bookmarks to keep on the sources (default: --src-snapshot-plan), e.g. {example}",
    )
    group.add_argument(
        "--dst-snapshot-plan",
        metavar="DICT",
        help=f"snapshots to replicate and keep on the destinations (default for replication: "
        f"--src-snapshot-plan), e.g. {example}",
    )
    group.add_argument(
        "--monitor-snapshot-plan",
        metavar="DICT",
        help="snapshot age limits, e.g. \"{'prod': {'onsite': {'daily': {'warning': '25 hours', "
        "'critical': '26 hours'}}}}\"",
    )


def _verbs(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("what to do (any combination)")
    helps = {
        "create_src_snapshots": "take the snapshots of --src-snapshot-plan that are due on the sources",
        "replicate": "replicate each target's snapshots to the hosts of that target",
        "prune_src_snapshots": "on the sources, delete the plan's snapshots that --src-snapshot-plan does not keep",
        "prune_src_bookmarks": "on the sources, delete the plan's bookmarks that --src-bookmark-plan does not keep",
        "prune_dst_snapshots": "on the destinations, delete snapshots of their targets that --retain-dst-targets "
        "and --dst-snapshot-plan do not keep; other targets' snapshots are never touched",
        "monitor_src_snapshots": "check snapshot ages on the sources against --monitor-snapshot-plan",
        "monitor_dst_snapshots": "check snapshot ages on the destinations against --monitor-snapshot-plan",
    }
    for verb in VERBS:
        group.add_argument("--" + verb.replace("_", "-"), action="store_true", help=helps[verb])


def workers_count(text: str) -> int:
    """`--workers`: a whole number >= 1, or a percentage of this machine's cores (at least 1)."""
    percent = text.endswith("%")
    try:
        value = float(text[:-1]) if percent else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a whole number nor a percentage like 50%") from None
    if not 0 < value <= (10_000 if percent else 100_000):
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; give 1..100000 or 1%%..10000%%")
    return max(1, int((os.cpu_count() or 1) * value / 100)) if percent else int(value)


def _execution(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("running the sub-jobs")
    group.add_argument(
        "--workers",
        type=workers_count,
        default="100%",
        metavar="N|N%",
        help="sub-jobs at once: a number, or a percentage of the cores (default: 100%%), e.g. --workers 4",
    )
    group.add_argument(
        "--work-period-seconds",
        type=seconds(allow_zero=True),
        default=0.0,
        metavar="SECONDS",
        help="spread the sub-jobs' starts evenly over this many seconds (default: 0, all at once), "
        "e.g. --work-period-seconds 600",
    )
    group.add_argument("--jitter", action="store_true", help="start the sub-jobs in random order")
    group.add_argument(
        "--jobrunner-dryrun",
        action="store_true",
        help="print each sub-job's zferry command line and run nothing (--dryrun, a zferry option, "
        "runs the sub-jobs in dry-run mode instead)",
    )
    group.add_argument(
        "--job-id",
        metavar="NAME",
        default="jobrunner",
        help="this run's name in its log file, and the start of each sub-job's job name (default: jobrunner; "
        "a passed-through --job-name takes its place there), e.g. --job-id nightly",
    )


def parse_literal(text: Optional[str], option: str, example: str, kind: str = "dict") -> object:
    """A JSON or Python literal (never evaluated as code), None when the option was not given."""
    return None if text is None else load_literal(text, option, example, "the value", kind)


def check_host(host: object, option: str) -> str:
    """A `[user@]host` ssh destination."""
    if not isinstance(host, str):
        raise UsageError(f"{option}: host {host!r} must be a string such as 'nas1' or 'backup@nas1'")
    user, _, name = host.rpartition("@")
    if user:
        validate.username(user)
    validate.hostname(name)
    return host


def host_list(text: Optional[str], option: str) -> tuple[str, ...]:
    """`--src-hosts`: a list of distinct hosts."""
    value = parse_literal(text, option, "\"['src1', 'src2']\"", "list")
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise UsageError(f"{option}: give a list of hosts, e.g. \"['src1', 'src2']\"")
    hosts = tuple(check_host(h, option) for h in value)
    if len(set(hosts)) != len(hosts):
        raise UsageError(f"{option}: a host is listed twice")
    return hosts


def host_targets(text: Optional[str], option: str) -> Optional[dict[str, tuple[str, ...]]]:
    """`--dst-hosts`, `--retain-dst-targets`: host -> list of targets."""
    example = "\"{'nas1': ['onsite'], 'dr': ['offsite']}\""
    value = parse_literal(text, option, example)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UsageError(f"{option}: give a dict of host -> list of targets, e.g. {example}")
    out: dict[str, tuple[str, ...]] = {}
    for host, targets in value.items():
        if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str) for t in targets):
            raise UsageError(f"{option}: host {host!r} must map to a list of target names, e.g. {example}")
        for target in targets:  # the names a plan accepts
            plan_items(json.dumps({"org": {target: {}}}), f"{option} ({host})")
        out[check_host(host, option)] = tuple(targets)
    return out


def root_datasets(text: Optional[str], option: str) -> dict[str, str]:
    """`--dst-root-datasets`: host -> root dataset ('' allowed)."""
    example = "\"{'nas1': 'backups/^SRC_HOST'}\""
    value = parse_literal(text, option, example)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise UsageError(f"{option}: give a dict of host -> root dataset, e.g. {example}")
    return {check_host(host, option): root.strip("/") for host, root in value.items()}


def plan(text: Optional[str], option: str, monitor: bool = False, for_creation: bool = False) -> Optional[PlanDict]:
    """A snapshot plan (or monitoring plan), checked by zferry's own parser, as plain nested dicts."""
    if text is None:
        return None
    if monitor:
        parse_monitor_plan(text, option)
    else:
        parse_plan(text, option, for_creation=for_creation)
    out: PlanDict = {}
    for org, target, period, value in plan_items(text, option):
        out.setdefault(org, {}).setdefault(target, {})[period] = value
    return out


def restricted_hosts(hosts: Sequence[str], chosen: Sequence[str], option: str, listing: str) -> tuple[str, ...]:
    """The hosts of `hosts` that `--src-host`/`--dst-host` chose (all when none was given)."""
    for host in chosen:
        if host not in hosts:
            raise UsageError(f"{option} {host!r} is not one of {listing}: {', '.join(hosts) or 'none'}")
    return tuple(h for h in hosts if not chosen or h in chosen)


def split_arguments(
    argv: Sequence[str], own: argparse.ArgumentParser, zferry: argparse.ArgumentParser
) -> tuple[list[str], list[str]]:
    """Split a command line into the jobrunner's words and the zferry options for every sub-job.

    Which words are an option's values is what zferry's parser says for zferry options (after
    its own `normalize_arguments`) and the jobrunner's parser for its own. Dataset names stay
    with the jobrunner; everything after `--` too.
    """
    from zferry.cli.options import normalize_arguments  # the CLI package imports much; only here

    words = normalize_arguments(zferry, argv)
    own_options = {s: a for a in own._actions for s in a.option_strings}
    zferry_options = {s: a for a in zferry._actions for s in a.option_strings}
    mine: list[str] = []
    passed: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            mine += words[index - 1 :]
            break
        name, equals, _ = word.partition("=")
        action = own_options.get(name) if word.startswith("-") else None
        into = mine if action is not None or not word.startswith("-") else passed
        action = action or (zferry_options.get(name) if word.startswith("-") else None)
        into.append(word)
        if action is None or equals or action.nargs in (0, "?"):
            continue
        count = 1 if action.nargs is None else action.nargs if isinstance(action.nargs, int) else 0
        if action.nargs in ("+", "*"):
            while index < len(words) and not words[index].startswith("-"):
                into.append(words[index])
                index += 1
        into += words[index : index + count]
        index += count
    for word in passed:
        if word.partition("=")[0] in TAKEN_OVER:
            raise UsageError(f"{word.partition('=')[0]} is set by the jobrunner per sub-job; use its plans and verbs")
    return mine, passed


def take_option(words: Sequence[str], option: str) -> tuple[Optional[str], list[str]]:
    """The last value of `option` (`--opt V` or `--opt=V`) in `words`, and the words without it."""
    value: Optional[str] = None
    rest: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word == option and index + 1 < len(words):
            value = words[index + 1]
            index += 2
            continue
        if word.startswith(option + "="):
            value = word[len(option) + 1 :]
        else:
            rest.append(word)
        index += 1
    return value, rest


def build_fleet_config(args: argparse.Namespace, passthrough: Sequence[str]) -> FleetConfig:
    """The checked fleet configuration from the jobrunner's parsed options."""
    words = list(args.root_dataset_pairs)
    if words[:1] == ["--"]:
        words = words[1:]
    if len(words) % 2:
        raise UsageError(f"datasets come in SRC DST pairs, but {len(words)} were given: {' '.join(words)}")
    pairs = tuple((words[i], words[i + 1]) for i in range(0, len(words), 2))
    src_hosts = host_list(args.src_hosts, "--src-hosts")
    dst_hosts = host_targets(args.dst_hosts, "--dst-hosts") or {}
    retain = host_targets(args.retain_dst_targets, "--retain-dst-targets")
    roots = root_datasets(args.dst_root_datasets, "--dst-root-datasets")
    local = (LOCALHOST, check_host(args.localhost, "--localhost")) if args.localhost else (LOCALHOST,)
    verbs = tuple(v for v in VERBS if getattr(args, v))
    given, rest = take_option(passthrough, "--job-name")
    if verbs and not pairs:
        raise UsageError("no datasets given: zferry-jobrunner SRC_DATASET DST_DATASET ... (see --help)")
    if verbs and not src_hosts:
        raise UsageError("--src-hosts is missing, e.g. --src-hosts \"['src1']\" (or \"['localhost']\")")
    return FleetConfig(
        pairs=pairs,
        src_hosts=restricted_hosts(src_hosts, args.src_host, "--src-host", "--src-hosts"),
        dst_hosts={
            h: dst_hosts[h] for h in restricted_hosts(list(dst_hosts), args.dst_host, "--dst-host", "--dst-hosts")
        },
        retain_dst_targets=dst_hosts if retain is None else retain,
        dst_root_datasets=roots,
        verbs=verbs,
        recursive=args.recursive,
        src_snapshot_plan=plan(args.src_snapshot_plan, "--src-snapshot-plan", for_creation=True),
        src_bookmark_plan=plan(args.src_bookmark_plan, "--src-bookmark-plan"),
        dst_snapshot_plan=plan(args.dst_snapshot_plan, "--dst-snapshot-plan"),
        monitor_snapshot_plan=plan(args.monitor_snapshot_plan, "--monitor-snapshot-plan", monitor=True),
        local_names=local,
        passthrough=tuple(rest),
        job_name=validate.job_name(given or args.job_id),
    )


def build_run_settings(args: argparse.Namespace) -> RunSettings:
    """How to run the sub-jobs, from the parsed options."""
    return RunSettings(
        workers=args.workers,
        work_period_seconds=args.work_period_seconds,
        jitter=args.jitter,
        jobrunner_dryrun=args.jobrunner_dryrun,
        job_id=validate.job_name(args.job_id),
        emit_systemd=args.emit_systemd,
        on_calendar=check_calendar(args.systemd_on_calendar),
        systemd_user=validate.username(args.systemd_user),
    )
