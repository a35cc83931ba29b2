"""Runs a task's work in a thread of its own and turns whatever happens into the task's end state."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

from zferry.errors import Interrupted, ZferryError
from zferry.server.errors import ApiError
from zferry.server.tasks import CANCELLED, FAILED, SUCCEEDED, Task, TaskStore

log = logging.getLogger("zferry")
Work = Callable[[Task], Optional[dict[str, Any]]]


class Workers:
    """The threads of running tasks; `cancel_all` stops them (DELETE of each, or SIGTERM)."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def launch(self, task: Task, work: Work) -> None:
        """Start `work(task)` in a thread; its return value is the task's result."""
        thread = threading.Thread(target=self._run, args=(task, work), name=f"zferry-task-{task.id[:8]}", daemon=True)
        with self._lock:
            self._threads[task.id] = thread
        thread.start()

    def _run(self, task: Task, work: Work) -> None:
        self.store.start(task)
        try:
            result = work(task)
        except Interrupted:
            self.store.finish(task, CANCELLED, error="cancelled; its processes were terminated")
        except ApiError as error:
            self.store.finish(task, FAILED, error=f"{error.message} ({error.hint})" if error.hint else error.message)
        except ZferryError as error:
            self.store.finish(task, FAILED, error=str(error))
        except Exception as error:  # a bug: the task fails, the server goes on
            log.exception("task %s crashed", task.id)
            self.store.finish(task, FAILED, error=f"internal error: {type(error).__name__}: {error}")
        else:
            self.store.finish(task, SUCCEEDED, result)
        finally:
            with self._lock:
                self._threads.pop(task.id, None)

    def wait(self, task: Task, timeout: float) -> None:
        """Wait up to `timeout` seconds for the task's thread to end."""
        with self._lock:
            thread = self._threads.get(task.id)
        if thread is not None:
            thread.join(timeout)

    def cancel(self, task: Task, timeout: float = 10.0) -> None:
        """Ask the task to stop (its runner terminates its process trees) and wait for it."""
        task.cancel.set()
        self.wait(task, timeout)

    def cancel_all(self, timeout: float = 10.0) -> None:
        """Cancel every running task (SIGTERM)."""
        tasks = self.store.running()
        for task in tasks:
            task.cancel.set()
        for task in tasks:
            self.wait(task, timeout)
