"""Run one task per dataset in parallel, each parent before its children.

Generic: it knows dataset names and a callback, nothing about ZFS. A dataset starts when the
nearest ancestor in the same run has finished; independent subtrees run side by side up to
`threads` at once. What happens after a failure is the `skip_on_error` policy:

- "fail": start nothing new; report the failure once running tasks are done.
- "dataset": go on with everything else, including the failed dataset's children.
- "tree": go on, but skip the failed dataset's descendants.

The workers share one stack of ready datasets under one lock: a worker that finishes a task
records it, makes its children ready in one step and takes the next, all in one turn of the
lock, and wakes only as many idle workers as there are new datasets. No future, queue or
callback object exists per dataset, so a million no-op tasks cost a few seconds of CPU.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Sequence
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
        cut = name.rfind("/")
        while cut > 0:
            head = name[:cut]
            if head in present:
                parent = head
                break
            cut = name.rfind("/", 0, cut)
        parents[name] = parent
    return parents


def children_of(names: Sequence[str]) -> dict[Optional[str], list[str]]:
    """Each name's children in the run (its nearest ancestors' lists), sorted; the roots under None."""
    children: dict[Optional[str], list[str]] = {}
    for name, parent in nearest_parents(names).items():
        kids = children.get(parent)
        if kids is None:
            children[parent] = [name]
        else:
            kids.append(name)
    for kids in children.values():
        kids.sort()
    return children


class _Tree:
    """The shared state of one `run_tree`: ready datasets, results, how many tasks run or wait."""

    def __init__(
        self,
        children: dict[Optional[str], list[str]],
        task: Callable[[str], None],
        policy: str,
        cancel: Optional[threading.Event],
    ) -> None:
        self.children = children
        self.task = task
        self.policy = policy
        self.cancel = cancel
        self.ready = list(reversed(children.get(None, [])))  # a stack: pop() takes names in sorted order
        self.result = ScheduleResult()
        self.running = 0
        self.idle = 0
        self.stop = False
        self.cond = threading.Condition(threading.Lock())
        self.context = contextvars.copy_context()  # the caller's (the jobrunner's sub-job name stays)

    def _finish(self, name: str, error: Optional[BaseException]) -> None:
        """Record a finished task and make its children ready (or skip them). Under the lock."""
        self.running -= 1
        kids = self.children.get(name)
        if error is None:
            self.result.succeeded.append(name)
        else:
            self.result.failed[name] = error
            if self.policy != "dataset":
                self.stop = self.stop or self.policy == "fail"
                if kids:
                    self.result.skipped.extend(_descendants(name, self.children))
                return
        if kids:
            self.ready.extend(reversed(kids))
            if self.idle:
                self.cond.notify(min(self.idle, len(kids)))

    def work(self) -> None:
        """A worker: take a ready dataset, run its task, record it; until nothing is left to do."""
        cond, name, error = self.cond, "", None
        started = False
        while True:
            with cond:
                if started:
                    self._finish(name, error)
                if self.cancel is not None and self.cancel.is_set():
                    self.stop = True
                while not self.ready and self.running and not self.stop:
                    self.idle += 1
                    cond.wait()
                    self.idle -= 1
                if self.stop or not self.ready:
                    cond.notify_all()  # nothing more will be ready: the others end too
                    return
                name = self.ready.pop()
                self.running += 1
            started, error = True, None
            try:
                self.context.copy().run(self.task, name)
            except BaseException as exc:  # reported, as a future would have held it
                error = exc

    def skip_rest(self) -> None:
        """After a stop: what was ready, and everything below it, never started."""
        for name in self.ready:
            self.result.skipped.append(name)
            self.result.skipped.extend(_descendants(name, self.children))
        self.ready = []


def run_tree(
    names: Sequence[str],
    task: Callable[[str], None],
    threads: int = 1,
    skip_on_error: str = "fail",
    cancel: Optional[threading.Event] = None,
) -> ScheduleResult:
    """Run `task(name)` for every name, parents first, in parallel. A task fails by raising.

    Tasks run on `threads` worker threads (never on the caller's). Once `cancel` is set nothing
    new starts (as after a failure with "fail").
    """
    if skip_on_error not in SKIP_POLICIES:
        raise ValueError(f"skip_on_error must be one of {SKIP_POLICIES}")
    tree = _Tree(children_of(names), task, skip_on_error, cancel)
    workers = [threading.Thread(target=tree.work, name=f"zferry_{i}") for i in range(max(1, min(threads, len(names))))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    tree.skip_rest()
    return tree.result


def _descendants(name: str, children: dict[Optional[str], list[str]]) -> list[str]:
    out: list[str] = []
    stack = list(children.get(name, []))
    while stack:
        item = stack.pop()
        out.append(item)
        stack.extend(children.get(item, []))
    return sorted(out)
