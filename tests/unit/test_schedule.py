"""The parent-before-child scheduler with fake tasks (no ZFS)."""

from __future__ import annotations

import threading
import time

import pytest

from zferry.schedule import nearest_parents, run_tree

TREE = ["p", "p/a", "p/a/x", "p/a/y", "p/b", "p/b/z", "q"]


def test_nearest_parents_skip_missing_levels() -> None:
    assert nearest_parents(["t", "t/a/b", "t/c"]) == {"t": None, "t/a/b": "t", "t/c": "t"}


def test_parents_finish_before_children_start_and_work_runs_in_parallel() -> None:
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    active = [0, 0]  # now, max

    def task(name: str) -> None:
        with lock:
            events.append(("start", name))
            active[0] += 1
            active[1] = max(active[1], active[0])
        time.sleep(0.02)
        with lock:
            events.append(("end", name))
            active[0] -= 1

    result = run_tree(TREE, task, threads=4)
    assert sorted(result.succeeded) == sorted(TREE)
    for name in TREE:
        if "/" in name:
            parent = name.rsplit("/", 1)[0]
            assert events.index(("end", parent)) < events.index(("start", name))
    assert active[1] > 1


def fail_on(bad: str):  # type: ignore[no-untyped-def]
    def task(name: str) -> None:
        if name == bad:
            raise RuntimeError(f"{name} broke")

    return task


def test_skip_tree_skips_descendants_only() -> None:
    result = run_tree(TREE, fail_on("p/a"), threads=1, skip_on_error="tree")
    assert list(result.failed) == ["p/a"]
    assert sorted(result.skipped) == ["p/a/x", "p/a/y"]
    assert sorted(result.succeeded) == ["p", "p/b", "p/b/z", "q"]


def test_skip_dataset_goes_on_with_children() -> None:
    result = run_tree(TREE, fail_on("p/a"), threads=1, skip_on_error="dataset")
    assert sorted(result.succeeded) == ["p", "p/a/x", "p/a/y", "p/b", "p/b/z", "q"]


def test_fail_starts_nothing_new() -> None:
    result = run_tree(TREE, fail_on("p"), threads=1, skip_on_error="fail")
    assert list(result.failed) == ["p"] and result.succeeded == []
    assert "p/a/x" in result.skipped


def test_unknown_policy_is_rejected() -> None:
    with pytest.raises(ValueError):
        run_tree(TREE, fail_on("x"), skip_on_error="sometimes")
