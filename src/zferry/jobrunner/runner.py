"""One sub-job in-process: zferry's own argument parsing and job building, then the engine.

`prepare` parses and checks a sub-job's argv exactly as the `zferry` command does, so every sub-job
is checked before any of them runs. `run` calls the engine and turns whatever happens into an exit
status, logged with the sub-job's name (`SUBJOB`, which `NameFilter` puts in front of each message).
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import logging
import threading
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Optional

from zferry import engine
from zferry.cli.daemon_options import build_daemon_settings
from zferry.cli.main import build_job_config, parse_arguments
from zferry.cli.observe_options import build_monitor_config, read_only_mode
from zferry.engine import JobConfig
from zferry.errors import EXIT_ERROR, UsageError, ZferryError
from zferry.exec.ssh import SshConnections
from zferry.jobrunner.connections import SharedConnections
from zferry.observe.monitor import UNKNOWN, MonitorConfig

log = logging.getLogger("zferry")
SUBJOB: contextvars.ContextVar[str] = contextvars.ContextVar("zferry_subjob", default="")


@dataclass(frozen=True)
class Prepared:
    """A sub-job ready to run: its job configuration, and the monitoring plan in monitor mode."""

    name: str
    job: JobConfig
    monitor: Optional[MonitorConfig] = None


def prepare(name: str, argv: Sequence[str]) -> Prepared:
    """Parse and check `argv` with zferry's parser and job builder; a problem is a UsageError naming the sub-job."""
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):  # argparse prints its complaint and exits
            args = parse_arguments(list(argv))
        mode = read_only_mode(args)
        if mode == "compare":
            raise UsageError("--compare-snapshot-lists is not a sub-job; run zferry for it")
        monitor = build_monitor_config(args) if mode == "monitor" else None
        job = build_job_config(args)
        if build_daemon_settings(args) is not None:
            raise UsageError("--daemon-lifetime does not go with the jobrunner; schedule the jobrunner instead")
    except SystemExit:
        lines = [line for line in usage.getvalue().splitlines() if line.strip()]
        raise UsageError(f"sub-job {name}: {lines[-1] if lines else 'bad arguments'}") from None
    except UsageError as error:
        raise UsageError(f"sub-job {name}: {error}") from None
    return Prepared(name, job, monitor)


@contextlib.contextmanager
def named(name: str) -> Iterator[None]:
    """Log records made in this context (and in the engine's worker threads it starts) carry `name`."""
    token = SUBJOB.set(name)
    try:
        yield
    finally:
        SUBJOB.reset(token)


def run(prepared: Prepared, cancel: threading.Event, out: list[str], shared: Optional[SharedConnections] = None) -> int:
    """Run one sub-job through the engine; return its exit status. A monitor's report goes to `out`.

    `shared`: the ssh master connections of the jobrunner's sub-jobs (None: the sub-job's own)."""
    with named(prepared.name):
        try:
            return _run(prepared, cancel, out, shared.get(prepared.job) if shared is not None else None)
        except ZferryError as error:
            if prepared.monitor is not None:
                out.append(f"ZFERRY UNKNOWN - {' '.join(str(error).split())}\n")
                return UNKNOWN
            log.error("error: %s (exit status %d)", error, error.exit_code)
            return error.exit_code
        except Exception:  # a bug: the other sub-jobs go on, and the traceback is logged
            log.critical("crashed:\n%s", traceback.format_exc())
            return EXIT_ERROR


def _run(prepared: Prepared, cancel: threading.Event, out: list[str], connections: Optional[SshConnections]) -> int:
    job = prepared.job
    runner = engine.make_runner(job)
    if prepared.monitor is not None:
        report = engine.monitor(job, prepared.monitor, cancel, runner, connections)
        out.append(report.text)
        return report.exit_code
    return engine.run(job, cancel=cancel, runner=runner, connections=connections).exit_code


class NameFilter(logging.Filter):
    """Puts the running sub-job's name in front of each message (and in `record.subjob`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = SUBJOB.get()
        if name and not getattr(record, "subjob", ""):
            record.subjob = name
            record.msg = f"[{name}] {record.getMessage()}"
            record.args = None
        return True
