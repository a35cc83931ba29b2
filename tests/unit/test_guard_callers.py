"""What the callers of the destroy guard tell it: replication plans, pruning, dataset deletion,
the per-pair dataset filter, the dummy whole-tree confirmation, and the hold tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.fixtures import history
from zferry.cli.main import main
from zferry.exec.host import Host
from zferry.holds import hold_tag
from zferry.inventory import Side
from zferry.lifecycle.config import LifecycleConfig
from zferry.lifecycle.dataset_deletion import empty_tops
from zferry.lifecycle.prune_job import prune_destruction
from zferry.model import Dataset, Inventory, Version
from zferry.plan import guard
from zferry.plan.guard import Action
from zferry.plan.replication import Conflict, ConflictPolicy, DatasetPlan, destructions, plan_dataset
from zferry.plan.steps import SendStep
from zferry.select.datasets import DatasetFilter


def _plan(src: list[Version], dst: list[Version], policy: ConflictPolicy = ConflictPolicy()) -> object:
    return plan_dataset("src/ds", "dst/ds", src, src, True, dst, False, policy)


def test_same_named_snapshot_of_another_guid_is_a_conflict_before_anything_is_sent() -> None:
    src = history("a b duplicate c")
    old = Version("dst/ds", "duplicate", 4242, 505, 0)  # from an older life, below the common snapshot
    dst = [old, *history("a b", "dst/ds", start_txg=510)]
    conflict = _plan(src, dst)
    assert isinstance(conflict, Conflict) and conflict.kind == "name-clash"
    assert "dst/ds@duplicate" in conflict.message() and "--force" in conflict.message()
    forced = _plan(src, dst, ConflictPolicy(force=True))
    assert isinstance(forced, DatasetPlan) and forced.destroy == (old,)
    (destruction,) = destructions(forced, ConflictPolicy(force=True), {v.guid for v in src})
    assert destruction.action is Action.DESTROY_VERSIONS and guard.decide(destruction).allowed


def test_the_same_snapshot_under_both_names_is_no_clash() -> None:
    src = history("a b c")
    assert isinstance(_plan(src, history("a", "dst/ds")), DatasetPlan)


def test_replication_destructions_carry_their_option_and_facts() -> None:
    src = history("a b c")
    newer = Version("dst/ds", "x", 77, 900, 0)
    policy = ConflictPolicy(rollback_to_latest_common=True)
    plan = _plan(src, [*history("a", "dst/ds"), newer], policy)
    assert isinstance(plan, DatasetPlan)
    (rollback,) = destructions(plan, policy, {v.guid for v in src})
    assert rollback.action is Action.ROLLBACK and rollback.versions == (newer,)
    assert rollback.why == "--force-rollback-to-latest-common-snapshot" and guard.decide(rollback).allowed
    # a resync with --force destroys every destination snapshot, then receives with -F
    unrelated = [Version("dst/ds", "z", 5, 600, 0)]
    resync = _plan(src, unrelated, ConflictPolicy(force=True))
    assert isinstance(resync, DatasetPlan)
    kinds = [d.action for d in destructions(resync, ConflictPolicy(force=True), set())]
    assert kinds == [Action.DESTROY_VERSIONS, Action.FORCED_RECEIVE]


def test_forced_receive_into_a_dataset_holding_data_needs_force() -> None:
    src = history("a")
    assert isinstance(plan_dataset("s", "d", src, src, True, [], False), Conflict)
    empty = plan_dataset("s", "d", src, src, True, [], True)
    assert isinstance(empty, DatasetPlan)
    (receive,) = destructions(empty, ConflictPolicy(), set())
    assert receive.action is Action.FORCED_RECEIVE and guard.decide(receive).allowed
    forced = plan_dataset("s", "d", src, src, True, [], False, ConflictPolicy(force=True))
    assert isinstance(forced, DatasetPlan)
    (receive,) = destructions(forced, ConflictPolicy(force=True), set())
    assert receive.facts.holds_data and guard.decide(receive).allowed
    # the guard refuses the same plan if --force was not given
    assert not guard.decide(destructions(forced, ConflictPolicy(), set())[0]).allowed


def test_pruning_a_dataset_the_source_lacks_is_refused() -> None:
    doomed = history("a b", "dst/db")
    lifecycle = LifecycleConfig(delete_snapshots="snapshots")
    src = tuple(history("x", "src/db"))
    renamed = prune_destruction("dst/db", doomed, src, False, lifecycle, None)
    assert not guard.decide(renamed).allowed
    listed_nothing = prune_destruction("dst/db", doomed, (), True, lifecycle, None)
    assert not guard.decide(listed_nothing).allowed
    assert guard.decide(prune_destruction("dst/db", doomed, None, False, lifecycle, None)).allowed  # dummy
    with_datasets = LifecycleConfig(delete_snapshots="snapshots", delete_datasets=True)
    assert guard.decide(prune_destruction("dst/db", doomed, src, False, with_datasets, None)).allowed
    assert guard.decide(prune_destruction("dst/db", doomed, src, True, lifecycle, None)).allowed


def test_empty_datasets_hold_no_data_and_have_a_source_counterpart() -> None:
    datasets = {
        "d": Dataset("d", used_by_dataset=0),
        "d/live": Dataset("d/live", used_by_dataset=5 << 20),  # data, no snapshots: not empty
        "d/unknown": Dataset("d/unknown", used_by_dataset=None),
        "d/small": Dataset("d/small", used_by_dataset=1000),
        "d/renamed": Dataset("d/renamed", used_by_dataset=0),
    }
    dst = Inventory(datasets, {"d": tuple(history("s", "d"))})
    assert empty_tops(dst, list(datasets)) == ["d/renamed", "d/small"]
    assert empty_tops(dst, list(datasets), may_go=lambda n: n != "d/renamed") == ["d/small"]


def test_absolute_dataset_names_become_relative_to_the_pair() -> None:
    base = DatasetFilter.build(exclude_datasets=["tank/data/scratch", "other"], include_datasets=["/tank/data"])
    pair = base.relative_to("tank/data")
    assert pair.exclude_datasets == ("scratch", "other") and pair.include_datasets == ("",)
    names = ["backup/data", "backup/data/scratch", "backup/data/scratch/x", "backup/data/keep"]
    assert pair.select("backup/data", names) == ["backup/data", "backup/data/keep"]
    src = ["tank/data", "tank/data/scratch", "tank/data/keep"]
    assert pair.select("tank/data", src) == ["tank/data", "tank/data/keep"]


def test_dummy_source_deleting_datasets_needs_a_selection_or_confirmation(
    no_zfs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--skip-replication", "-r", "--delete-dst-datasets", "dummy", "backup/tank"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--delete-dst-datasets-whole-tree" in err and "--include-dataset" in err
    assert not no_zfs.exists()
    assert main(["--delete-dst-datasets-whole-tree", "src/x", "dst/x"]) == 2


def test_hold_tags_identify_the_pair() -> None:
    one = hold_tag(Side(Host(), "backup/a"))
    assert one.startswith("zferry-") and one != hold_tag(Side(Host(), "backup/b"))
    assert one == hold_tag(Side(Host(), "backup/a"))


class _Recorder:
    """Records argv lists; answers `zfs holds` with what `holds` says."""

    dry_run = False

    def __init__(self, holds: dict[str, set[str]]) -> None:
        self.holds = holds
        self.calls: list[list[str]] = []

    def run(self, host: Host, argv: list[str], **_: object) -> str:
        self.calls.append(list(argv))
        if argv[1] == "holds":
            return "".join(f"{s}\t{t}\t0\n" for s in argv[4:] for t in sorted(self.holds.get(s, ())))
        return ""


def test_hold_keeper_releases_before_holding_in_one_call_each_per_side() -> None:
    from zferry.holds import HoldKeeper

    dst_side = Side(Host(), "dst/r")
    tag = hold_tag(dst_side)
    src_inv = Inventory({}, {"src/r": tuple(history("a b c", "src/r")), "src/r/x": tuple(history("a c", "src/r/x"))})
    dst_inv = Inventory({}, {"dst/r": tuple(history("a b", "dst/r")), "dst/r/x": tuple(history("a", "dst/r/x"))})
    stale = {"src/r@b": {tag, "other"}, "src/r/x@a": {tag}, "dst/r@b": {tag}, "dst/r/x@a": {tag}}
    runner = _Recorder(stale)
    keeper = HoldKeeper(runner, Side(Host(), "src/r"), dst_side)  # type: ignore[arg-type]
    for name in ("r", "r/x"):
        src_snaps = history("a c", f"src/{name}")
        plan = DatasetPlan(f"src/{name}", f"dst/{name}", steps=(SendStep(src_snaps[0], src_snaps[1], True),))
        keeper.note(plan, src_snaps)
    keeper.apply(src_inv, dst_inv)
    calls = sorted(runner.calls, key=lambda c: c[-1].startswith("dst/"))  # the sides run at once; each in order
    verbs = [(c[1], c[2:]) for c in calls]
    assert [v for v, _ in verbs] == ["holds", "release", "hold", "holds", "release", "hold"]
    assert verbs[1][1][0] == tag and sorted(verbs[1][1][1:]) == ["src/r/x@a", "src/r@b"]
    assert verbs[2][1] == [tag, "src/r@c", "src/r/x@c"]
    assert verbs[5][1] == [tag, "dst/r@c", "dst/r/x@c"]
    runner.calls.clear()
    HoldKeeper(runner, Side(Host(), "src/r"), dst_side).apply(src_inv, dst_inv)  # type: ignore[arg-type]
    assert runner.calls == []  # a run that sent nothing touches no hold
