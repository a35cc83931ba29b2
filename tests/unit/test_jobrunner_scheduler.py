"""zferry-jobrunner's scheduler: `~` barriers, the worker limit, independence of failures, spreading."""

from __future__ import annotations

import threading
import time

import pytest

from zferry.jobrunner.scheduler import CANCELLED, FAILED, OK, SKIPPED, Pace, dependencies, run_tasks, worst_exit_code


class Recorder:
    """A fake task: records start and end, sleeps a little, fails for the names it is told."""

    def __init__(self, fail: dict[str, int] | None = None, seconds: float = 0.05) -> None:
        self.fail = fail or {}
        self.seconds = seconds
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.spans: dict[str, tuple[float, float]] = {}

    def __call__(self, name: str) -> int:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        start = time.monotonic()
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
            self.spans[name] = (start, time.monotonic())
        if name in self.fail and self.fail[name] < 0:
            raise RuntimeError("a bug")
        return self.fail.get(name, 0)


def test_prd_example_barrier_waits_for_both_replications() -> None:
    names = ["task/repl/hostA", "task/repl/hostB", "task/~/prune"]
    assert dependencies(names) == [[], [], [0, 1]]
    task = Recorder()
    results = run_tasks(names, task, Pace(workers=3))
    assert [r.status for r in results] == [OK, OK, OK]
    prune_start = task.spans["task/~/prune"][0]
    assert all(task.spans[n][1] <= prune_start for n in names[:2])


def test_nested_barriers_and_parents() -> None:
    names = ["s/run/create", "s/run/~/rep/d", "s/run/~/rep/d/~/prune", "s/run/~/prune-src", "s/monitor/src"]
    assert dependencies(names) == [[], [0], [0, 1], [0], []]


def test_a_failure_skips_only_what_waits_for_it() -> None:
    names = ["a/run/create", "a/run/~/rep/x", "a/run/~/rep/x/~/prune", "a/run/~/rep/y", "b/run/create", "b/run/~/r"]
    task = Recorder(fail={"a/run/~/rep/x": 1})
    results = {r.name: r for r in run_tasks(names, task, Pace(workers=2))}
    assert results["a/run/~/rep/x"].status == FAILED
    assert results["a/run/~/rep/x/~/prune"].status == SKIPPED and not results["a/run/~/rep/x/~/prune"].started
    assert all(results[n].status == OK for n in ["a/run/create", "a/run/~/rep/y", "b/run/create", "b/run/~/r"])
    assert worst_exit_code(list(results.values())) == 1


def test_a_task_that_raises_fails_alone_and_the_worst_status_wins() -> None:
    results = run_tasks(["a", "b", "c"], Recorder(fail={"a": -1, "b": 3}), Pace(workers=3))
    assert [(r.status, r.exit_code) for r in results] == [(FAILED, 1), (FAILED, 3), (OK, 0)]
    assert worst_exit_code(results) == 3


@pytest.mark.parametrize("workers", [1, 3])
def test_never_more_than_workers_at_once(workers: int) -> None:
    task = Recorder(seconds=0.03)
    results = run_tasks([f"h{i}/job" for i in range(10)], task, Pace(workers=workers))
    assert all(r.status == OK for r in results)
    assert task.most == workers


def test_starts_are_spread_over_the_work_period() -> None:
    task = Recorder(seconds=0.0)
    results = run_tasks([f"j{i}" for i in range(5)], task, Pace(workers=5, period=0.5))
    starts = sorted(r.started for r in results)
    # Each start is at or after its slot (0.1 s apart); a late start under load may shorten the
    # gap to the next one, but never moves a start before its slot.
    offsets = [start - starts[0] for start in starts]
    assert all(offset >= 0.1 * i - 0.02 for i, offset in enumerate(offsets)), offsets


def test_cancel_starts_nothing_more() -> None:
    cancel = threading.Event()

    def task(name: str) -> int:
        cancel.set()
        return 130

    results = run_tasks(["a", "b", "c"], task, Pace(workers=1), cancel)
    assert [r.status for r in results] == [FAILED, CANCELLED, CANCELLED]


def test_many_tasks_under_one_barrier_are_fast() -> None:
    names = [f"s/rep/d{i}" for i in range(3000)] + ["s/~/prune"]
    assert len(dependencies(names)[-1]) == 3000
    started = time.monotonic()
    results = run_tasks(names, lambda name: 0, Pace(workers=8))
    assert results[-1].status == OK and time.monotonic() - started < 20
