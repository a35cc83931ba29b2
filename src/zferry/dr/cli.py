"""`zferry-dr`: multi-site failover and failback over a TOML site file. The only place that exits.

Exit status: 0 done (status: every group has a primary, all sites reachable, none diverged),
1 an error or a refusal (status: something needs attention), 2 bad usage (nothing ran).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from zferry import __version__
from zferry.cli.audit_cli import audit_path
from zferry.dr import actions, metrics
from zferry.dr.config import Group, load
from zferry.dr.state import Sites
from zferry.dr.status import GroupStatus, group_status, to_json, to_text
from zferry.dr.steps import Steps
from zferry.endpoints import Connector
from zferry.engine import JobConfig
from zferry.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE, UsageError, ZferryError
from zferry.exec.runner import Runner
from zferry.exec.signals import SignalStop
from zferry.exec.ssh import SshConnections, SshSettings
from zferry.jobrunner.connections import SharedConnections
from zferry.observe.audit import AuditLog, Origin

log = logging.getLogger("zferry")
STATUS_THREADS = 8  # groups read at once by status

EXAMPLES = """\
examples:
  zferry-dr -c /etc/zferry/dr.toml status
  zferry-dr -c /etc/zferry/dr.toml status db --json
  zferry-dr -c /etc/zferry/dr.toml replicate                      # every group, from each primary
  zferry-dr -c /etc/zferry/dr.toml replicate db --on-divergence latest-wins
  zferry-dr -c /etc/zferry/dr.toml failover db --to west           # planned: RPO 0
  zferry-dr -c /etc/zferry/dr.toml failover db --to west --force   # east is down: unplanned
  zferry-dr -c /etc/zferry/dr.toml failback db --to east           # east back as standby, then primary
"""


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Options every subcommand takes, before or after its name."""
    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("common options")
    group.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="the site file (TOML; see README 'zferry-dr'), e.g. -c /etc/zferry/dr.toml",
        default=default,
    )
    group.add_argument(
        "--audit-log",
        metavar="FILE",
        help="append every step (property change, snapshot, rename, clone, promote, forced receive) to FILE "
        "(JSON lines; default ~/zferry-logs/audit.jsonl), e.g. --audit-log /var/log/zferry/audit.jsonl",
        default=default,
    )
    group.add_argument(
        "--metrics-file",
        metavar="FILE",
        help="after the command, write role, epoch, reachability, lag and divergence per group and site "
        "(Prometheus text), e.g. --metrics-file /var/lib/node_exporter/zferry_dr.prom",
        default=default,
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        help="more detail: -v each step, -v -v every command, e.g. -v",
        default=default,
    )
    group.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only, e.g. -q", default=default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zferry-dr",
        description="Keep a dataset tree on several sites, one primary at a time: status, replication, "
        "planned and forced failover, failback. Roles and fencing epochs live on the datasets "
        "(zferry:dr-role, zferry:dr-epoch).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"zferry-dr {__version__}")
    _common(parser, suppress=False)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, help="what to do; COMMAND --help for its options"
    )
    status = _sub(
        commands, "status", "each group's primary and each site's role, epoch, lag, divergence", "status db --json"
    )
    status.add_argument("group", nargs="?", metavar="GROUP", help="only this group (default: all), e.g. db")
    status.add_argument("--json", action="store_true", help="JSON instead of text, e.g. status --json | jq .groups")
    rep = _sub(commands, "replicate", "snapshot each primary and replicate it to its standbys", "replicate db")
    rep.add_argument("group", nargs="?", metavar="GROUP", help="only this group (default: all), e.g. db")
    rep.add_argument(
        "--on-divergence",
        choices=(actions.FAIL, actions.LATEST_WINS),
        default=actions.FAIL,
        help="a standby with snapshots or writes the primary lacks: fail (default), or latest-wins (the side "
        "with the newer newest snapshot wins; the loser's data is kept aside as DATASET.diverged-TIME), "
        "e.g. --on-divergence latest-wins",
    )
    over = _sub(commands, "failover", "make another site the primary", "failover db --to west")
    over.add_argument("group", metavar="GROUP", help="the group, e.g. db")
    over.add_argument("--to", required=True, metavar="SITE", help="the site to promote, e.g. --to west")
    over.add_argument(
        "--force",
        action="store_true",
        help="promote even though the primary is unreachable (unplanned failover: it is fenced when it "
        "returns), e.g. --force",
    )
    back = _sub(commands, "failback", "bring fenced sites back as standbys (and switch back)", "failback db --to east")
    back.add_argument("group", metavar="GROUP", help="the group, e.g. db")
    back.add_argument(
        "--to",
        metavar="SITE",
        help="the fenced site to bring back and then promote (default: every fenced site, no switch), e.g. --to east",
    )
    for sub in (rep, over, back):
        sub.add_argument("--dryrun", action="store_true", help="show what would run and change nothing, e.g. --dryrun")
    return parser


def _sub(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str, example: str
) -> argparse.ArgumentParser:
    sub = commands.add_parser(
        name,
        help=text,
        description=f"{text}.",
        epilog=f"example:\n  zferry-dr -c /etc/zferry/dr.toml {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(sub, suppress=True)
    return sub


def _check_argv(argv: Sequence[str]) -> JobConfig:
    from zferry.jobrunner.runner import prepare  # zferry's parser and job builder

    job = prepare("dr", argv).job
    if len(job.pairs) != 1:
        raise UsageError("extra_args must hold options only, no datasets")
    return job


def _prepare(name: str, argv: Sequence[str]) -> JobConfig:
    from zferry.jobrunner.runner import prepare

    return prepare(name, argv).job


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """zferry-dr's own handler on the zferry logger (replaced, not added again, by each main())."""


def _setup_logging(args: argparse.Namespace) -> None:
    for old in [h for h in log.handlers if isinstance(h, _Handler)]:
        log.removeHandler(old)
    handler = _Handler(sys.stderr)
    handler.setFormatter(logging.Formatter("zferry-dr: %(message)s"))
    log.addHandler(handler)
    verbose = getattr(args, "verbose", None) or 0
    log.setLevel(logging.WARNING if getattr(args, "quiet", False) else logging.DEBUG if verbose > 1 else logging.INFO)
    log.propagate = False


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run zferry-dr with `argv` (default: the process arguments); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:
        return EXIT_OK if exit_.code == 0 else EXIT_USAGE
    _setup_logging(args)
    try:
        if not args.config:
            raise UsageError("give the site file: zferry-dr -c FILE COMMAND (see zferry-dr --help)")
        config = load(args.config, _check_argv)
        groups = config.selected(getattr(args, "group", None))
        if getattr(args, "to", None):
            groups[0].site(args.to)  # a usage error before anything runs
        return _run(args, groups)
    except ZferryError as error:
        log.error("error: %s", error)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace, groups: Sequence[Group]) -> int:
    dryrun = getattr(args, "dryrun", False)
    audit = audit_path(args.audit_log)
    name = f"dr-{groups[0].name}" if len(groups) == 1 else "dr"
    runner = Runner(dry_run=dryrun, audit=None if dryrun else AuditLog(audit, Origin.current(name)))
    connections = SshConnections(SshSettings(), cancel=runner.cancel)
    stop = SignalStop(runner)
    engine_args = [
        "--audit-log",
        audit,
        *(["--dryrun"] if dryrun else []),
        *(["-v"] if (args.verbose or 0) > 1 else []),
    ]
    shared = SharedConnections(runner.cancel)
    sites = Sites(runner, Connector(runner, connections))
    steps = Steps(sites, _prepare, engine_args, runner.cancel, shared=shared)
    try:
        code = _command(args, steps, groups)
    finally:
        if args.metrics_file and not runner.cancel.is_set():
            _write_metrics(args.metrics_file, steps, groups)
        stop.close()
        runner.terminate_all()
        connections.close()
        shared.close()
        if runner.audit is not None:
            runner.audit.close()
    return code


def _command(args: argparse.Namespace, steps: Steps, groups: Sequence[Group]) -> int:
    if args.command == "status":
        statuses = _statuses(steps, groups)
        sys.stdout.write(to_json(statuses) + "\n" if args.json else to_text(statuses))
        return EXIT_OK if all(s.healthy for s in statuses) else EXIT_ERROR
    if args.command == "replicate":
        failed = 0
        for group in groups:
            try:
                actions.replicate(steps, group, args.on_divergence)
            except ZferryError as error:
                log.error("error: %s", error)
                failed += 1
        return EXIT_ERROR if failed else EXIT_OK
    if args.command == "failover":
        actions.failover(steps, groups[0], groups[0].site(args.to).name, args.force)
    else:
        actions.failback(steps, groups[0], groups[0].site(args.to).name if args.to else None)
    return EXIT_OK


def _statuses(steps: Steps, groups: Sequence[Group]) -> list[GroupStatus]:
    """Every group's status, groups in parallel (each host is connected to once, first)."""
    for site in {site for group in groups for site in group.sites}:
        try:
            steps.sites.host(site)
        except ZferryError:
            pass  # unreachable: its status says so
    with ThreadPoolExecutor(max_workers=STATUS_THREADS) as pool:
        return list(pool.map(lambda g: group_status(g, steps.read(g, initialise=False), time.time()), groups))


def _write_metrics(path: str, steps: Steps, groups: Sequence[Group]) -> None:
    try:
        metrics.write(path, _statuses(steps, groups))
    except (OSError, ZferryError) as error:
        log.error("error: cannot write the metrics file %s: %s", path, error)


def command_line() -> None:
    """The `zferry-dr` program."""
    sys.exit(main())
