"""Recursive send and receive: a dataset tree to a directory of stream files and back, or as one
`zfs send -R` stream.

A send with `output_path` writes one stream per dataset (zvols each on their own), parents first,
then the manifest (`tree.py`); a failed or cancelled send removes the directory. A receive with
`input_path` naming such a directory checks the manifest and every file's stream header first,
then receives in manifest order. It stops at the first dataset that fails: what was received
stays, nothing is destroyed, the failed receive leaves no partial state (a file can be read
again); a rerun skips the datasets that already hold the snapshot (same GUID) and continues.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from zferry import zfs
from zferry.errors import Interrupted, ZferryError
from zferry.exec.runner import Stage
from zferry.inventory import Side, list_inventory
from zferry.model import Dataset, Version
from zferry.server import paths, requests, tree
from zferry.server.errors import ApiError, not_found, unprocessable
from zferry.server.requests import ReceiveRequest, SendRequest
from zferry.server.stream_header import StreamHeader, parse_header
from zferry.server.tasks import Task
from zferry.server.transfers import polling, refuse_forced_encrypted, send_argv, watched

if TYPE_CHECKING:
    from zferry.server.service import Service

log = logging.getLogger("zferry")
HEADER_READ = 4096
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Listing = tuple[dict[str, Dataset], dict[str, tuple[Version, ...]]]


def tree_argv(planned: tree.Planned, request: SendRequest) -> list[str]:
    """The `zfs send` of one member (raw when the manifest says so: always for an encrypted one). Pure."""
    return send_argv(planned.target, planned.base, request, planned.member.raw)


def replication_argv(planned: Sequence[tree.Planned], request: SendRequest) -> list[str]:
    """`zfs send -R` of the whole tree (raw when any member is encrypted). Pure."""
    root = planned[0]
    argv = send_argv(root.target, root.base, request, any(p.member.raw for p in planned))
    return [*argv[:2], "-R", *argv[2:]]


class Trees:
    """The recursive send and receive of the server (`Service.send`/`receive_file` hand them over)."""

    def __init__(self, service: Service, pipe: Callable[[], tuple[int, int]]) -> None:
        self.service = service
        self.pipe = pipe

    def listing(self, dataset: str) -> Listing:
        """The datasets and versions of the tree under `dataset` (both empty when it does not exist)."""
        host = self.service.zfs_host
        inventory = list_inventory(host.runner, Side(host.host, dataset))
        return ({}, {}) if inventory is None else (inventory.datasets, inventory.versions)

    # -- send --------------------------------------------------------------------------------

    def send(
        self, dataset: str, snap: str, request: SendRequest, body: Mapping[str, Any]
    ) -> tuple[Task, Optional[int]]:
        """Start a recursive send; returns the task and, for a streamed one, the fd the response reads."""
        service = self.service
        target = (
            paths.confine(service.settings.export_dir, request.output_path, "--export-dir")
            if request.output_path
            else None
        )
        datasets, versions = self.listing(dataset)
        if dataset not in datasets:
            raise not_found(f"dataset {dataset} does not exist", "check the name (GET /v1/pools lists the pools)")
        service.version(dataset, versions.get(dataset, ()), "@" + snap)
        if request.from_snapshot:
            service.version(dataset, versions.get(dataset, ()), request.from_snapshot)
        planned = tree.plan_tree(dataset, snap, datasets, versions, request.from_snapshot, request.raw)
        pool = service.settings.pool_key(service.settings.endpoint(dataset))
        shown = {**body, "dataset": dataset, "snapshot": snap}
        if request.dry_run:
            task = service.claim("send", (pool,), shown)
            service.workers.launch(task, lambda t: self._dry_send(t, planned, request))
            return task, None
        if target is None:
            return self._stream(planned, request, pool, shown)
        try:
            os.mkdir(target, 0o700)
        except FileExistsError:
            raise ApiError(409, f"{request.output_path} exists", "choose a new output_path (a directory)") from None
        dirfd = os.open(target, _DIR_FLAGS)
        try:
            task = service.claim("send", (pool,), shown)
        except BaseException:
            os.close(dirfd)
            os.rmdir(target)
            raise
        manifest = tree.Manifest(dataset, snap, request.from_snapshot, ())
        service.workers.launch(
            task, lambda t: self._send_files(t, planned, request, manifest, dirfd, target, request.output_path)
        )
        return task, None

    def _stream(
        self, planned: Sequence[tree.Planned], request: SendRequest, pool: str, shown: Mapping[str, Any]
    ) -> tuple[Task, Optional[int]]:
        volumes = [
            tree.child_name(planned[0].target.dataset, p.member.name) for p in planned if p.member.kind == "volume"
        ]
        if volumes:
            raise unprocessable(
                f"the tree holds zvols ({', '.join(volumes[:3])}), which are sent each on their own",
                'give output_path (a new directory under --export-dir): {"recursive": true, "output_path": "tree1"}',
            )
        if request.from_snapshot and request.from_snapshot.startswith("#"):
            raise unprocessable(
                "a streamed recursive send (zfs send -R) cannot start from a bookmark", "give output_path"
            )
        argv = replication_argv(planned, request)
        task = self.service.claim("send", (pool,), shown)
        reader, writer = self.pipe()
        sink = os.fdopen(writer, "wb")
        self.service.workers.launch(task, lambda t: self.service.transfers.send_to_pipe(t, argv, sink))
        return task, reader

    def _estimates(self, planned: Sequence[tree.Planned], request: SendRequest) -> list[Optional[int]]:
        return [self.service.zfs_host.send_size(tree_argv(p, request)) for p in planned]

    def _dry_send(self, task: Task, planned: Sequence[tree.Planned], request: SendRequest) -> dict[str, Any]:
        sizes = self._estimates(planned, request)
        total = sum(s or 0 for s in sizes)
        self.service.store.expect(task, total)
        shown = [{**_shown(p.member), "size": size} for p, size in zip(planned, sizes)]
        return {"dry_run": True, "size": total, "datasets": shown}

    def _estimate_aside(self, task: Task, planned: Sequence[tree.Planned], request: SendRequest) -> None:
        """The tree's total (`bytes_total`) in a thread of its own: the streams need not wait for it."""

        def estimate() -> None:
            try:
                self.service.store.expect(task, sum(s or 0 for s in self._estimates(planned, request)))
            except ZferryError as error:
                log.info("task %s: no size estimate: %s", task.id, error)

        threading.Thread(target=estimate, name=f"zferry-estimate-{task.id[:8]}", daemon=True).start()

    def _send_files(
        self,
        task: Task,
        planned: Sequence[tree.Planned],
        request: SendRequest,
        manifest: tree.Manifest,
        dirfd: int,
        where: Path,
        shown: Optional[str],
    ) -> dict[str, Any]:
        """One `zfs send > file` per member, then the manifest; a failure or cancel removes the directory."""
        runner = self.service.zfs_host.task_runner("zferry-server")
        host = self.service.zfs_host.host
        members: list[tree.Member] = []
        current: list[str] = []

        def count() -> int:
            done = sum(m.bytes for m in members)
            return done + (os.stat(current[-1], dir_fd=dirfd).st_size if len(current) > len(members) else 0)

        try:
            self._estimate_aside(task, planned, request)
            with watched(task, runner), polling(self.service.store, task, count):
                for item in planned:
                    fd = paths.open_new(Path(item.member.file), dirfd)
                    current.append(item.member.file)
                    with os.fdopen(fd, "wb") as sink:
                        runner.pipeline(
                            [Stage(host, tuple(tree_argv(item, request)))], classify=zfs.classify_error, sink=sink
                        )
                        members.append(dataclasses.replace(item.member, bytes=os.fstat(sink.fileno()).st_size))
                manifest = dataclasses.replace(manifest, members=tuple(members))
                _write_new(dirfd, tree.MANIFEST, json.dumps(manifest.to_json(), indent=1).encode())
        except BaseException:
            for name in [*current, tree.MANIFEST]:
                try:
                    os.unlink(name, dir_fd=dirfd)
                except FileNotFoundError:
                    pass
            os.rmdir(where)
            raise
        finally:
            os.close(dirfd)
        return {"output_path": shown, "bytes": count(), "datasets": [_shown(m) for m in members]}

    # -- receive -----------------------------------------------------------------------------

    def receive(self, dataset: str, request: ReceiveRequest, where: Path, body: Mapping[str, Any]) -> Task:
        """Receive the tree directory `where` (checked: manifest, stream headers, force rules) under `dataset`."""
        service = self.service
        dirfd = os.open(where, _DIR_FLAGS)
        try:
            manifest = tree.parse_manifest(_read(dirfd, tree.MANIFEST, tree.MAX_MANIFEST_BYTES))
            for member in manifest.members:
                requests.dataset(tree.child_name(dataset, member.name))  # the whole name valid (length)
            headers = [_header(dirfd, manifest, m) for m in manifest.members]
            datasets, versions = self.listing(dataset)
            if request.force:
                for member, header in zip(manifest.members, headers):
                    existing = datasets.get(tree.child_name(dataset, member.name))
                    refuse_forced_encrypted(existing is not None and existing.is_encrypted, header)
            pool = service.settings.pool_key(service.settings.endpoint(dataset))
            task = service.claim("receive", (pool,), {**body, "dataset": dataset, "recursive": True})
        except BaseException:
            os.close(dirfd)
            raise
        work = _TreeReceive(self.service, dataset, request, manifest, dirfd, (datasets, versions))
        service.workers.launch(task, work.run)
        return task


class _TreeReceive:
    """The work of one tree receive task, member by member in manifest order."""

    def __init__(
        self,
        service: Service,
        dataset: str,
        request: ReceiveRequest,
        manifest: tree.Manifest,
        dirfd: int,
        listing: Listing,
    ) -> None:
        self.service, self.dataset, self.request, self.manifest, self.dirfd = service, dataset, request, manifest, dirfd
        self.datasets, self.versions = listing
        self.received: list[str] = []
        self.skipped: list[str] = []
        self.unchecked: list[str] = []  # dry run: its parent is not there yet, so `zfs receive -n` cannot tell

    def run(self, task: Task) -> dict[str, Any]:
        try:
            sizes = [os.stat(m.file, dir_fd=self.dirfd).st_size for m in self.manifest.members]
            self.service.store.expect(task, sum(sizes))
            done = 0
            for member, size in zip(self.manifest.members, sizes):
                self._member(task, member, done)
                done += size
                self.service.store.progress(task, done)
        finally:
            os.close(self.dirfd)
        result: dict[str, Any] = {"dataset": self.dataset, "received": self.received, "skipped": self.skipped}
        if self.request.dry_run:
            result.update(dry_run=True, not_checked=self.unchecked)
        return result

    def _member(self, task: Task, member: tree.Member, before: int) -> None:
        target = tree.child_name(self.dataset, member.name)
        fd, header = _open_member(self.dirfd, self.manifest, member)
        with os.fdopen(fd, "rb") as source:
            if tree.received(self.versions.get(target, ()), header):
                self.skipped.append(target)
                return
            parent = zfs.parent_of(target)
            if self.request.dry_run and member.name and parent not in self.datasets:
                self.unchecked.append(target)
                return
            count = lambda: before + os.lseek(source.fileno(), 0, os.SEEK_CUR)  # noqa: E731 - the child shares the offset
            try:
                self.service.transfers.receive(
                    task, target, self.request.force, self.request.dry_run, source, count, resumable=False
                )
            except Interrupted:
                raise
            except (ZferryError, ApiError) as error:
                reason = error.message if isinstance(error, ApiError) else str(error)
                raise ZferryError(
                    f"{target}: {reason}; {len(self.received)} of {len(self.manifest.members)} datasets were "
                    f"received before (nothing was destroyed); fix the cause and send the same request again: "
                    f"datasets that hold @{self.manifest.snapshot} are skipped"
                ) from None
            self.received.append(target)


def _shown(member: tree.Member) -> dict[str, Any]:
    return {"name": member.name, "kind": member.kind, "raw": member.raw, "from_snapshot": member.from_snapshot}


def _write_new(dirfd: int, name: str, data: bytes) -> None:
    with os.fdopen(paths.open_new(Path(name), dirfd), "wb") as out:
        out.write(data)


def _read(dirfd: int, name: str, limit: int) -> bytes:
    fd = paths.open_existing(Path(name), dirfd)
    with os.fdopen(fd, "rb") as source:
        return source.read(limit + 1)


def _open_member(dirfd: int, manifest: tree.Manifest, member: tree.Member) -> tuple[int, StreamHeader]:
    """The member's file, open, and its stream header, checked against the manifest."""
    fd = paths.open_existing(Path(member.file), dirfd)
    header = parse_header(os.pread(fd, HEADER_READ, 0))
    try:
        tree.check_stream(manifest, member, header)
    except BaseException:
        os.close(fd)
        raise
    assert header is not None
    return fd, header


def _header(dirfd: int, manifest: tree.Manifest, member: tree.Member) -> StreamHeader:
    fd, header = _open_member(dirfd, manifest, member)
    os.close(fd)
    return header
