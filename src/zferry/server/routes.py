"""The /v1 endpoints: read the request, call the service (in a worker thread: it runs zfs), answer JSON."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import IO, Any, Callable, Optional, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from zferry.server import metrics, requests, schemas
from zferry.server.errors import ApiError
from zferry.server.service import Service
from zferry.server.tasks import FINAL, SUCCEEDED, Task

router = APIRouter(prefix="/v1")
CHUNK = 1024 * 1024
HEADER_BYTES = 4096  # enough of a receive stream to read its BEGIN record
TASK_HEADER = "X-Zferry-Task-Id"
T = TypeVar("T")


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """`func(*args)` in a worker thread (it blocks: zfs over ssh, pipes)."""
    result: T = await run_in_threadpool(func, *args)
    return result


def service_of(request: Request) -> Service:
    """The server's state."""
    service: Service = request.app.state.service
    return service


async def json_body(request: Request, limit: int) -> dict[str, Any]:
    """The JSON object of the body, refused (413) past `limit` bytes, whatever Content-Length says."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body over {limit} bytes", "send a smaller JSON object")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise ApiError(413, f"request body over {limit} bytes", "send a smaller JSON object")
    return requests.parse_json(bytes(data))


def accepted(task: Task, service: Service) -> JSONResponse:
    return JSONResponse(service.shown(task), status_code=202, headers={TASK_HEADER: task.id})


@router.post("/snapshots/{dataset:path}/{snap}/send", status_code=202, openapi_extra=schemas.body(schemas.SEND))
async def send(dataset: str, snap: str, request: Request) -> Response:
    """Send a snapshot (incremental with from_snapshot) to a file under --export-dir, or as the response body."""
    service = service_of(request)
    body = await json_body(request, service.settings.max_json_bytes)
    task, reader = await in_thread(service.send, dataset, snap, body)
    if reader is None:
        return accepted(task, service)
    return TaskStream(service, task, reader)


class TaskStream(StreamingResponse):
    """The stream of a send as the response body; a client that goes away cancels the task."""

    def __init__(self, service: Service, task: Task, fd: int) -> None:
        self.service, self.task, self.fd = service, task, fd
        headers = {TASK_HEADER: task.id}
        super().__init__(self._chunks(), media_type="application/octet-stream", headers=headers)

    async def _chunks(self) -> AsyncIterator[bytes]:
        done = 0
        while True:
            chunk = await in_thread(os.read, self.fd, CHUNK)
            if not chunk:
                break
            done += len(chunk)
            self.service.store.progress(self.task, done)
            yield chunk
        await in_thread(self.service.workers.wait, self.task, 60.0)
        if self.task.state != SUCCEEDED:  # the client sees a cut stream, not a complete one
            raise RuntimeError(f"send task {self.task.id} {self.task.state}: {self.task.error}")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.task.state not in FINAL:
                self.task.cancel.set()
            await in_thread(self.service.workers.wait, self.task, 15.0)  # its end closes the pipe
            os.close(self.fd)


@router.post(
    "/datasets/{dataset:path}/receive", status_code=202, openapi_extra=schemas.body(schemas.RECEIVE, stream=True)
)
async def receive(
    dataset: str, request: Request, force: Optional[str] = None, dry_run: Optional[str] = None
) -> JSONResponse:
    """Receive into a dataset: a file under --import-dir (JSON body), or the request body (application/octet-stream)."""
    service = service_of(request)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/octet-stream":
        body = await json_body(request, service.settings.max_json_bytes)
        return accepted(await in_thread(service.receive_file, dataset, body), service)
    forced, dry = requests.flag(force, "force"), requests.flag(dry_run, "dry_run")
    stream = request.stream()
    head = bytearray()
    async for chunk in stream:
        head += chunk
        if len(head) >= HEADER_BYTES:
            break
    task, writer = await in_thread(service.receive_stream, dataset, forced, dry, bytes(head))
    await _feed(service, task, writer, bytes(head), stream)
    return accepted(task, service)


async def _feed(service: Service, task: Task, writer: IO[bytes], head: bytes, rest: AsyncIterator[bytes]) -> None:
    """Write the body into the receive's pipe; stop when the receive has ended (its pipe broke).

    A client that goes away mid-stream cancels the receive (a resumable partial state stays)."""
    done = 0
    try:
        chunk = head
        while True:
            if chunk:
                await in_thread(writer.write, chunk)
                done += len(chunk)
                service.store.progress(task, done)
            chunk = await rest.__anext__()
    except (StopAsyncIteration, BrokenPipeError):
        pass
    except ClientDisconnect:
        task.cancel.set()
        raise
    finally:
        try:
            await in_thread(writer.close)
        except BrokenPipeError:
            pass
    await in_thread(service.workers.wait, task, 5.0)


@router.post(
    "/snapshots/{dataset:path}/{snap}/replicate",
    status_code=202,
    openapi_extra=schemas.body(schemas.REPLICATE, ("target",)),
)
async def replicate(dataset: str, snap: str, request: Request) -> JSONResponse:
    """Replicate a dataset up to a snapshot to another pool or host with zferry's engine."""
    service = service_of(request)
    body = await json_body(request, service.settings.max_json_bytes)
    return accepted(await in_thread(service.replicate, dataset, snap, body), service)


@router.get("/snapshots/{dataset:path}/{snap}/send-size")
def send_size(
    dataset: str,
    snap: str,
    request: Request,
    from_snapshot: Optional[str] = None,
    raw: Optional[str] = None,
    compressed: Optional[str] = None,
    large_blocks: Optional[str] = None,
) -> dict[str, Any]:
    """The size of a send in bytes (`zfs send -nP`), full or incremental."""
    query = {"from_snapshot": from_snapshot, "raw": raw, "compressed": compressed, "large_blocks": large_blocks}
    return service_of(request).send_size(dataset, snap, query)


@router.get("/tasks/{task_id}")
def task(task_id: str, request: Request) -> dict[str, Any]:
    """A task's state, progress, result and error."""
    service = service_of(request)
    return service.shown(service.task(task_id))


@router.get("/tasks")
def tasks(request: Request) -> dict[str, Any]:
    """The tasks of the last hour, newest first."""
    service = service_of(request)
    now = service.store.clock()
    return {"tasks": [t.to_json(now) for t in service.store.recent()]}


@router.delete("/tasks/{task_id}")
def cancel(task_id: str, request: Request) -> dict[str, Any]:
    """Cancel a task: its processes on both hosts are terminated, its pools freed."""
    service = service_of(request)
    return service.shown(service.cancel(task_id))


@router.get("/pools")
def pools(request: Request) -> dict[str, Any]:
    """The managed host's pools: health, size, allocated, free, and the task keeping each busy."""
    return {"pools": service_of(request).pools()}


@router.get("/status")
def status(request: Request) -> dict[str, Any]:
    """Pools, recent tasks and replicated pairs in one answer (the status page polls it)."""
    return service_of(request).status()


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """200 when the ZFS host answers, else 503."""
    service = service_of(request)
    try:
        count = len(service.zfs_host.pools())
    except Exception as error:  # any failure to reach zfs is "unhealthy", with the reason
        return JSONResponse({"ok": False, "error": str(error), "hint": "check the ZFS host and ssh"}, status_code=503)
    return JSONResponse({"ok": True, "pools": count, "tasks_running": len(service.store.running())})


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus(request: Request) -> PlainTextResponse:
    """Tasks by state, bytes of running tasks, pairs' lag (Prometheus text format)."""
    service = service_of(request)
    text = metrics.render(service.store.recent(), service.store.pairs(), service.store.clock())
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
