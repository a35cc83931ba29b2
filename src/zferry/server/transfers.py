"""send and receive as tasks, through zferry's runner: `zfs send` into a file or the HTTP response,
`zfs receive` from a file or the HTTP request body.

Files live on the server's machine (under --export-dir / --import-dir); the zfs commands run on
the managed host, the stream passing over its ssh connection. The runner's `sink`/`source` hook
the file or a pipe to the pipeline's ends; cancelling the task stops the runner, which
terminates the whole process tree (ssh included, so the remote zfs ends too).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any, Callable, Optional

from zferry import destructive, zfs
from zferry.engine import CancelWatcher
from zferry.errors import ZferryError
from zferry.exec.runner import Runner, Stage
from zferry.model import Version
from zferry.observe import audit
from zferry.plan import guard
from zferry.server.errors import ApiError, unprocessable
from zferry.server.requests import SendRequest
from zferry.server.stream_header import StreamHeader
from zferry.server.tasks import Task, TaskStore
from zferry.server.zfshost import ZfsHost

log = logging.getLogger("zferry")
PROGRESS_SECONDS = 0.5
Counter = Callable[[], int]
FORCE_WHY = "receive with force=true (zferry-server)"


def send_argv(target: Version, base: Optional[Version], request: SendRequest, encrypted: bool) -> list[str]:
    """The `zfs send` for a request; an encrypted dataset is always sent raw. Pure."""
    extra = [
        flag
        for flag, wanted in (("-w", request.raw or encrypted), ("-c", request.compressed), ("-L", request.large_blocks))
        if wanted
    ]
    if base is None:
        return zfs.send_full(target, extra)
    return zfs.send_incremental(base, target, False, extra)


def refuse_forced_encrypted(target_encrypted: bool, header: Optional[StreamHeader]) -> None:
    """A receive with force into or from an encrypted dataset is refused (422). Pure."""
    if target_encrypted:
        raise unprocessable(
            "receive with force into an encrypted dataset is refused: -F could destroy its snapshots and keys",
            "receive without force, into a new dataset, or roll the target back yourself",
        )
    if header is not None and header.raw:
        raise unprocessable(
            f"receive with force of an encrypted (raw) stream of {header.toname} is refused",
            "receive it without force, into a new dataset",
        )


@contextmanager
def watched(task: Task, runner: Runner) -> Iterator[None]:
    """While the block runs, cancelling the task stops `runner` (it terminates its process trees)."""
    watcher = CancelWatcher(task.cancel, runner)
    try:
        yield
    finally:
        watcher.close()


@contextmanager
def polling(store: TaskStore, task: Task, count: Optional[Counter]) -> Iterator[None]:
    """Report `count()` bytes as the task's progress every PROGRESS_SECONDS until the block ends."""
    if count is None:
        yield
        return
    done = threading.Event()

    def poll() -> None:
        assert count is not None
        while not done.wait(PROGRESS_SECONDS):
            store.progress(task, count())

    thread = threading.Thread(target=poll, name=f"zferry-progress-{task.id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        store.progress(task, count())


class Transfers:
    """The send and receive work of tasks on the managed host."""

    def __init__(self, zfs_host: ZfsHost, store: TaskStore) -> None:
        self.zfs_host = zfs_host
        self.store = store

    def estimate(self, task: Task, send: Sequence[str]) -> Optional[int]:
        size = self.zfs_host.send_size(send)
        self.store.expect(task, size)
        return size

    def estimate_aside(self, task: Task, send: Sequence[str]) -> None:
        """The size estimate (`bytes_total`) in a thread of its own: the stream need not wait for it."""

        def estimate() -> None:
            try:
                self.estimate(task, send)
            except ZferryError as error:
                log.info("task %s: no size estimate: %s", task.id, error)

        threading.Thread(target=estimate, name=f"zferry-estimate-{task.id[:8]}", daemon=True).start()

    def send_to_file(self, task: Task, send: Sequence[str], fd: int, path: str, shown: Optional[str]) -> dict[str, Any]:
        """`zfs send > file`; a failed or cancelled send leaves no file behind."""
        runner = self.zfs_host.task_runner("zferry-server")
        try:
            with os.fdopen(fd, "wb") as sink, watched(task, runner):
                self.estimate_aside(task, send)
                with polling(self.store, task, lambda: os.fstat(sink.fileno()).st_size):
                    runner.pipeline([Stage(self.zfs_host.host, tuple(send))], classify=zfs.classify_error, sink=sink)
        except BaseException:
            os.unlink(path)
            raise
        return {"output_path": shown, "bytes": task.bytes_done}

    def send_to_pipe(self, task: Task, send: Sequence[str], writer: IO[bytes]) -> dict[str, Any]:
        """`zfs send` into `writer` (the HTTP response reads the other end); closes it at the end."""
        runner = self.zfs_host.task_runner("zferry-server")
        with writer, watched(task, runner):
            self.estimate_aside(task, send)
            runner.pipeline([Stage(self.zfs_host.host, tuple(send))], classify=zfs.classify_error, sink=writer)
        return {"bytes": task.bytes_done}

    def dry_send(self, task: Task, send: Sequence[str]) -> dict[str, Any]:
        return {"dry_run": True, "size": self.estimate(task, send)}

    def receive(
        self,
        task: Task,
        dataset: str,
        force: bool,
        dry_run: bool,
        source: IO[bytes],
        count: Optional[Counter] = None,
        resumable: bool = True,
    ) -> dict[str, Any]:
        """`zfs receive -u -s [-F] [-n] dataset < source`; a forced one through the destroy guard and audit log.

        `count`: how many bytes of `source` were read so far (polled for progress; None: the caller reports it).
        `resumable`: False leaves nothing behind when it fails (a file can simply be received again)."""
        runner = self.zfs_host.task_runner("zferry-server")
        host = self.zfs_host.host
        argv = zfs.receive(dataset, force=force, resumable=resumable and not dry_run, dry_run=dry_run)
        stages = [Stage(host, tuple(argv))]
        with watched(task, runner), polling(self.store, task, count):
            if not force:
                runner.pipeline(stages, classify=zfs.classify_error, source=source)
                return {"dataset": dataset, "dry_run": dry_run}
            facts = guard.Facts(asked=True, selected=True, data_allowed=True, holds_data=True)
            destruction = guard.Destruction(guard.Action.FORCED_RECEIVE, dataset, FORCE_WHY, facts)
            decision = destructive.check(runner, host, destruction)
            if not decision.allowed:
                raise ApiError(409, decision.message(), "nothing was received")
            intent = audit.Intent(audit.FORCED_RECEIVE, host.label, (dataset,), FORCE_WHY, tuple(argv))
            destructive.pipeline(runner, stages, intent, run_anyway=True, source=source)
        return {"dataset": dataset, "dry_run": dry_run, "forced": True}
