"""Run one task per dataset in parallel, each parent before its children.

Generic: it knows dataset names and a callback, nothing about ZFS. A dataset starts when the
nearest ancestor in the same run has finished; independent subtrees run side by side up to
`threads` at once. What happens after a failure is the `skip_on_error` policy:

- "fail": start nothing new; report the failure once running tasks are done.
- "dataset": go on with everything else, including the failed dataset's children.
- "tree": go on, but skip the failed dataset's descendants.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Optional

log = logging.getLogger("zferry")

SKIP_POLICIES = ("fail", "dataset", "tree")


@dataclass
class ScheduleResult:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, BaseException] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # never started because of a failure


def nearest_parents(names: Sequence[str]) -> dict[str, Optional[str]]:
    """For each name, the closest ancestor that is also in `names` (None for roots)."""
    present = set(names)
    parents: dict[str, Optional[str]] = {}
    for name in names:
        parent: Optional[str] = None
        head = name
        while "/" in head:
            head = head.rsplit("/", 1)[0]
            if head in present:
                parent = head
                break
        parents[name] = parent
    return parents


def run_tree(
    names: Sequence[str],
    task: Callable[[str], None],
    threads: int = 1,
    skip_on_error: str = "fail",
    make_executor: Callable[[int], ThreadPoolExecutor] = lambda n: ThreadPoolExecutor(n, "zferry"),
    cancel: Optional[threading.Event] = None,
) -> ScheduleResult:
    """Run `task(name)` for every name, parents first, in parallel. A task fails by raising.

    Once `cancel` is set nothing new starts (as after a failure with "fail").
    """
    if skip_on_error not in SKIP_POLICIES:
        raise ValueError(f"skip_on_error must be one of {SKIP_POLICIES}")
    parents = nearest_parents(names)
    children: dict[Optional[str], list[str]] = {}
    for name in sorted(names):
        children.setdefault(parents[name], []).append(name)
    result = ScheduleResult()
    ready = list(children.get(None, []))
    ready.reverse()  # pop() takes names in sorted order
    running: dict[Future[None], str] = {}
    stop = False
    with make_executor(max(1, threads)) as pool:
        while ready or running:
            stop = stop or (cancel is not None and cancel.is_set())
            while ready and not stop and len(running) < max(1, threads):
                name = ready.pop()
                # in a copy of this thread's context: what the caller set (the jobrunner's sub-job name) stays
                running[pool.submit(contextvars.copy_context().run, task, name)] = name
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                error = future.exception()
                kids = children.get(name, [])
                if error is None:
                    result.succeeded.append(name)
                    ready.extend(reversed(kids))
                    continue
                result.failed[name] = error
                if skip_on_error == "dataset":
                    ready.extend(reversed(kids))
                else:
                    stop = stop or skip_on_error == "fail"
                    result.skipped.extend(_descendants(name, children))
        if stop:
            result.skipped.extend(ready)
            for name in list(ready):
                result.skipped.extend(_descendants(name, children))
    return result


def _descendants(name: str, children: dict[Optional[str], list[str]]) -> list[str]:
    out: list[str] = []
    stack = list(children.get(name, []))
    while stack:
        item = stack.pop()
        out.append(item)
        stack.extend(children.get(item, []))
    return sorted(out)
