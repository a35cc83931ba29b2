"""Lists from the snapshot cache decide "up to date" and plain sends only: a conflict, a destroy
or rollback (the destroy guard's input) and a send that bookmarks from a cached source list are
planned again from fresh lists (DESIGN: cached lists never feed the destroy guard or bookmarks)."""

from __future__ import annotations

from tests.unit.fixtures import history
from zferry.exec.host import LOCAL
from zferry.exec.runner import Runner
from zferry.inventory import Side
from zferry.model import Dataset, Inventory
from zferry.plan.replication import ConflictPolicy
from zferry.replicate import PairReplication, ReplicationConfig


def _job(src: str, dst: str, cached: str, policy: ConflictPolicy = ConflictPolicy()) -> PairReplication:
    """A pair whose inventories say `src` / `dst` and came from the cache on the sides in `cached`."""
    job = PairReplication(Runner(), ReplicationConfig(policy=policy), Side(LOCAL, "p"), Side(LOCAL, "q"))
    job.lists.src = Inventory(
        {"p/x": Dataset("p/x")},
        {"p/x": tuple(history(src, "p/x"))},
        cached=frozenset({"p/x"} if "src" in cached else ()),
    )
    job.lists.dst = Inventory(
        {"q/x": Dataset("q/x")},
        {"q/x": tuple(history(dst, "q/x"))},
        cached=frozenset({"q/x"} if "dst" in cached else ()),
    )
    return job


def _fresh_needed(job: PairReplication) -> bool:
    outcome = job._plan("p/x", "q/x", job.lists.dst.datasets["q/x"])
    return job._needs_fresh_lists(outcome, "p/x", "q/x")


def test_up_to_date_and_plain_sends_may_come_from_the_cache() -> None:
    assert not _fresh_needed(_job("a b", "a b", "src dst"))  # a no-op on cached lists
    assert not _fresh_needed(_job("a b c", "a b", "dst"))  # the source changed (listed), the destination cached


def test_a_send_from_a_cached_source_list_is_planned_again() -> None:
    assert _fresh_needed(_job("a b c", "a b", "src"))  # its bookmarks follow the source list


def test_destroys_rollbacks_and_conflicts_never_decide_on_cached_lists() -> None:
    rollback = ConflictPolicy(rollback_to_latest_common=True)
    assert _fresh_needed(_job("a b", "a b c", "dst", rollback))  # would roll back c on the destination
    assert _fresh_needed(_job("a b", "a b c", "dst"))  # a conflict: its message must be about fresh lists
    assert _fresh_needed(_job("a b", "a b c", "src", rollback))
    assert not _fresh_needed(_job("a b", "a b c", "", rollback))  # fresh lists already
