"""`zferry-jobrunner`: fleet orchestration. Parse, generate the sub-jobs, check them all, run them in-process.

A user's Python config script builds the command line and calls `main([...])`; the same options
work from a shell. The jobrunner's own options are in `zferry.jobrunner.config`; every other option
is zferry's and passes through to each sub-job, parsed and checked by zferry's own code.
"""

from __future__ import annotations

import logging
import os
import random
import shlex
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Optional

from zferry import __version__
from zferry.cli.main import parse_arguments, setup_logging
from zferry.cli.options import build_parser as build_zferry_parser
from zferry.errors import EXIT_USAGE, UsageError
from zferry.exec.runner import Runner
from zferry.exec.signals import SignalStop
from zferry.jobrunner import config, connections, runner, scheduler, subjobs, systemd
from zferry.jobrunner.subjobs import SubJob
from zferry.observe import logs

log = logging.getLogger("zferry")


def command_line(job: SubJob) -> str:
    """A sub-job as a copy-pasteable shell line, its name as a comment."""
    return f"zferry {shlex.join(job.argv)}  # {job.name}"


def summary(results: Sequence[scheduler.TaskResult], begin: float) -> str:
    """The table printed at the end: each sub-job's status, exit code, start and end (seconds after the
    jobrunner began) and duration."""
    width = max([len("sub-job"), *(len(r.name) for r in results)])
    lines = [f"{'sub-job':<{width}}  {'status':<9}  exit  {'start':>8}  {'end':>8}  {'seconds':>8}"]
    for r in results:
        times = f"{r.started - begin:8.2f}  {r.finished - begin:8.2f}" if r.started else f"{'-':>8}  {'-':>8}"
        lines.append(f"{r.name:<{width}}  {r.status:<9}  {r.exit_code:>4}  {times}  {r.seconds:8.2f}")
    return "\n".join(lines)


def plan_jobs(
    argv: Sequence[str], rng: Optional[random.Random] = None
) -> tuple[list[SubJob], config.RunSettings, list[str]]:
    """The sub-jobs, run settings and passed-through zferry options of a command line (nothing runs).

    Bad input raises UsageError (or SystemExit, from argparse)."""
    own = config.build_parser()
    mine, passed = config.split_arguments(argv, own, build_zferry_parser())
    args = own.parse_args(mine)
    fleet = config.build_fleet_config(args, passed)
    settings = config.build_run_settings(args)
    if not fleet.verbs:
        raise UsageError("nothing to do: add a verb such as --create-src-snapshots or --replicate (see --help)")
    jobs = subjobs.generate(fleet)
    if settings.jitter:
        (rng or random.Random()).shuffle(jobs)  # noqa: S311  # nosec B311: an order, not a secret
    return jobs, settings, passed


def run_jobs(
    jobs: Sequence[SubJob], prepared: Mapping[str, runner.Prepared], settings: config.RunSettings, passed: Sequence[str]
) -> int:
    """Run the checked sub-jobs; print the monitoring reports and the summary; return the worst status."""
    zferry_args = parse_arguments(list(passed))
    setup_logging(zferry_args.verbose, zferry_args.quiet, logs.settings_from_args(zferry_args), settings.job_id)
    for handler in log.handlers:
        handler.addFilter(runner.NameFilter())
    log.debug("zferry-jobrunner %s, %d sub-jobs, %d workers", __version__, len(jobs), settings.workers)
    master = Runner()  # its cancel token is every sub-job's: a signal stops them all
    signals = SignalStop(master) if threading.current_thread() is threading.main_thread() else None
    outputs: dict[str, list[str]] = {job.name: [] for job in jobs}
    shared = connections.SharedConnections(master.cancel)  # one ssh master per host for all sub-jobs

    def task(name: str) -> int:
        with runner.named(name):
            log.info("started")
        status = runner.run(prepared[name], master.cancel, outputs[name], shared)
        with runner.named(name):
            log.info("finished with exit status %d", status)
        return status

    try:
        pace = scheduler.Pace(settings.workers, settings.work_period_seconds)
        begin = time.time()
        results = scheduler.run_tasks([job.name for job in jobs], task, pace, master.cancel)
    finally:
        shared.close()
        if signals is not None:
            signals.close()
    for job in jobs:
        for text in outputs[job.name]:
            sys.stdout.write("".join(f"{job.name}: {line}\n" for line in text.splitlines()))
    worst = scheduler.worst_exit_code(results)
    log.log(logging.INFO if worst == 0 else logging.WARNING, "summary:\n%s", summary(results, begin))
    return 128 + master.stop_signal if master.stop_signal else worst


def emit_systemd(argv: Sequence[str], settings: config.RunSettings) -> int:
    """Write the timer, service, logrotate and cron files for this (checked) command line."""
    arguments = systemd.service_command(systemd.drop_options(argv, config.SYSTEMD_OPTIONS))
    name = f"zferry-{settings.job_id}"
    command = (sys.executable, "-m", "zferry.cli.jobrunner", *arguments)
    schedule = systemd.Schedule(name, command, settings.on_calendar, settings.systemd_user)
    folder = settings.emit_systemd or "."
    try:
        os.makedirs(folder, exist_ok=True)
        for file_name, text in systemd.files(schedule).items():
            path = os.path.join(folder, file_name)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            print(path)
    except OSError as error:
        raise UsageError(f"--emit-systemd: cannot write to {folder!r}: {error.strerror}") from None
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run zferry-jobrunner with `argv` (default: the process arguments); return the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        jobs, settings, passed = plan_jobs(words)
        prepared = {job.name: runner.prepare(job.name, job.argv) for job in jobs}  # exit 2 before anything runs
        if settings.emit_systemd is not None:
            return emit_systemd(words, settings)
        if settings.jobrunner_dryrun:
            for job in jobs:
                print(command_line(job))
            return 0
        return run_jobs(jobs, prepared, settings, passed)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error it printed (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    except UsageError as error:
        print(f"zferry-jobrunner: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        logs.close_files(log)


if __name__ == "__main__":
    sys.exit(main())
