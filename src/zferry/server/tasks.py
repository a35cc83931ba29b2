"""The task store: background operations, their progress, the pools they keep busy, and their expiry.

Tasks live in memory only. A task holds its pools from creation until it ends: a second task on
one of them is refused (`Busy`, answered 409 with the blocking task). Finished tasks are
forgotten `ttl` seconds after they end (the clock is injectable); the last result of each
replicated pair is kept beyond that, for the status page.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINAL = (SUCCEEDED, FAILED, CANCELLED)
TASK_TTL_SECONDS = 3600.0

Clock = Callable[[], float]


class Busy(Exception):
    """A pool the request needs is held by a task that has not ended."""

    def __init__(self, pool: str, task: Task) -> None:
        super().__init__(f"pool {pool} is busy with task {task.id} ({task.kind}, {task.state})")
        self.pool = pool
        self.task = task


@dataclass
class Task:
    """One background operation; its fields are what `GET /v1/tasks/{id}` shows."""

    id: str
    kind: str  # send | receive | replicate
    pools: tuple[str, ...]
    request: Mapping[str, Any]
    created: float
    state: str = QUEUED
    bytes_done: int = 0
    bytes_total: Optional[int] = None
    started: Optional[float] = None
    ended: Optional[float] = None
    result: Optional[dict[str, Any]] = None
    error: Optional[str] = None
    pair: Optional[tuple[str, str]] = None  # replicate: (source, target)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def rate(self, now: float) -> Optional[float]:
        """Bytes per second since it started (up to its end)."""
        if self.started is None:
            return None
        seconds = (self.ended or now) - self.started
        return round(self.bytes_done / seconds, 1) if seconds > 0 else None

    def to_json(self, now: float) -> dict[str, Any]:
        """The task as the API shows it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "pools": list(self.pools),
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "rate_bytes_per_s": self.rate(now),
            "started": self.started,
            "ended": self.ended,
            "result": self.result,
            "error": self.error,
            "request": dict(self.request),
        }


@dataclass(frozen=True)
class PairRecord:
    """The last replicate of one (source, target) pair, kept beyond task expiry."""

    source: str
    target: str
    last_result: str  # a task state
    last_run_end: float
    source_latest: Optional[str] = None
    target_latest: Optional[str] = None
    target_latest_creation: Optional[float] = None  # for the lag

    def to_json(self, now: float) -> dict[str, Any]:
        lag = None if self.target_latest_creation is None else round(now - self.target_latest_creation, 1)
        return {
            "source": self.source,
            "target": self.target,
            "source_latest": self.source_latest,
            "target_latest": self.target_latest,
            "lag_seconds": lag,
            "last_result": self.last_result,
            "last_run_end": self.last_run_end,
        }


class TaskStore:
    """Every task the server knows, thread-safe; `clock` gives the time (tests inject their own)."""

    def __init__(self, clock: Clock = time.time, ttl: float = TASK_TTL_SECONDS) -> None:
        self.clock = clock
        self.ttl = ttl
        self._tasks: dict[str, Task] = {}
        self._pairs: dict[tuple[str, str], PairRecord] = {}
        self._lock = threading.Lock()

    def create(
        self, kind: str, pools: tuple[str, ...], request: Mapping[str, Any], pair: Optional[tuple[str, str]] = None
    ) -> Task:
        """A new queued task holding `pools`; raises Busy naming the task that holds one of them."""
        with self._lock:
            self._expire()
            for pool in pools:
                holder = self._holder(pool)
                if holder is not None:
                    raise Busy(pool, holder)
            task = Task(uuid.uuid4().hex, kind, tuple(dict.fromkeys(pools)), dict(request), self.clock(), pair=pair)
            self._tasks[task.id] = task
            return task

    def _holder(self, pool: str) -> Optional[Task]:
        return next((t for t in self._tasks.values() if t.state not in FINAL and pool in t.pools), None)

    def busy_task(self, pool: str) -> Optional[str]:
        """The id of the task holding `pool`, if any."""
        with self._lock:
            holder = self._holder(pool)
            return holder.id if holder else None

    def get(self, task_id: str) -> Optional[Task]:
        with self._lock:
            self._expire()
            return self._tasks.get(task_id)

    def recent(self) -> list[Task]:
        """Every task not yet expired, newest first."""
        with self._lock:
            self._expire()
            return sorted(self._tasks.values(), key=lambda t: t.created, reverse=True)

    def running(self) -> list[Task]:
        with self._lock:
            return [t for t in self._tasks.values() if t.state not in FINAL]

    def pairs(self) -> list[PairRecord]:
        with self._lock:
            return list(self._pairs.values())

    def start(self, task: Task) -> None:
        with self._lock:
            if task.state == QUEUED:
                task.state = RUNNING
                task.started = self.clock()

    def expect(self, task: Task, total: Optional[int]) -> None:
        """The bytes the task will move, as estimated."""
        with self._lock:
            task.bytes_total = total

    def progress(self, task: Task, done: int, total: Optional[int] = None) -> None:
        with self._lock:
            task.bytes_done = done
            if total is not None:
                task.bytes_total = total

    def finish(
        self, task: Task, state: str, result: Optional[dict[str, Any]] = None, error: Optional[str] = None
    ) -> None:
        """End `task` (frees its pools); a cancel requested meanwhile makes it `cancelled`."""
        with self._lock:
            if task.state in FINAL:
                return
            task.state = CANCELLED if task.cancel.is_set() and state != SUCCEEDED else state
            task.ended = self.clock()
            task.started = task.started or task.ended
            task.result = result
            task.error = error

    def record_pair(self, record: PairRecord) -> None:
        with self._lock:
            self._pairs[(record.source, record.target)] = record

    def _expire(self) -> None:
        """Forget tasks that ended more than `ttl` seconds ago (called with the lock held)."""
        now = self.clock()
        for task_id in [i for i, t in self._tasks.items() if t.ended is not None and now - t.ended > self.ttl]:
            del self._tasks[task_id]
