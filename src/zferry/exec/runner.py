"""Runs processes: single commands and streaming pipelines, with dry run and cleanup.

No shell is used locally. Every child gets its own process group so that an error or a
signal can terminate whole pipelines, including what ssh started on the far side (ssh
ends its remote command when its connection closes). On Linux every child also gets
PR_SET_PDEATHSIG, so that it dies with zferry even after a kill -9.

Stopping is a `threading.Event` (`Runner.cancel`): a signal handler only wakes a watcher thread
(`zferry.exec.signals.SignalStop`), which sets it and terminates the children; no lock is taken in a handler.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Callable, Optional

from zferry.errors import CommandError, Interrupted
from zferry.exec.host import STAGE_FAILED, Host
from zferry.exec.iocount import Sampler, WriteMeter

if TYPE_CHECKING:
    from zferry.observe.audit import AuditLog

log = logging.getLogger("zferry")

ErrorClassifier = Callable[[list[str], int, str], CommandError]
KILL_GRACE_SECONDS = 1.0  # SIGTERM first; what still runs after this gets SIGKILL
_PR_SET_PDEATHSIG = 1


def _default_classifier(argv: list[str], returncode: int, stderr: str) -> CommandError:
    text = stderr.strip() or f"exit status {returncode}"
    return CommandError(f"{shlex.join(argv[:3])} failed: {text}", argv, returncode, stderr)


@dataclass(frozen=True)
class Stage:
    """One command of a pipeline and the host it runs on.

    `on_progress`, for a stage that prints a byte count per line on stderr (`pv -n -b`; here, or
    among a remote host's stages), receives each count instead of the stage's error output.
    `write_meter`, for a local stage run directly (no sudo), reports the bytes its process wrote,
    from the kernel's counter (`exec.iocount`).
    """

    host: Host
    argv: tuple[str, ...]
    on_progress: Optional[Callable[[int], None]] = field(default=None, compare=False)
    write_meter: Optional[WriteMeter] = field(default=None, compare=False)


@dataclass
class StageResult:
    label: str
    argv: list[str]
    returncode: int
    stderr: str


def _death_signal_setter(signum: int) -> Optional[Callable[[], None]]:
    """A preexec function asking the kernel to send `signum` to the child when its creating thread ends."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)

    return set_death_signal


def spawn(argv: Sequence[str], death_signal: int = signal.SIGKILL, **popen: Any) -> subprocess.Popen[bytes]:
    """Start `argv` in a session of its own, to die with the thread that starts it (Linux)."""
    return subprocess.Popen(list(argv), start_new_session=True, preexec_fn=_death_signal_setter(death_signal), **popen)


def kill_group(proc: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> None:
    """Send `signum` to the child's process group, and SIGCONT so that a stopped member gets it."""
    try:
        os.killpg(proc.pid, signum)
        os.killpg(proc.pid, signal.SIGCONT)
    except (ProcessLookupError, PermissionError):
        pass


def terminate_groups(procs: Sequence[subprocess.Popen[bytes]], grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGTERM every group; SIGKILL the groups whose leader has not been reaped after `grace` seconds."""
    for proc in procs:
        kill_group(proc)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.02)
    for proc in procs:
        if proc.poll() is None:
            kill_group(proc, signal.SIGKILL)


class _StallWatch:
    """The byte counts a pipeline's meters report, and when they last moved."""

    def __init__(self) -> None:
        self.moved = time.monotonic()
        self._counts: dict[int, int] = {}

    def wrap(self, index: int, callback: Callable[[int], None]) -> Callable[[int], None]:
        def counted(count: int) -> None:
            if self._counts.get(index) != count:
                self._counts[index] = count
                self.moved = time.monotonic()
            callback(count)

        return counted


class Runner:
    """Starts children, tracks them, and terminates them all on request.

    With `dry_run`, commands marked as changing something are logged and not run. `stall_timeout`
    kills a metered pipeline whose byte count has not moved for that many seconds.
    """

    def __init__(
        self,
        dry_run: bool = False,
        env: Optional[dict[str, str]] = None,
        timeout: Optional[float] = None,
        stall_timeout: Optional[float] = None,
        audit: Optional[AuditLog] = None,
    ) -> None:
        self.dry_run = dry_run
        self.audit = audit  # where zferry.destructive records what it runs (None: unrecorded)
        self.env = env
        self.timeout = timeout
        self.stall_timeout = stall_timeout
        self.cancel = threading.Event()
        self.stop_signal: Optional[int] = None
        self._children: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    # -- single commands --------------------------------------------------------------------

    def run(
        self,
        host: Host,
        argv: Sequence[str],
        *,
        changes: bool = False,
        classify: ErrorClassifier = _default_classifier,
        stdin_data: Optional[bytes] = None,
    ) -> str:
        """Run `argv` on `host`; return its stdout. Raise a classified error if it fails."""
        full = host.command(argv)
        shown = describe([Stage(host, tuple(argv))])
        if changes and self.dry_run:
            log.info("dry run, not running: %s", shown)
            return ""
        log.debug("run: %s", shown)
        proc = self._start(
            full,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        try:
            out, err = self._communicate(proc, stdin_data)
        finally:
            self._forget(proc)
        self.check_cancelled()
        if out is None:
            raise CommandError(f"timed out after {self.timeout} s: {shown}", list(argv))
        if proc.returncode != 0:
            error = classify(list(argv), proc.returncode, err.decode(errors="replace"))
            error.transport_failure = proc.returncode == 255 and not host.is_local
            raise error
        return out.decode(errors="replace")

    def _communicate(self, proc: subprocess.Popen[bytes], stdin_data: Optional[bytes]) -> tuple[Optional[bytes], bytes]:
        """Output and error output; (None, b"") once killed for the timeout or a stop.

        A killed ssh client's pipes may stay open a while (its master holds them until the remote
        command ends), so after a kill we do not wait for their end.
        """
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        data = stdin_data
        while True:
            try:
                out, err = proc.communicate(data, timeout=0.25)
                return out, err
            except subprocess.TimeoutExpired:
                data = None  # given once; communicate() keeps feeding it
            if self.cancel.is_set() or (deadline is not None and time.monotonic() > deadline):
                terminate_groups([proc])
                proc.wait()
                return None, b""

    def lines(
        self, host: Host, argv: Sequence[str], *, classify: ErrorClassifier = _default_classifier
    ) -> Iterator[str]:
        """Run a read-only `argv` on `host` and yield its output line by line (without the line end).

        Memory stays at one line whatever the output's size. The command's failure is raised after
        its last line; a consumer that stops early terminates it.
        """
        shown = describe([Stage(host, tuple(argv))])
        log.debug("run: %s", shown)
        proc = self._start(host.command(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        errors: list[bytes] = []
        assert proc.stdout is not None and proc.stderr is not None
        reader = threading.Thread(target=_drain, args=(proc.stderr, errors), daemon=True)
        reader.start()
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            terminate_groups([proc])

        timer = threading.Timer(self.timeout, expire) if self.timeout else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            for raw in proc.stdout:
                yield raw.decode(errors="replace").rstrip("\n")
            proc.wait()
            reader.join(timeout=10)
        finally:
            if timer is not None:
                timer.cancel()
            if proc.poll() is None:
                terminate_groups([proc])
                proc.wait()
            proc.stdout.close()
            self._forget(proc)
        self.check_cancelled()
        if expired.is_set():
            raise CommandError(f"timed out after {self.timeout} s: {shown}", list(argv))
        if proc.returncode != 0:
            error = classify(list(argv), proc.returncode, b"".join(errors).decode(errors="replace"))
            error.transport_failure = proc.returncode == 255 and not host.is_local
            raise error

    # -- pipelines ----------------------------------------------------------------------------

    def pipeline(
        self,
        stages: Sequence[Stage],
        *,
        classify: ErrorClassifier = _default_classifier,
        run_anyway: bool = False,
        source: Optional[IO[bytes]] = None,
        sink: Optional[IO[bytes]] = None,
    ) -> None:
        """Run a streaming pipeline; on any stage failing, stop the rest and raise with each stage's story.

        `run_anyway` runs it even in dry-run mode (for pipelines that end in `zfs receive -n`).
        `source` feeds the first stage and `sink` takes the last one's output (the server's streams;
        default: nothing in, output discarded); the caller keeps and closes them.
        """
        shown = describe(stages)
        if self.dry_run and not run_anyway:
            log.info("dry run, not running: %s", shown)
            return
        log.debug("pipeline: %s", shown)
        groups = group_by_host(stages)
        procs: list[subprocess.Popen[bytes]] = []
        readers: list[threading.Thread] = []
        errors: list[list[bytes]] = []
        previous: Optional[IO[bytes]] = None
        watch = _StallWatch()
        meters = _progress_callbacks(stages, groups)
        samplers: dict[int, Sampler] = {}
        try:
            for index, (host, argvs) in enumerate(groups):
                last = index == len(groups) - 1
                proc = self._start(
                    host.pipeline(argvs),
                    stdin=previous or (source if index == 0 and source else subprocess.DEVNULL),
                    stdout=(sink or subprocess.DEVNULL) if last else subprocess.PIPE,
                )
                if previous is not None:
                    previous.close()  # the child holds its own copy; ours would keep the pipe open
                previous = proc.stdout
                procs.append(proc)
                buffer: list[bytes] = []
                errors.append(buffer)
                assert proc.stderr is not None
                callback = meters[index]
                if callback is None:
                    reader = threading.Thread(target=_drain, args=(proc.stderr, buffer), daemon=True)
                else:
                    follow_args = (proc.stderr, buffer, watch.wrap(index, callback))
                    reader = threading.Thread(target=_follow, args=follow_args, daemon=True)
                reader.start()
                readers.append(reader)
                if len(argvs) == 1 and host.is_local:
                    samplers.update(_sampler(stages, host, argvs[0], proc, index, watch))
            stalled = self._wait_all(procs, watch if any(meters) or samplers else None, samplers)
            for reader in readers:  # after a kill, not long: an ssh master may hold the pipes a while
                reader.join(timeout=0.5 if stalled or self.cancel.is_set() else 10)
        finally:
            if any(proc.poll() is None for proc in procs):
                terminate_groups(procs)
            for proc in procs:
                self._forget(proc)
        self.check_cancelled()
        results = [
            _stage_result(host, argvs, proc.returncode, b"".join(buf).decode(errors="replace"))
            for (host, argvs), proc, buf in zip(groups, procs, errors)
        ]
        if stalled:
            raise _stall_error(self.stall_timeout, results)
        failed = [r for r in results if r.returncode != 0]
        if failed:
            raise _pipeline_error(failed, results, classify)

    def _wait_all(
        self, procs: list[subprocess.Popen[bytes]], watch: Optional[_StallWatch], samplers: dict[int, Sampler]
    ) -> bool:
        """Wait for every process; True if the pipeline was killed because its byte count stalled.

        When the receiving end fails, the sender blocks on a full pipe or dies of SIGPIPE: wait
        for the last process first, and terminate the rest once one has failed. A sampled process
        gets its last sample before it is reaped: what it wrote is final once the stages after it ended.
        """
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        stalled = False
        for index in reversed(range(len(procs))):
            proc = procs[index]
            if index in samplers:
                samplers[index].sample()
            while proc.returncode is None:
                try:
                    proc.wait(timeout=0.25)
                except subprocess.TimeoutExpired:
                    for sampler in samplers.values():
                        sampler.poll()
                    now = time.monotonic()
                    if watch is not None and self.stall_timeout and now - watch.moved > self.stall_timeout:
                        stalled = True
                    if stalled or (deadline is not None and now > deadline):
                        terminate_groups(procs)
            if proc.returncode != 0 and any(other.poll() is None for other in procs):
                terminate_groups(procs)
        return stalled

    # -- process bookkeeping --------------------------------------------------------------------

    def _start(self, argv: list[str], stdin: int | IO[bytes], stdout: int | IO[bytes]) -> subprocess.Popen[bytes]:
        with self._lock:
            self.check_cancelled()
            proc = spawn(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=self.env)
            self._children.add(proc)
        return proc

    def _forget(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._children.discard(proc)

    def check_cancelled(self) -> None:
        """Raise Interrupted once a stop was requested."""
        if self.cancel.is_set():
            name = signal.Signals(self.stop_signal).name if self.stop_signal else "request"
            raise Interrupted(f"stopped by {name}; running commands were terminated", self.stop_signal or 2)

    def stop(self, signum: Optional[int] = None) -> None:
        """Start nothing more and terminate every running child's process group (never from a signal handler)."""
        if self.stop_signal is None:
            self.stop_signal = signum
        self.cancel.set()
        with self._lock:
            children = list(self._children)
        terminate_groups(children)

    def terminate_children(self) -> None:
        """Terminate every running child's process group, leaving the runner usable (between daemon ticks)."""
        with self._lock:
            children = list(self._children)
        terminate_groups(children)

    def terminate_all(self) -> None:
        """Stop starting commands and terminate every running child's process group."""
        self.stop()


def _stage_result(host: Host, argvs: list[list[str]], returncode: int, stderr: str) -> StageResult:
    """One group's result; a remote stage that failed mid-pipeline (see Host.pipeline) is named."""
    marker = re.search(rf"{STAGE_FAILED} (\d+) (\d+)", stderr)
    if marker and int(marker.group(2)) < len(argvs):
        failed = argvs[int(marker.group(2))]
        clean = re.sub(rf"{STAGE_FAILED} \d+ \d+\n?", "", stderr)
        return StageResult(host.label, failed, int(marker.group(1)) or 1, clean)
    return StageResult(host.label, [w for s in argvs for w in (*s, "|")][:-1], returncode, stderr)


def _drain(stream: IO[bytes], into: list[bytes]) -> None:
    for chunk in iter(lambda: stream.read(65536), b""):
        into.append(chunk)
    stream.close()


def _follow(stream: IO[bytes], into: list[bytes], callback: Callable[[int], None]) -> None:
    """Feed `pv -n -b` byte counts to `callback`; keep any other text as error output."""
    for raw in iter(stream.readline, b""):
        text = raw.strip()
        if text.isdigit():
            callback(int(text))
        else:
            into.append(raw)
    stream.close()


def _progress_callbacks(
    stages: Sequence[Stage], groups: list[tuple[Host, list[list[str]]]]
) -> list[Optional[Callable[[int], None]]]:
    """The progress callback of each group: its metered stage's (a remote group's error output
    carries its `pv -n -b` counts among the other stages' text)."""
    by_argv = {(s.host, s.argv): s.on_progress for s in stages if s.on_progress is not None}
    out: list[Optional[Callable[[int], None]]] = []
    for host, argvs in groups:
        out.append(next((by_argv[(host, tuple(a))] for a in argvs if (host, tuple(a)) in by_argv), None))
    return out


def _sampler(
    stages: Sequence[Stage], host: Host, argv: list[str], proc: subprocess.Popen[bytes], index: int, watch: _StallWatch
) -> dict[int, Sampler]:
    """The write counter sampler of a single local stage that asks for one (`Stage.write_meter`)."""
    meter = next((s.write_meter for s in stages if s.host == host and list(s.argv) == argv and s.write_meter), None)
    return {} if meter is None else {index: Sampler(proc, meter.interval, watch.wrap(index, meter.callback))}


def group_by_host(stages: Sequence[Stage]) -> list[tuple[Host, list[list[str]]]]:
    """Consecutive stages on one remote host become one ssh process; local stages stay separate."""
    groups: list[tuple[Host, list[list[str]]]] = []
    for stage in stages:
        if groups and not stage.host.is_local and groups[-1][0] == stage.host:
            groups[-1][1].append(list(stage.argv))
        else:
            groups.append((stage.host, [list(stage.argv)]))
    return groups


def describe(stages: Sequence[Stage]) -> str:
    """A copy-pasteable shell rendering of a pipeline, for logs and --dryrun."""
    return " | ".join(shlex.join(host.pipeline(argvs)) for host, argvs in group_by_host(stages))


def _stall_error(seconds: Optional[float], results: list[StageResult]) -> CommandError:
    details = "; ".join(f"[{r.label}] {shlex.join(r.argv)} -> exit {r.returncode}" for r in results)
    error = CommandError(
        f"transfer stalled: no byte moved for {seconds:g} s, so it was stopped; it resumes on the next attempt "
        f"(--stall-timeout sets the limit) (pipeline: {details})",
        results[0].argv if results else [],
    )
    error.transport_failure = True
    return error


def _pipeline_error(failed: list[StageResult], results: list[StageResult], classify: ErrorClassifier) -> CommandError:
    # Name the stage that failed for a reason of its own: a lost ssh connection (255 and ssh's own
    # message) first; then anything but the collateral damage of another stage's death (SIGPIPE/SIGTERM,
    # a meter or buffer that could not write on, an ssh that exited 255 without a word because the
    # stage after it had gone).
    def remote_255(r: StageResult) -> bool:
        return r.returncode == 255 and r.label != "local"

    def collateral(r: StageResult) -> bool:
        helper = bool(r.argv) and os.path.basename(r.argv[0]) in ("pv", "mbuffer")
        signalled = r.returncode in (-signal.SIGPIPE, 128 + signal.SIGPIPE, -signal.SIGTERM, 128 + signal.SIGTERM)
        return helper or signalled or (remote_255(r) and not r.stderr.strip())

    lost = [r for r in failed if remote_255(r) and r.stderr.strip()]
    silent_lost = [r for r in failed if remote_255(r)]  # no other stage failed for a reason of its own
    primary = (lost or [r for r in failed if not collateral(r)] or silent_lost or failed)[0]
    error = classify(primary.argv, primary.returncode, primary.stderr)
    error.transport_failure = remote_255(primary)
    details = "; ".join(f"[{r.label}] {shlex.join(r.argv)} -> exit {r.returncode}" for r in results)
    error.args = (f"{error.args[0]} (pipeline: {details})",)
    return error
