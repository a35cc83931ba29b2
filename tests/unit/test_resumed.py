"""A resumed transfer that completed a dataset's last snapshot is reported as that dataset's send."""

from __future__ import annotations

from tests.unit.fixtures import history
from zferry.lifecycle.bookmarks_job import bookmark_candidates
from zferry.plan.resumed import completed_by_resume


def test_the_latest_snapshot_on_both_sides_is_the_step_target() -> None:
    src = history("a b c #b", "src/ds")
    dst = list(reversed(history("a b c", "dst/ds")))  # listing order does not matter: createtxg does
    plan = completed_by_resume("src/ds", "dst/ds", src, dst)
    assert plan is not None and plan.src == "src/ds" and plan.dst == "dst/ds"
    assert [s.target.full_name for s in plan.steps] == ["src/ds@c"]
    assert [snap.name for snap, _ in bookmark_candidates(plan, src, "hourly")] == ["c"]


def test_a_destination_snapshot_the_source_lacks_is_not_the_target() -> None:
    plan = completed_by_resume("src/ds", "dst/ds", history("a b", "src/ds"), history("a b x", "dst/ds"))
    assert plan is not None and plan.steps[-1].target.name == "b"


def test_nothing_in_common_reports_nothing() -> None:
    assert completed_by_resume("src/ds", "dst/ds", history("a #b", "src/ds"), history("b x", "dst/ds")) is None
