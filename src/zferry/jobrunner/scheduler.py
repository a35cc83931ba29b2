"""Run named tasks in parallel: at most `workers` at once, `~` barriers, starts spread and shuffled.

Names are `/`-separated. A segment `~` is a barrier: a task `P/~/rest` starts only after every
other task whose name begins with `P` and does not continue with `~` there (so `P` itself, `P/x`,
`P/x/y`, but not `P/~/z`) has succeeded. A task with several `~` waits for each such group.
If one of those fails (or is skipped), the task is skipped. Everything else is independent: a
failure stops nothing else. Knowing nothing of zferry, it is unit-tested with plain functions.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Optional

BARRIER = "~"
OK, FAILED, SKIPPED, CANCELLED = "ok", "failed", "skipped", "cancelled"


@dataclass
class TaskResult:
    """What became of one task: its status, exit code, and when it ran (time.time(); 0 if never)."""

    name: str
    status: str = SKIPPED
    exit_code: int = 0
    started: float = 0.0
    finished: float = 0.0

    @property
    def seconds(self) -> float:
        return max(0.0, self.finished - self.started) if self.started else 0.0


def _groups(names: Sequence[str]) -> tuple[dict[tuple[str, ...], list[int]], dict[tuple[str, ...], list[int]]]:
    """Two indexes by name prefix: the tasks a barrier there waits for, and the barrier tasks there."""
    members: dict[tuple[str, ...], list[int]] = {}
    barriers: dict[tuple[str, ...], list[int]] = {}
    for index, name in enumerate(names):
        parts = tuple(name.split("/"))
        for depth in range(len(parts) + 1):
            if depth < len(parts) and parts[depth] == BARRIER:
                barriers.setdefault(parts[:depth], []).append(index)
            else:
                members.setdefault(parts[:depth], []).append(index)
    return members, barriers


def dependencies(names: Sequence[str]) -> list[list[int]]:
    """For each task (by index), the indexes of the tasks it waits for. Pure; for tests and tools."""
    members, _ = _groups(names)
    out: list[list[int]] = []
    for name in names:
        parts = name.split("/")
        waits = [
            m for depth, part in enumerate(parts) if part == BARRIER for m in members.get(tuple(parts[:depth]), [])
        ]
        out.append(waits)
    return out


class _Waiting:
    """Which tasks are ready, counting each barrier task's unfinished predecessors."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = names
        self.members, self.barriers = _groups(names)
        self.missing = [
            sum(len(self.members.get(tuple(parts[:depth]), ())) for depth, part in enumerate(parts) if part == BARRIER)
            for parts in (name.split("/") for name in names)
        ]  # counted, not listed: a barrier after 10,000 sub-jobs costs one number
        self.ready = [i for i, n in enumerate(self.missing) if n == 0]
        heapq.heapify(self.ready)

    def waiters(self, index: int) -> list[int]:
        parts = tuple(self.names[index].split("/"))
        return [
            w
            for depth in range(len(parts) + 1)
            if depth == len(parts) or parts[depth] != BARRIER
            for w in self.barriers.get(parts[:depth], [])
        ]

    def succeeded(self, index: int) -> None:
        for waiter in self.waiters(index):
            self.missing[waiter] -= 1
            if self.missing[waiter] == 0:
                heapq.heappush(self.ready, waiter)

    def failed(self, index: int) -> list[int]:
        """The tasks that will now never start (transitively); they are marked so."""
        skipped: list[int] = []
        stack = self.waiters(index)
        while stack:
            waiter = stack.pop()
            if self.missing[waiter] >= 0:
                self.missing[waiter] = -1
                skipped.append(waiter)
                stack += self.waiters(waiter)
        return skipped


@dataclass(frozen=True)
class Pace:
    """How fast tasks start: at most `workers` at once, starts spread evenly over `period` seconds."""

    workers: int = 1
    period: float = 0.0


def run_tasks(
    names: Sequence[str],
    task: Callable[[str], int],
    pace: Pace = Pace(),
    cancel: Optional[threading.Event] = None,
    clock: Callable[[], float] = time.time,
) -> list[TaskResult]:
    """Run `task(name)` for every name as the barriers allow; return the results in the names' order.

    A task reports an exit code (0: success); one that raises counts as failed with exit code 1.
    Tasks start in the names' order among those ready. Once `cancel` is set, nothing new starts.
    """
    if len(set(names)) != len(names):
        raise ValueError("task names must be unique")
    results = [TaskResult(name) for name in names]
    waiting = _Waiting(names)
    interval = pace.period / len(names) if names and pace.period > 0 else 0.0
    begin, started = clock(), 0
    stop = cancel or threading.Event()
    running: dict[Future[int], int] = {}
    with ThreadPoolExecutor(max(1, pace.workers), "zferry-job") as pool:
        while True:
            due = begin + started * interval
            while waiting.ready and len(running) < pace.workers and not stop.is_set() and clock() >= due:
                index = heapq.heappop(waiting.ready)
                results[index].started = clock()
                running[pool.submit(task, names[index])] = index
                started += 1
                due = begin + started * interval
            startable = bool(waiting.ready) and len(running) < pace.workers and not stop.is_set()
            if not running:
                if not startable:
                    break
                stop.wait(max(0.0, due - clock()))  # the next start is not due yet
                continue
            timeout = max(0.01, due - clock()) if startable else None
            done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                _finish(running.pop(future), results, future, waiting, clock)
    for result in results:
        if result.status == SKIPPED and stop.is_set():
            result.status = CANCELLED
    return results


def _finish(
    index: int, results: list[TaskResult], future: Future[int], waiting: _Waiting, clock: Callable[[], float]
) -> None:
    result = results[index]
    result.finished = clock()
    error = future.exception()
    result.exit_code = 1 if error is not None else future.result()
    if result.exit_code == 0:
        result.status = OK
        waiting.succeeded(index)
    else:
        result.status = FAILED
        waiting.failed(index)


def worst_exit_code(results: Sequence[TaskResult]) -> int:
    """The exit status of the whole run: the highest of the tasks', 1 if one was skipped after a failure."""
    codes = [r.exit_code for r in results if r.status == FAILED]
    if any(r.status == SKIPPED for r in results):
        codes.append(1)
    return max(codes, default=0)
