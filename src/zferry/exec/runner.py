"""Runs processes: single commands and streaming pipelines, with dry run and cleanup.

No shell is used locally. Every child gets its own process group so that an error or a
signal can terminate whole pipelines, including what ssh started on the far side (ssh
ends its remote command when its connection closes).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Callable, Optional

from zferry.errors import CommandError
from zferry.exec.host import STAGE_FAILED, Host

log = logging.getLogger("zferry")

ErrorClassifier = Callable[[list[str], int, str], CommandError]


def _default_classifier(argv: list[str], returncode: int, stderr: str) -> CommandError:
    text = stderr.strip() or f"exit status {returncode}"
    return CommandError(f"{shlex.join(argv[:3])} failed: {text}", argv, returncode, stderr)


@dataclass(frozen=True)
class Stage:
    """One command of a pipeline and the host it runs on.

    `on_progress`, for a local stage that prints a byte count per line on stderr (`pv -n -b`),
    receives each count instead of the stage's error output.
    """

    host: Host
    argv: tuple[str, ...]
    on_progress: Optional[Callable[[int], None]] = field(default=None, compare=False)


@dataclass
class StageResult:
    label: str
    argv: list[str]
    returncode: int
    stderr: str


class Runner:
    """Starts children, tracks them, and terminates them all on request.

    With `dry_run`, commands marked as changing something are logged and not run.
    """

    def __init__(
        self, dry_run: bool = False, env: Optional[dict[str, str]] = None, timeout: Optional[float] = None
    ) -> None:
        self.dry_run = dry_run
        self.env = env
        self.timeout = timeout
        self._children: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._stopping = False

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
            out, err = proc.communicate(stdin_data, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            proc.communicate()
            raise CommandError(f"timed out after {self.timeout} s: {shown}", list(argv)) from None
        finally:
            self._forget(proc)
        if proc.returncode != 0:
            error = classify(list(argv), proc.returncode, err.decode(errors="replace"))
            error.transport_failure = proc.returncode == 255 and not host.is_local
            raise error
        return out.decode(errors="replace")

    # -- pipelines ----------------------------------------------------------------------------

    def pipeline(
        self,
        stages: Sequence[Stage],
        *,
        classify: ErrorClassifier = _default_classifier,
        run_anyway: bool = False,
    ) -> None:
        """Run a streaming pipeline; on any stage failing, stop the rest and raise with each stage's story.

        `run_anyway` runs it even in dry-run mode (for pipelines that end in `zfs receive -n`).
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
        meters = _progress_callbacks(stages, groups)
        try:
            for index, (host, argvs) in enumerate(groups):
                last = index == len(groups) - 1
                proc = self._start(
                    host.pipeline(argvs),
                    stdin=previous or subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL if last else subprocess.PIPE,
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
                    reader = threading.Thread(target=_follow, args=(proc.stderr, buffer, callback), daemon=True)
                reader.start()
                readers.append(reader)
            results = self._wait_all(procs, groups, readers, errors)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    self._kill(proc)
                self._forget(proc)
        failed = [r for r in results if r.returncode != 0]
        if failed:
            raise _pipeline_error(failed, results, classify)

    def _wait_all(
        self,
        procs: list[subprocess.Popen[bytes]],
        groups: list[tuple[Host, list[list[str]]]],
        readers: list[threading.Thread],
        errors: list[list[bytes]],
    ) -> list[StageResult]:
        # When the receiving end fails, the sender blocks on a full pipe or dies of SIGPIPE;
        # wait for the last process first, and terminate the rest once one has failed.
        for proc in reversed(procs):
            try:
                proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                for other in procs:
                    self._kill(other)
                proc.wait()
            if proc.returncode != 0:
                for other in procs:
                    if other.poll() is None:
                        self._kill(other)
        for reader in readers:
            reader.join(timeout=10)
        return [
            _stage_result(host, argvs, proc.returncode, b"".join(buf).decode(errors="replace"))
            for (host, argvs), proc, buf in zip(groups, procs, errors)
        ]

    # -- process bookkeeping --------------------------------------------------------------------

    def _start(self, argv: list[str], stdin: int | IO[bytes], stdout: int) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._stopping:
                raise CommandError("stopping: not starting new commands", argv)
            proc = subprocess.Popen(
                argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=self.env, start_new_session=True
            )
            self._children.add(proc)
        return proc

    def _forget(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._children.discard(proc)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass

    def terminate_all(self) -> None:
        """Stop starting commands and terminate every running child's process group."""
        with self._lock:
            self._stopping = True
            children = list(self._children)
        for proc in children:
            self._kill(proc)
        for proc in children:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


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
    by_argv = {(s.host, s.argv): s.on_progress for s in stages if s.on_progress is not None}
    out: list[Optional[Callable[[int], None]]] = []
    for host, argvs in groups:
        out.append(by_argv.get((host, tuple(argvs[0]))) if len(argvs) == 1 else None)
    return out


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


def _pipeline_error(failed: list[StageResult], results: list[StageResult], classify: ErrorClassifier) -> CommandError:
    # Name the stage that failed for a reason of its own: a lost ssh connection (255) first; then
    # anything but the collateral damage of another stage's death (SIGPIPE/SIGTERM, or a meter or
    # buffer that could not write on).
    def collateral(r: StageResult) -> bool:
        helper = bool(r.argv) and os.path.basename(r.argv[0]) in ("pv", "mbuffer")
        return helper or r.returncode in (-signal.SIGPIPE, 128 + signal.SIGPIPE, -signal.SIGTERM, 128 + signal.SIGTERM)

    lost = [r for r in failed if r.returncode == 255 and r.label != "local"]
    primary = (lost or [r for r in failed if not collateral(r)] or failed)[0]
    error = classify(primary.argv, primary.returncode, primary.stderr)
    error.transport_failure = bool(lost)
    details = "; ".join(f"[{r.label}] {shlex.join(r.argv)} -> exit {r.returncode}" for r in results)
    error.args = (f"{error.args[0]} (pipeline: {details})",)
    return error
