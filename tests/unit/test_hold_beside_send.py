"""The source's protective hold runs beside the send, not before it (one `zfs` wait less per
dataset), and the run waits for it before it counts the dataset as sent."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from tests.unit.fixtures import history
from zferry.exec.host import LOCAL
from zferry.exec.runner import Runner
from zferry.inventory import Side
from zferry.model import Dataset, Inventory, Version
from zferry.plan.replication import DatasetPlan
from zferry.replicate import PairReplication, ReplicationConfig


class _Sender:
    """Stands in for the stream: `execute` starts, then waits until it may end."""

    def __init__(self, started: threading.Event, may_end: threading.Event) -> None:
        self.started, self.may_end = started, may_end
        self.executed: list[DatasetPlan] = []

    def prepare(self) -> None:
        return None

    def ensure_parent(self, dst_name: str) -> None:
        pass

    def execute(self, plan: DatasetPlan) -> None:
        self.started.set()
        assert self.may_end.wait(5), "the send waited for the hold: they did not run at once"
        self.executed.append(plan)


def _job() -> tuple[PairReplication, _Sender, list[str]]:
    job = PairReplication(Runner(), ReplicationConfig(), Side(LOCAL, "p"), Side(LOCAL, "q"))
    job.lists.src = Inventory({"p/x": Dataset("p/x")}, {"p/x": tuple(history("a b", "p/x"))})
    job.lists.dst = Inventory.empty()
    send_started, hold_done = threading.Event(), threading.Event()
    sender = _Sender(send_started, hold_done)
    job._sender = sender  # type: ignore[assignment]
    events: list[str] = []

    def hold(plan: DatasetPlan, versions: Sequence[Version]) -> None:
        assert send_started.wait(5), "the hold ran before the send started"
        events.append("held")
        hold_done.set()

    job.before_send = hold
    job.on_sent = lambda plan, versions: events.append("sent")
    return job, sender, events


def test_the_hold_runs_while_the_send_runs_and_lands_before_the_dataset_counts_as_sent() -> None:
    job, sender, events = _job()
    assert job._replicate("p/x", "q/x") == 2
    assert [p.dst for p in sender.executed] == ["q/x"]
    assert events == ["held", "sent"]


def test_a_failed_send_still_waits_for_its_hold() -> None:
    job, sender, events = _job()

    def failing(plan: DatasetPlan) -> None:
        sender.started.set()
        sender.may_end.wait(5)
        raise RuntimeError("receive failed")

    sender.execute = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="receive failed"):
        job._replicate("p/x", "q/x")
    assert events == ["held"]
