"""The engine: a job configuration in, a report out. Every front end (CLI, jobrunner, server, DR) calls `run`.

The engine never parses argv, prints, exits or reads the environment. It logs through the
`zferry` logger (front ends choose the handlers), reports structured progress through the
`events` callback, and stops when the `cancel` token is set: it starts nothing more, terminates
what runs, and returns (or raises `Interrupted`) with what is left.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Callable, Optional, TextIO

from zferry.destructive import record_lock_takeover
from zferry.endpoints import Connector
from zferry.errors import EXIT_ERROR, EXIT_OK, LockedError
from zferry.exec.runner import Runner
from zferry.exec.ssh import SshConnections, SshSettings
from zferry.lifecycle.config import DUMMY, LifecycleConfig
from zferry.lifecycle.pair_job import LifecycleReport, run_pair
from zferry.lock import DestinationLocks
from zferry.model import Endpoint
from zferry.observe import metrics_job
from zferry.observe.audit import AuditLog, Origin
from zferry.observe.progress import TransferProgress
from zferry.replicate import PairReplication, PairReport, ReplicationConfig

if TYPE_CHECKING:
    from zferry.inventory import Side
    from zferry.observe.compare import CompareReport
    from zferry.observe.monitor import MonitorConfig, MonitorReport

log = logging.getLogger("zferry")
Pair = tuple[Endpoint, Endpoint]


@dataclass(frozen=True)
class ExecutionSettings:
    """How commands run: environment, time limits, locks, privilege elevation."""

    env: Optional[dict[str, str]] = None  # None: this process's environment
    timeout: Optional[float] = None  # per command or transfer; None: no limit
    stall_timeout: Optional[float] = None  # a transfer whose byte count stands still this long is retried
    lock_dir: Optional[str] = None  # None: /run/zferry (root) or $XDG_RUNTIME_DIR/zferry
    lock_wait: float = 0.0
    privilege_elevation: bool = True
    sudo: str = "sudo"
    audit_log: Optional[str] = None  # the audit trail's file (None: nothing recorded); see observe/audit.py
    metrics_file: Optional[str] = None  # Prometheus text written after each run (observe/metrics_job.py)


@dataclass(frozen=True)
class JobConfig:
    """Everything one job does: which pairs, how to replicate, which lifecycle steps, how to run."""

    pairs: tuple[Pair, ...]
    replication: ReplicationConfig = ReplicationConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    ssh: SshSettings = SshSettings()
    execution: ExecutionSettings = ExecutionSettings()
    job_name: str = ""  # "" : default_job_name(pairs)

    @property
    def name(self) -> str:
        """The job's name: given, or a short hash of its pairs (log files, audit records, metric labels)."""
        return self.job_name or default_job_name(self.pairs)


@dataclass(frozen=True)
class Event:
    """Something a front end may want to show or store: a pair started or finished."""

    kind: str  # "pair_started" | "pair_finished" | "transfer_progress" (data["progress"]: a TransferProgress)
    message: str = ""
    pair: Optional[tuple[str, str]] = None
    data: Mapping[str, object] = field(default_factory=dict)


Events = Callable[[Event], None]


@dataclass
class PairResult:
    """What one root pair's run did."""

    src: str
    dst: str
    replication: Optional[PairReport]
    lifecycle: LifecycleReport
    started: float
    finished: float
    lag_seconds: Optional[float] = None  # filled in when metrics are written (observe/metrics_job.py)

    @property
    def ok(self) -> bool:
        return (self.replication is None or self.replication.ok) and not self.lifecycle.failed

    @property
    def snapshots_sent(self) -> int:
        return self.replication.snapshots_sent if self.replication else 0

    @property
    def datasets_failed(self) -> int:
        return (len(self.replication.failed) if self.replication else 0) + len(self.lifecycle.failed)


@dataclass
class JobReport:
    """What a job's run did, pair by pair; `exit_code` is 0 when every pair succeeded."""

    job_name: str
    started: float
    finished: float = 0.0
    pairs: list[PairResult] = field(default_factory=list)
    audit_error: Optional[str] = None  # the audit log could not be written (its actions were not run)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if all(p.ok for p in self.pairs) and self.audit_error is None else EXIT_ERROR


def default_job_name(pairs: Sequence[Pair]) -> str:
    """A short stable name for a set of pairs: 'job-' and 8 hex digits of their normalised text."""
    text = "\n".join(f"{src}\t{dst}" for src, dst in pairs)
    return "job-" + hashlib.sha256(text.encode()).hexdigest()[:8]


def lock_targets(pairs: Sequence[Pair], ssh: SshSettings) -> list[tuple[Optional[str], str]]:
    """What each pair writes to, for the lock: the destination host and root (the source when DST is dummy)."""
    targets: list[tuple[Optional[str], str]] = []
    for src, dst in pairs:
        if dst.dataset == DUMMY:
            targets.append((ssh.src.host or src.host, src.dataset))
        else:
            targets.append((ssh.dst.host or dst.host, dst.dataset))
    return targets


def summarize(report: PairReport) -> str:
    """One line on a pair's replication: updated, up to date, failed, skipped, time."""
    parts = [
        f"{len(report.updated)} updated ({report.snapshots_sent} snapshots sent)",
        f"{len(report.up_to_date)} up to date",
    ]
    if report.failed:
        parts.append(f"{len(report.failed)} failed")
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped")
    return f"{report.src} -> {report.dst}: {', '.join(parts)} in {report.seconds:.1f} s"


def _ignore(event: Event) -> None:
    pass


def make_runner(config: JobConfig) -> Runner:
    """The runner a job's commands go through (dry run, environment, time limits)."""
    execution = config.execution
    dry_run = config.replication.dryrun is not None
    return Runner(
        dry_run=dry_run,
        env=execution.env,
        timeout=execution.timeout,
        stall_timeout=execution.stall_timeout,
        audit=AuditLog(execution.audit_log, Origin.current(config.name))
        if execution.audit_log and not dry_run
        else None,
    )


def run(
    config: JobConfig,
    events: Optional[Events] = None,
    cancel: Optional[threading.Event] = None,
    runner: Optional[Runner] = None,
    connections: Optional[SshConnections] = None,
) -> JobReport:
    """Run every pair of `config` in turn and report; raises Interrupted once `cancel` stopped it.

    `runner` lets a front end that must reach the running children (the CLI's signal handling)
    build it first with `make_runner`; setting `cancel` has the same effect as `runner.stop()`.
    `connections`: ssh masters shared with other jobs (the jobrunner's), left open at the end.
    """
    with Session(config, runner, connections) as session:
        return session.run_once(events, cancel)


class Session:
    """What one job keeps from run to run (daemon mode): the runner, the ssh master connections,
    the hosts' capability probes, the lag's creation times. `with Session(config) as s: s.run_once()`.

    A run leaves the runner usable: only a stop (`runner.stop()`, a signal, `cancel`) ends the
    session for good. Closing it terminates what still runs and the ssh masters.
    """

    def __init__(
        self, config: JobConfig, runner: Optional[Runner] = None, connections: Optional[SshConnections] = None
    ) -> None:
        self.config = config
        self.runner = runner or make_runner(config)
        self.creations: dict[int, int] = {}  # snapshot GUID -> creation time, for the lag metric
        self._shared = connections  # its owner closes it (and it starts a dead master anew itself)
        self._connect()

    def _connect(self) -> None:
        self.connections = self._shared or SshConnections(self.config.ssh, self.runner.env, self.runner.cancel)
        execution, replication = self.config.execution, self.config.replication
        self.connector = Connector(
            self.runner,
            self.connections,
            execution.privilege_elevation,
            execution.sudo,
            replication.stream.programs(),
            replication.retry,
        )

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Terminate what still runs, stop the ssh masters, remove their sockets."""
        self.runner.terminate_all()
        if self._shared is None:
            self.connections.close()

    def run_once(self, events: Optional[Events] = None, cancel: Optional[threading.Event] = None) -> JobReport:
        """One run of the job, reusing the session's connections and probes; see `run`."""
        config, runner = self.config, self.runner
        if (
            self._shared is None and not self.connections.alive()
        ):  # a master died (network, remote reboot): connect and probe anew
            self.connections.close()
            self._connect()
        tracker = metrics_job.StartedPairs(events or _ignore)
        watcher = CancelWatcher(cancel, runner) if cancel is not None else None
        if cancel is not None and cancel.is_set():
            runner.stop()  # cancelled before it started: run nothing
        report = JobReport(config.name, time.time())
        targets = [] if config.replication.dryrun else lock_targets(config.pairs, config.ssh)  # only writers lock
        try:
            takeover = partial(record_lock_takeover, runner.audit)
            with DestinationLocks(
                targets, config.execution.lock_dir, config.execution.lock_wait, runner.cancel, takeover
            ):
                _run_pairs(runner, self.connector, config, tracker, report)
        except LockedError:
            runner.check_cancelled()  # a stop ended the --lock-wait
            raise
        finally:
            runner.terminate_children()  # nothing should run now; the runner stays usable for the next run
            if runner.audit is not None:
                runner.audit.close()  # a later run opens it again; a write error stays (no more destroys)
                report.audit_error = runner.audit.error
                if report.audit_error:
                    log.error(
                        "%s: no destroy, rollback, forced receive or property change ran after that",
                        report.audit_error,
                    )
            if watcher is not None:
                watcher.close()
            report.finished = time.time()
            if config.execution.metrics_file:
                metrics_job.write(config.execution.metrics_file, self, report, tracker)
        return report


def _progress_event(emit: Events, label: tuple[str, str], progress: TransferProgress) -> None:
    emit(Event("transfer_progress", progress.dataset, label, {"progress": progress}))


def _replication(
    runner: Runner,
    config: ReplicationConfig,
    connector: Connector,
    on_progress: Callable[[TransferProgress], None],
    src: Side,
    dst: Side,
) -> PairReplication:
    """A pair's replication whose transfers report their bytes as `transfer_progress` events."""
    replication = PairReplication(runner, config, src, dst, connector.local())
    replication.on_progress = on_progress
    return replication


def _run_pairs(runner: Runner, connector: Connector, config: JobConfig, emit: Events, report: JobReport) -> None:
    for src, dst in config.pairs:
        runner.check_cancelled()
        label = (str(src), str(dst))
        emit(Event("pair_started", f"{src} -> {dst}", label))
        started = time.time()
        src_side, dst_side = connector.sides(
            None if src.dataset == DUMMY else src, config.ssh.src, None if dst.dataset == DUMMY else dst, config.ssh.dst
        )
        replication, done = run_pair(
            runner,
            config.replication,
            config.lifecycle,
            src_side,
            dst_side,
            partial(_replication, runner, config.replication, connector, partial(_progress_event, emit, label)),
        )
        runner.check_cancelled()
        result = PairResult(str(src), str(dst), replication, done, started, time.time())
        report.pairs.append(result)
        if replication is not None:
            log.info("%s", summarize(replication))
        if done.summary():
            log.info("%s -> %s: %s", src, dst, done.summary())
        emit(Event("pair_finished", "ok" if result.ok else "failed", label, {"result": result}))
        if not result.ok and config.replication.skip_on_error == "fail":
            break
    runner.check_cancelled()


class CancelWatcher:
    """Turns a front end's cancel token into `runner.stop()` (which terminates what runs)."""

    def __init__(self, cancel: threading.Event, runner: Runner) -> None:
        self._cancel = cancel
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(runner,), name="zferry-cancel", daemon=True)
        self._thread.start()

    def _watch(self, runner: Runner) -> None:
        while not self._done.is_set():
            if self._cancel.wait(0.1):
                runner.stop()
                return

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=1)


def compare(
    config: JobConfig,
    out: TextIO,
    selector: str = "src+dst+all",
    cancel: Optional[threading.Event] = None,
    runner: Optional[Runner] = None,
) -> CompareReport:
    """`--compare-snapshot-lists`: TSV rows of each pair's snapshots to `out` (see `zferry.observe.compare`)."""
    from zferry.observe import compare as observe_compare  # it builds on this module

    return observe_compare.compare(config, out, selector, cancel, runner)


def monitor(
    config: JobConfig,
    plan: MonitorConfig,
    cancel: Optional[threading.Event] = None,
    runner: Optional[Runner] = None,
    connections: Optional[SshConnections] = None,
) -> MonitorReport:
    """`--monitor-snapshots`: Nagios-style check of snapshot ages (see `zferry.observe.monitor`)."""
    from zferry.observe import monitor as observe_monitor  # it builds on this module

    return observe_monitor.monitor(config, plan, cancel, runner, connections)
