"""Per-dataset planning: common snapshot by GUID, conflicts, and each force flag."""

from __future__ import annotations

from tests.unit.fixtures import history
from zferry.model import Version
from zferry.plan.replication import Conflict, ConflictPolicy, DatasetPlan, Outcome, latest_common, plan_dataset


def on_dst(spec: str) -> list[Version]:
    return history(spec, dataset="dst/ds", start_txg=500)


def plan(
    src: list[Version],
    dst: list[Version],
    policy: ConflictPolicy = ConflictPolicy(),
    exists: bool = True,
    empty: bool = True,
) -> Outcome:
    snaps = [v for v in src if not v.is_bookmark]
    return plan_dataset("src/ds", "dst/ds", src, snaps, exists, dst, empty, policy)


def test_new_destination_gets_full_then_incremental() -> None:
    result = plan(history("s1 s2 s3"), [], exists=False)
    assert isinstance(result, DatasetPlan)
    assert [str(s) for s in result.steps] == ["full src/ds@s1", "-I @s1 src/ds@s3"]
    assert not result.force_receive


def test_common_snapshot_is_found_by_guid_not_by_name() -> None:
    src = history("s1 s2 s3")
    renamed = [Version("dst/ds", "renamed", src[1].guid, 600, 0)]
    assert latest_common(src, renamed) == src[1]
    result = plan(src, renamed)
    assert isinstance(result, DatasetPlan) and [str(s) for s in result.steps] == ["-i @s2 src/ds@s3"]


def test_same_name_different_guid_is_not_common() -> None:
    dst = [Version("dst/ds", "s1", 12345, 600, 0)]
    assert isinstance(plan(history("s1 s2"), dst), Conflict)


def test_up_to_date_is_a_noop() -> None:
    result = plan(history("s1 s2"), on_dst("s1 s2"))
    assert isinstance(result, DatasetPlan) and result.is_noop


def test_diverged_destination_is_a_conflict_naming_the_flag() -> None:
    result = plan(history("s1 s2"), on_dst("s1 x"))
    assert isinstance(result, Conflict) and result.kind == "diverged"
    assert [v.name for v in result.dst_newer] == ["x"]
    assert "--force-rollback-to-latest-common-snapshot" in result.message()


def test_rollback_to_latest_common_resolves_divergence() -> None:
    for policy in (ConflictPolicy(rollback_to_latest_common=True), ConflictPolicy(force=True)):
        result = plan(history("s1 s2"), on_dst("s1 x"), policy)
        assert isinstance(result, DatasetPlan)
        assert result.rollback_to is not None and result.rollback_to.name == "s1" and result.rollback_destroys_newer
        assert [str(s) for s in result.steps] == ["-i @s1 src/ds@s2"]


def test_unrelated_destination_needs_force_then_resyncs() -> None:
    assert isinstance(plan(history("s1 s2"), on_dst("x y")), Conflict)
    result = plan(history("s1 s2"), on_dst("x y"), ConflictPolicy(force=True))
    assert isinstance(result, DatasetPlan)
    assert [v.name for v in result.destroy] == ["x", "y"] and result.force_receive
    assert [s.kind for s in result.steps] == ["full", "-i"]


def test_existing_empty_destination_takes_a_forced_full_receive() -> None:
    result = plan(history("s1"), [], exists=True, empty=True)
    assert isinstance(result, DatasetPlan) and result.force_receive


def test_destination_with_data_and_no_snapshots_is_protected() -> None:
    result = plan(history("s1"), [], exists=True, empty=False)
    assert isinstance(result, Conflict) and result.kind == "has-data"
    forced = plan(history("s1"), [], ConflictPolicy(force=True), exists=True, empty=False)
    assert isinstance(forced, DatasetPlan)


def test_rollback_to_latest_snapshot_only_when_there_is_something_to_send() -> None:
    policy = ConflictPolicy(rollback_to_latest=True)
    result = plan(history("s1 s2"), on_dst("s1"), policy)
    assert isinstance(result, DatasetPlan) and result.rollback_to is not None
    assert not result.rollback_destroys_newer
    idle = plan(history("s1"), on_dst("s1"), policy)
    assert isinstance(idle, DatasetPlan) and idle.is_noop


def test_bookmark_base_when_snapshot_is_gone_and_opt_out() -> None:
    src = [*history("s1"), *history("#s2", start_txg=20), *history("s3", start_txg=30)]
    result = plan(src, on_dst("s1 s2"))
    assert isinstance(result, DatasetPlan) and [str(s) for s in result.steps] == ["-i #s2 src/ds@s3"]
    no_bookmarks = plan(src, on_dst("s1 s2"), ConflictPolicy(use_bookmarks=False))
    assert isinstance(no_bookmarks, Conflict)  # dst@s2 is newer than the only other common snapshot


def test_snapshot_preferred_over_its_bookmark() -> None:
    src = [*history("s1"), *history("#s1")]
    assert not latest_common(src, on_dst("s1")).is_bookmark  # type: ignore[union-attr]
