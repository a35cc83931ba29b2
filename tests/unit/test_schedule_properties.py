"""Property tests of the scheduler: on random trees, failures, policies and thread counts, every
dataset is reported exactly once, each starts only after its nearest ancestor in the run
succeeded, and the skip policies skip exactly what they say."""

from __future__ import annotations

import threading
from typing import Optional

from hypothesis import given, settings
from hypothesis import strategies as st

from zferry.schedule import nearest_parents, run_tree

_PARTS = st.sampled_from(["a", "b", "c", "d"])
_NAMES = st.lists(st.lists(_PARTS, min_size=1, max_size=4).map(lambda p: "t/" + "/".join(p)), max_size=40, unique=True)


def _under(name: str, top: str) -> bool:
    return name.startswith(top + "/")


class _Recorder:
    """A task that logs when each dataset starts and ends, and fails the chosen ones."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []

    def __call__(self, name: str) -> None:
        with self.lock:
            self.events.append(("start", name))
        try:
            if name in self.failing:
                raise RuntimeError(name)
        finally:
            with self.lock:
                self.events.append(("end", name))

    def position(self, kind: str, name: str) -> int:
        return self.events.index((kind, name))


@settings(max_examples=300, deadline=None)
@given(
    names=_NAMES,
    failing_picks=st.sets(st.integers(0, 39), max_size=4),
    policy=st.sampled_from(["fail", "dataset", "tree"]),
    threads=st.integers(1, 6),
)
def test_order_and_policies_hold_on_random_trees(
    names: list[str], failing_picks: set[int], policy: str, threads: int
) -> None:
    failing = {names[i] for i in failing_picks if i < len(names)}
    task = _Recorder(failing)
    result = run_tree(names, task, threads=threads, skip_on_error=policy)
    reported = [*result.succeeded, *result.failed, *result.skipped]
    assert sorted(reported) == sorted(names)  # each exactly once
    assert set(result.failed) == failing & {n for _, n in task.events}
    parents = nearest_parents(names)
    started = {n for kind, n in task.events if kind == "start"}
    for name in started:
        parent: Optional[str] = parents[name]
        if parent is not None:
            assert parent in started and task.position("end", parent) < task.position("start", name)
            assert parent in result.succeeded or policy == "dataset"
    if policy == "dataset":
        assert not result.skipped and started == set(names)
    if policy == "tree":
        doomed = {n for n in names if any(_under(n, f) for f in result.failed)}
        assert set(result.skipped) == doomed
    if policy == "fail" and threads == 1 and result.failed:
        first = task.position("end", next(iter(result.failed)))
        assert all(kind == "end" for kind, _ in task.events[first:])  # nothing started after it


@settings(max_examples=50, deadline=None)
@given(names=_NAMES, threads=st.integers(1, 4), after=st.integers(0, 40))
def test_cancel_starts_nothing_new(names: list[str], threads: int, after: int) -> None:
    cancel = threading.Event()
    count = [0]
    lock = threading.Lock()

    def task(name: str) -> None:
        with lock:
            count[0] += 1
            if count[0] >= after:
                cancel.set()

    result = run_tree(names, task, threads=threads, cancel=cancel)
    assert sorted([*result.succeeded, *result.skipped]) == sorted(names)
    assert len(result.succeeded) <= max(after, 1) + threads - 1 or not names
