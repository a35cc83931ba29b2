"""What each endpoint does, without HTTP: check the request, claim the pools, start the task.

Everything is validated (names, fields, files, pools) before a task or a process starts; a
problem is an ApiError with its status.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import time
from collections.abc import Mapping
from typing import IO, Any, Optional

from zferry.errors import DatasetNotFound
from zferry.model import Dataset, Version
from zferry.server import paths, requests
from zferry.server.errors import ApiError, bad_request, not_found
from zferry.server.replication import Replications, build_job, job_arguments, selected_snapshots, target_endpoint
from zferry.server.settings import ServerSettings
from zferry.server.stream_header import parse_header
from zferry.server.tasks import Busy, Clock, Task, TaskStore
from zferry.server.transfers import Transfers, refuse_forced_encrypted, send_argv
from zferry.server.tree_service import Trees
from zferry.server.worker import Workers
from zferry.server.zfshost import ZfsHost

CANCEL_WAIT_SECONDS = 10.0
PIPE_BYTES = 1024 * 1024
_F_SETPIPE_SZ = 1031  # Linux; fcntl names it from Python 3.10 on


def stream_pipe() -> tuple[int, int]:
    """A pipe between zfs and HTTP, with a 1 MiB buffer where the system allows it (Linux): fewer wakeups."""
    reader, writer = os.pipe()
    try:
        fcntl.fcntl(writer, _F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass  # the default 64 KiB works too
    return reader, writer


def named_version(dataset: str, tag: str) -> Version:
    """A snapshot (`@name`) or bookmark (`#name`) known by name only."""
    return Version(dataset, tag[1:], 0, 0, 0, is_bookmark=tag.startswith("#"))


class Service:
    """The server's state (tasks, the ZFS host) and its operations."""

    def __init__(self, settings: ServerSettings, clock: Clock = time.time, zfs_host: Optional[ZfsHost] = None) -> None:
        self.settings = settings
        self.store = TaskStore(clock, settings.task_ttl)
        self.workers = Workers(self.store)
        self.zfs_host = zfs_host or ZfsHost(settings)
        self.transfers = Transfers(self.zfs_host, self.store)
        self.replications = Replications(settings, self.zfs_host, self.store)
        self.trees = Trees(self, stream_pipe)

    # -- lookups ---------------------------------------------------------------------------

    def snapshot(self, dataset: str, snap: str) -> tuple[Dataset, tuple[Version, ...], Version]:
        """The dataset, its versions and the snapshot `snap`; 404 when one is missing."""
        found = self.zfs_host.dataset(dataset)
        if found is None:
            raise not_found(f"dataset {dataset} does not exist", "check the name (GET /v1/pools lists the pools)")
        versions = self.zfs_host.versions(dataset)
        return found, versions, self.version(dataset, versions, "@" + snap)

    @staticmethod
    def version(dataset: str, versions: tuple[Version, ...], tag: str) -> Version:
        found = next((v for v in versions if v.tag == tag), None)
        if found is None:
            raise not_found(f"{dataset}{tag} does not exist", "list the snapshots with zfs list -t snapshot")
        return found

    def claim(self, kind: str, pools: tuple[str, ...], request: Mapping[str, Any], pair: Any = None) -> Task:
        """A new task holding `pools`; 409 naming the task that holds one of them."""
        try:
            return self.store.create(kind, pools, request, pair)
        except Busy as busy:
            hint = f"wait until task {busy.task.id} ends (GET /v1/tasks/{busy.task.id}) or cancel it (DELETE)"
            raise ApiError(409, str(busy), hint, task=busy.task.id) from None

    # -- send ------------------------------------------------------------------------------

    def send(self, dataset: str, snap: str, body: Mapping[str, Any]) -> tuple[Task, Optional[int]]:
        """Start a send; returns the task and, for a streamed send, the fd the response reads."""
        dataset, snap = requests.dataset(dataset), requests.snapshot(snap)
        request = requests.send_request(body, dataset)
        if request.recursive:
            return self.trees.send(dataset, snap, request, body)
        target = (
            paths.confine(self.settings.export_dir, request.output_path, "--export-dir")
            if request.output_path
            else None
        )
        found, versions, version = self.snapshot(dataset, snap)
        base = self.version(dataset, versions, request.from_snapshot) if request.from_snapshot else None
        argv = send_argv(version, base, request, found.is_encrypted)
        pool = self.settings.pool_key(self.settings.endpoint(dataset))
        if request.dry_run:
            task = self.claim("send", (pool,), {**body, "dataset": dataset, "snapshot": snap})
            self.workers.launch(task, lambda t: self.transfers.dry_send(t, argv))
            return task, None
        fd = paths.open_new(target) if target is not None else None
        try:
            task = self.claim("send", (pool,), {**body, "dataset": dataset, "snapshot": snap})
        except ApiError:
            if fd is not None and target is not None:
                os.close(fd)
                os.unlink(target)
            raise
        if fd is not None and target is not None:
            file_fd, where, shown = fd, str(target), request.output_path
            self.workers.launch(task, lambda t: self.transfers.send_to_file(t, argv, file_fd, where, shown))
            return task, None
        reader, writer = stream_pipe()
        sink = os.fdopen(writer, "wb")
        self.workers.launch(task, lambda t: self.transfers.send_to_pipe(t, argv, sink))
        return task, reader

    def send_size(self, dataset: str, snap: str, query: Mapping[str, Optional[str]]) -> dict[str, Any]:
        """The estimate of a send's size in bytes (`zfs send -nP`), full or incremental."""
        dataset, snap = requests.dataset(dataset), requests.snapshot(snap)
        body: dict[str, Any] = {k: requests.flag(query.get(k), k) for k in ("raw", "compressed", "large_blocks")}
        if query.get("from_snapshot"):
            body["from_snapshot"] = query["from_snapshot"]
        request = requests.send_request(body, dataset)
        found = self.zfs_host.dataset(dataset)
        if found is None:
            raise not_found(f"dataset {dataset} does not exist", "check the name (GET /v1/pools lists the pools)")
        # zfs itself says when a snapshot is missing: one round trip less than listing them first
        version = Version(dataset, snap, 0, 0, 0)
        base = named_version(dataset, request.from_snapshot) if request.from_snapshot else None
        started = time.monotonic()
        try:
            size = self.zfs_host.send_size(send_argv(version, base, request, found.is_encrypted))
        except DatasetNotFound as error:
            raise not_found(str(error), "list the snapshots with zfs list -t snapshot") from None
        return {
            "dataset": dataset,
            "snapshot": snap,
            "from_snapshot": base.tag if base else None,
            "size": size,
            "seconds": round(time.monotonic() - started, 3),
        }

    # -- receive ---------------------------------------------------------------------------

    def _check_receive(self, dataset: str, force: bool, header: bytes) -> None:
        if not force:
            return
        existing = self.zfs_host.dataset(dataset)
        refuse_forced_encrypted(existing is not None and existing.is_encrypted, parse_header(header))

    def receive_file(self, dataset: str, body: Mapping[str, Any]) -> Task:
        """Receive a stream file from --import-dir."""
        dataset = requests.dataset(dataset)
        request = requests.receive_request(body)
        if request.input_path is None:
            raise bad_request(
                "input_path is missing", "give input_path, or send the stream as application/octet-stream"
            )
        path = paths.confine(self.settings.import_dir, request.input_path, "--import-dir")
        if path.is_dir():
            return self.trees.receive(dataset, request, path, body)
        fd = paths.open_existing(path)
        try:
            self._check_receive(dataset, request.force, os.pread(fd, 4096, 0))
            pool = self.settings.pool_key(self.settings.endpoint(dataset))
            task = self.claim("receive", (pool,), {**body, "dataset": dataset})
        except BaseException:
            os.close(fd)
            raise
        source = os.fdopen(fd, "rb")

        def work(t: Task) -> dict[str, Any]:
            with source:
                count = lambda: os.lseek(source.fileno(), 0, os.SEEK_CUR)  # noqa: E731 - the child shares the offset
                return self.transfers.receive(t, dataset, request.force, request.dry_run, source, count)

        self.workers.launch(task, work)
        return task

    def receive_stream(self, dataset: str, force: bool, dry_run: bool, header: bytes) -> tuple[Task, IO[bytes]]:
        """Start a receive fed from the request body; returns the task and the pipe to write the body into."""
        dataset = requests.dataset(dataset)
        self._check_receive(dataset, force, header)
        pool = self.settings.pool_key(self.settings.endpoint(dataset))
        task = self.claim("receive", (pool,), {"force": force, "dry_run": dry_run, "dataset": dataset, "body": True})
        reader, writer = stream_pipe()
        source = os.fdopen(reader, "rb")

        def work(t: Task) -> dict[str, Any]:
            with source:
                return self.transfers.receive(t, dataset, force, dry_run, source)

        self.workers.launch(task, work)
        return task, os.fdopen(writer, "wb")

    # -- replicate -------------------------------------------------------------------------

    def replicate(self, dataset: str, snap: str, body: Mapping[str, Any]) -> Task:
        """Start a replication of `dataset` up to `snap` to the request's target."""
        dataset, snap = requests.dataset(dataset), requests.snapshot(snap)
        request = requests.replicate_request(body, dataset)
        source = self.settings.endpoint(dataset)
        target = target_endpoint(self.settings, request.target)
        found, versions, version = self.snapshot(dataset, snap)
        base = self.version(dataset, versions, request.from_snapshot) if request.from_snapshot else None
        if found.is_encrypted and not request.raw:
            request = dataclasses.replace(request, raw=True)  # encrypted: always raw
        job = build_job(
            job_arguments(self.settings, source, target, request, selected_snapshots(versions, version, base))
        )
        pools = (self.settings.pool_key(source), self.settings.pool_key(target))
        task = self.claim(
            "replicate", pools, {**body, "dataset": dataset, "snapshot": snap}, (str(source), str(target))
        )
        self.workers.launch(task, lambda t: self.replications.run(t, job, dataset, versions))
        return task

    # -- tasks and status ------------------------------------------------------------------

    def task(self, task_id: str) -> Task:
        found = self.store.get(task_id)
        if found is None:
            raise not_found(
                f"no task {task_id}", "tasks are forgotten one hour after they end; GET /v1/tasks lists them"
            )
        return found

    def cancel(self, task_id: str) -> Task:
        """Cancel a task: its processes on both hosts are terminated and its pools freed."""
        task = self.task(task_id)
        self.workers.cancel(task, CANCEL_WAIT_SECONDS)
        return task

    def shown(self, task: Task) -> dict[str, Any]:
        """A task as the API shows it, now."""
        return task.to_json(self.store.clock())

    def pools(self) -> list[dict[str, Any]]:
        """The managed host's pools, each with the task that keeps it busy (or None)."""
        pools = self.zfs_host.pools()
        for pool in pools:
            pool["busy_task"] = self.store.busy_task(self.settings.pool_key(self.settings.endpoint(pool["name"])))
        return pools

    def status(self) -> dict[str, Any]:
        """Pools with their busy task, recent tasks, replicated pairs (the status page polls this)."""
        now = self.store.clock()
        return {
            "pools": self.pools(),
            "tasks": [t.to_json(now) for t in self.store.recent()],
            "pairs": [p.to_json(now) for p in self.store.pairs()],
        }

    def shutdown(self) -> None:
        """Cancel every task (SIGTERM), then close the ssh master."""
        self.workers.cancel_all(CANCEL_WAIT_SECONDS)
        self.zfs_host.close()
