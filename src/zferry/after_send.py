"""What goes with a dataset's send: the source's protective hold beside it
(`HoldKeeper.protect`), its bookmarks right after it, and, once every dataset of the pair is done,
the pair's holds moved to the new latest common snapshots (`HoldKeeper.apply`).

The bookmarks of a sent dataset are created in the background while the run goes on (the next
dataset's send, the holds' move): in the test VM each `zfs` process costs tenths of a second and
each of these waits for a transaction group, so a run that made them one after another paid for
each in turn (bench/bench_replication.py, the fixed cost). Deferring them loses no safety: every
sent snapshot is held on the source from before its send until a later run moves the hold, so
nothing can prune it before its bookmark exists; and `finish` waits for them all.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from zferry.exec.background import Background
from zferry.exec.runner import Runner
from zferry.holds import HoldKeeper
from zferry.inventory import Side
from zferry.lifecycle.bookmarks_job import Bookmarker
from zferry.model import Inventory, Version
from zferry.plan.replication import DatasetPlan


class AfterSend:
    """The replication hooks of one pair: `before_send`, `on_sent`, then `finish` after the run."""

    def __init__(self, runner: Runner, src: Side, dst: Side, bookmarks: str, threads: int = 1) -> None:
        self.keeper = HoldKeeper(runner, src, dst)
        self._bookmarker = Bookmarker(runner, src, bookmarks)
        self._slots = threading.BoundedSemaphore(max(1, threads))  # bookmark processes at once
        self._lock = threading.Lock()
        self._pending: list[Background[None]] = []

    @property
    def bookmarks(self) -> int:
        """How many bookmarks were created."""
        return self._bookmarker.created

    def before_send(self, plan: DatasetPlan, src_versions: Sequence[Version]) -> None:
        """Hold on the source what `plan` will send (see `zferry.holds`)."""
        self.keeper.protect(plan, src_versions)

    def on_sent(self, plan: DatasetPlan, src_versions: Sequence[Version]) -> None:
        """Note the sent dataset for the holds' move, and start creating its bookmarks."""
        self.keeper.note(plan, src_versions)
        if not plan.steps or self._bookmarker.mode == "none":
            return
        self._slots.acquire()  # a dataset thread waits here while `threads` bookmark calls are running

        def bookmark() -> None:
            try:
                self._bookmarker(plan, src_versions)
            finally:
                self._slots.release()

        with self._lock:
            self._pending.append(Background(bookmark, "zferry-bookmark"))

    def finish(self, src_inventory: Inventory, dst_inventory: Inventory) -> None:
        """Move the holds (both sides at once) while the last bookmarks are made; wait for all of it."""
        try:
            self.keeper.apply(src_inventory, dst_inventory)
        finally:
            with self._lock:
                pending, self._pending = self._pending, []
            for job in pending:
                job.result()
