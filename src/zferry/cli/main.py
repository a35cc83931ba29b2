"""`zferry` entry point: parse and check everything, then run the job. The only place that exits."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import shlex
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Optional

from zferry import __version__, engine, validate
from zferry.cli import audit_cli
from zferry.cli.audit_cli import audit_path
from zferry.cli.daemon_options import build_daemon_settings
from zferry.cli.lifecycle_options import STEPS, build_lifecycle_config, build_snapshot_filter, check_dummy_pairs
from zferry.cli.observe_options import build_monitor_config, monitor_requested, read_only_mode
from zferry.cli.options import build_parser, normalize_arguments
from zferry.cli.ssh_options import (
    build_property_rules,
    build_ssh_settings,
    build_stream_options,
    child_environment,
    program_name,
)
from zferry.engine import ExecutionSettings, JobConfig
from zferry.errors import LockedError, UsageError, ZferryError
from zferry.exec.signals import SignalStop
from zferry.model import Endpoint
from zferry.observe import logs, metrics
from zferry.plan import send_flags
from zferry.plan.replication import ConflictPolicy
from zferry.replicate import VERBOSE, ReplicationConfig
from zferry.retry import RetryPolicy
from zferry.select.datasets import DatasetFilter

log = logging.getLogger("zferry")
_SAFE_OPTION_WORD = re.compile(r"[A-Za-z0-9_=.,:/@+%\-]+")


def _read_lines(path: str, what: str) -> list[tuple[int, str]]:
    """The numbered lines of a `+FILE`, without blank lines and # comments."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as error:
        raise UsageError(f"cannot read {what} {path!r}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {what} {path!r}: it is not UTF-8 text") from None
    return [(n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")]


def expand_argument_files(args: Sequence[str]) -> list[str]:
    """Replace each `+FILE` with the tab-separated words of FILE's lines (blank lines and # comments skipped)."""
    out: list[str] = []
    for arg in args:
        if not arg.startswith("+") or len(arg) == 1:
            out.append(arg)
            continue
        for number, line in _read_lines(arg[1:], "argument file"):
            words = line.split("\t")
            if len(words) != 2:
                raise UsageError(f"{arg[1:]}:{number}: expected 'SRC<TAB>DST', got {line!r}")
            out += [w.strip() for w in words]
    return out


def expand_pattern_files(values: Sequence[str], option: str) -> list[str]:
    """Replace each `+FILE` among the values of a regex option with FILE's patterns, one per line."""
    out: list[str] = []
    for value in values:
        if not value.startswith("+") or len(value) == 1:
            out.append(value)
            continue
        patterns = [line.strip() for _, line in _read_lines(value[1:], f"{option} file")]
        if not patterns:
            raise UsageError(f"{option}: {value[1:]!r} holds no pattern (one regex per line, # for comments)")
        out += patterns
    return out


def _expand_option_files(args: argparse.Namespace) -> None:
    """`+FILE` for the dataset pairs and for every regex option (PRD FR-USA-005)."""
    args.root_dataset_pairs = expand_argument_files(args.root_dataset_pairs)
    for dest, values in list(vars(args).items()):
        if dest.endswith("_regex") and isinstance(values, list):
            setattr(args, dest, expand_pattern_files(values, _option_name(dest)))
    steps: list[tuple[str, object]] = []  # the snapshot filters in command-line order, files read in place
    for dest, value in getattr(args, STEPS, None) or []:
        patterns = expand_pattern_files([value], _option_name(dest)) if dest.endswith("_regex") else [value]
        steps += [(dest, pattern) for pattern in patterns]
    setattr(args, STEPS, steps)


def _option_name(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line: no option swallows a dataset name, `+FILE` arguments are read."""
    parser = build_parser()
    args = parser.parse_args(normalize_arguments(parser, argv))
    _expand_option_files(args)
    return args


def parse_pairs(words: Sequence[str]) -> list[tuple[Endpoint, Endpoint]]:
    if not words:
        raise UsageError("no datasets given: zferry SRC_DATASET DST_DATASET (see zferry --help)")
    if len(words) % 2:
        raise UsageError(f"datasets come in SRC DST pairs, but {len(words)} were given: {' '.join(words)}")
    pairs = [(validate.endpoint(words[i]), validate.endpoint(words[i + 1])) for i in range(0, len(words), 2)]
    for src, dst in pairs:
        if src.host == dst.host and (
            src.dataset == dst.dataset
            or dst.dataset.startswith(src.dataset + "/")
            or src.dataset.startswith(dst.dataset + "/")
        ):
            raise UsageError(f"source {src} and destination {dst} overlap; choose a destination outside the source")
    return pairs


def program_options(text: str, option: str) -> tuple[str, ...]:
    """Split extra zfs options; refuse words a shell would treat specially."""
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise UsageError(f"{option}: {error}") from None
    for word in words:
        if not _SAFE_OPTION_WORD.fullmatch(word):
            raise UsageError(f"{option}: {word!r} contains characters that are not allowed in a zfs option")
    return tuple(words)


def build_config(args: argparse.Namespace) -> ReplicationConfig:
    """Turn parsed options into the job's typed configuration, validating every value."""
    datasets = DatasetFilter.build(
        args.include_dataset_regex,
        args.exclude_dataset_regex,
        args.include_dataset,
        args.exclude_dataset,
        args.exclude_dataset_property,
    )
    for name in [*args.include_dataset, *args.exclude_dataset]:
        validate.dataset_name(name.strip("/"))
    policy = ConflictPolicy(
        force=args.force,
        rollback_to_latest_common=args.force_rollback_to_latest_common_snapshot,
        rollback_to_latest=args.force_rollback_to_latest_snapshot,
        use_bookmarks=not args.no_use_bookmark,
        no_stream=args.no_stream,
    )
    return ReplicationConfig(
        recursive=args.recursive,
        datasets=datasets,
        snapshots=build_snapshot_filter(args),
        policy=policy,
        threads=args.threads,
        skip_on_error=args.skip_on_error,
        dryrun=args.dryrun,
        send_options=validate.zfs_send_options(program_options(args.zfs_send_program_opts, "--zfs-send-program-opts")),
        send_flags=send_flags.parse_letters(args.zfs_send_default_flags),
        recv_options=validate.zfs_recv_options(program_options(args.zfs_recv_program_opts, "--zfs-recv-program-opts")),
        resume=not args.no_resume_recv,
        stream=build_stream_options(args, interactive=sys.stderr.isatty()),
        properties=build_property_rules(args),
        retry=build_retry_policy(args),
    )


def build_retry_policy(args: argparse.Namespace) -> RetryPolicy:
    """The retry policy. Each value's range is checked by its argument type; here, that min <= max."""
    if args.retries < 0 or min(args.retry_min_sleep_secs, args.retry_max_sleep_secs, args.retry_max_elapsed_secs) < 0:
        raise UsageError("--retries and --retry-*-secs must not be negative")
    if args.retry_min_sleep_secs > args.retry_max_sleep_secs:
        raise UsageError(
            f"--retry-min-sleep-secs ({args.retry_min_sleep_secs:g}) is more than --retry-max-sleep-secs "
            f"({args.retry_max_sleep_secs:g}); make the minimum the smaller one"
        )
    return RetryPolicy(args.retries, args.retry_min_sleep_secs, args.retry_max_sleep_secs, args.retry_max_elapsed_secs)


def setup_logging(verbose: int, quiet: bool, settings: Optional[logs.LogSettings] = None, job: str = "") -> None:
    """stderr at the level -v/-q choose; the log file, syslog and the format as `settings` say (none: stderr only)."""
    level = logging.WARNING if quiet else {0: logging.INFO, 1: VERBOSE}.get(verbose, logging.DEBUG)
    logs.install(log, level, settings or logs.LogSettings(), job)


def check_seconds(value: Optional[float], option: str) -> Optional[float]:
    """A non-negative number of seconds; 0 or None mean "no limit"."""
    if value is not None and not value >= 0:
        raise UsageError(f"{option} must be a number of seconds, at least 0 (0: no limit)")
    return value or None


def build_job_config(args: argparse.Namespace) -> JobConfig:
    """The whole job, from parsed options: pairs, replication, lifecycle, ssh, execution."""
    pairs = parse_pairs(args.root_dataset_pairs)
    config = build_config(args)
    lifecycle = build_lifecycle_config(args)
    times_filter = any(g.times_and_ranks for g in config.snapshots.groups)
    if lifecycle.create is not None or lifecycle.deletes_on_dst or times_filter:
        config = dataclasses.replace(config, version_details=True)  # creation times and holds are needed
    if lifecycle.cache_dir:
        config = dataclasses.replace(config, cache_dir=lifecycle.cache_dir)
    check_dummy_pairs(pairs, lifecycle)
    execution = ExecutionSettings(
        env=child_environment(args),
        timeout=check_seconds(args.timeout, "--timeout"),
        stall_timeout=check_seconds(args.stall_timeout, "--stall-timeout"),
        lock_dir=args.lock_dir,
        lock_wait=check_seconds(args.lock_wait, "--lock-wait") or 0.0,
        privilege_elevation=not args.no_privilege_elevation,
        sudo=program_name(args.sudo_program, "--sudo-program") or "sudo",
        audit_log=audit_path(args.audit_log, logs.resolve_log_dir(args)),
        metrics_file=args.metrics_file,
    )
    job_name = validate.job_name(args.job_name) if args.job_name else ""
    return JobConfig(tuple(pairs), config, lifecycle, build_ssh_settings(args), execution, job_name)


def run(argv: Sequence[str]) -> int:
    """Parse and check `argv`, run the job through the engine, and return its exit status."""
    args = parse_arguments(argv)
    mode = read_only_mode(args)
    monitor_config = build_monitor_config(args) if mode == "monitor" else None
    job = build_job_config(args)  # before the logs: the log file is named after the job
    daemon_settings = build_daemon_settings(args)
    if daemon_settings is not None and mode is not None:
        raise UsageError(
            "--daemon-lifetime repeats replication; it does not combine with --compare-snapshot-lists "
            "or --monitor-snapshots"
        )
    setup_logging(args.verbose, args.quiet, logs.settings_from_args(args), job.name)
    log.debug("zferry %s, job %s, pid %d: zferry %s", __version__, job.name, os.getpid(), shlex.join(argv))
    if job.replication.dryrun and mode is None:
        log.info("dry run: nothing will be changed")
    if job.execution.metrics_file and metrics.name_warning(job.execution.metrics_file):
        log.warning("%s", metrics.name_warning(job.execution.metrics_file))
    runner = engine.make_runner(job)
    signals = SignalStop(runner)  # SIGTERM/SIGINT stop the runner: the engine then ends within seconds
    try:
        if mode == "compare":
            return engine.compare(job, sys.stdout, args.compare_snapshot_lists, runner=runner).exit_code
        if monitor_config is not None:
            report = engine.monitor(job, monitor_config, runner=runner)
            sys.stdout.write(report.text)
            return report.exit_code
        if daemon_settings is not None:
            from zferry import daemon  # imported only when needed: start-up time counts (bench/)

            return daemon.run(job, daemon_settings, runner)
        return engine.run(job, runner=runner).exit_code
    finally:
        signals.close()


def _monitor_main(argv: Sequence[str]) -> int:
    """`main` for a monitoring run: every failure, bad usage included, is UNKNOWN (exit 3) on stdout."""
    from zferry.observe.monitor import UNKNOWN

    try:
        return run(argv)
    except SystemExit as exit_:  # argparse's usage errors (and --help, which is no failure)
        if exit_.code in (0, None):
            return 0
        message = "bad usage (see the error above)"
    except ZferryError as error:
        message = str(error)
    finally:
        logs.close_files(log)
    print(f"ZFERRY UNKNOWN - {' '.join(message.split())}")
    return UNKNOWN


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run zferry with `argv` (default: the process arguments); return the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["audit"] and words[1:2] in ([], ["tail"], ["-h"], ["--help"]):  # a pool may be named audit
        return audit_cli.main(words[1:])
    if monitor_requested(words):
        return _monitor_main(words)
    try:
        return run(words)
    except LockedError as error:
        print(f"zferry: {error}", file=sys.stderr)
        logs.log_to_files(log, logging.WARNING, f"{error} (exit status {error.exit_code})")
        return error.exit_code
    except ZferryError as error:
        print(f"zferry: error: {error}", file=sys.stderr)
        logs.log_to_files(log, logging.ERROR, f"error: {error} (exit status {error.exit_code})")
        return error.exit_code
    except Exception:  # a bug: its traceback goes to stderr (by Python) and to the log file
        logs.log_to_files(log, logging.CRITICAL, f"crashed:\n{traceback.format_exc()}")
        raise
    finally:
        logs.close_files(log)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def command_line() -> None:
    """The `zferry` program: `main`, where a SIGTERM/SIGINT that comes before the run installs its
    own handling, or after it removed it while ending, still exits 143/130 (not killed by the signal)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_on_signal)
    sys.exit(main())
