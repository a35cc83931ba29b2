"""The pure parts of the lifecycle steps: filter groups from the command line, bookmarks to create,
datasets to delete, prune decisions, creation batching, and the snapshot cache."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Optional

import pytest

from tests.unit.fixtures import history
from zferry import zfs
from zferry.cli.lifecycle_options import build_lifecycle_config, build_snapshot_filter, check_dummy_pairs
from zferry.cli.main import main
from zferry.cli.options import build_parser
from zferry.errors import UsageError
from zferry.exec.host import Host
from zferry.exec.probe import Capabilities
from zferry.exec.runner import Runner
from zferry.inventory import Side
from zferry.lifecycle.bookmarks_job import bookmark_candidates, free_bookmark_name
from zferry.lifecycle.config import CreateConfig, LifecycleConfig
from zferry.lifecycle.create_job import create_snapshots, due_by_name, entry_keys
from zferry.lifecycle.dataset_deletion import empty_tops, orphan_tops, removable_tops, without_subtrees
from zferry.lifecycle.plan import parse_plan
from zferry.lifecycle.prune_job import protected_guids, prune_dataset_versions, without_versions
from zferry.model import Dataset, Endpoint, Inventory, Version
from zferry.observe.snapshot_cache import SnapshotCache, latest_by_key
from zferry.plan.replication import DatasetPlan
from zferry.plan.steps import SendStep
from zferry.replicate import ReplicationConfig
from zferry.select.datasets import DatasetFilter
from zferry.zfs import argument_batches as batches

NOW = 1_700_000_000 + 3600 * 10


def names(versions: list[Version]) -> list[str]:
    return [v.name for v in versions]


def bookmark_names(candidates: list[tuple[Version, Optional[str]]]) -> list[Optional[str]]:
    return [name for _, name in candidates]


# -- filter groups --------------------------------------------------------------------------------


def test_groups_follow_command_line_order() -> None:
    args = build_parser().parse_args(
        [
            "src/a",
            "dst/a",
            "--include-snapshot-regex",
            "a.*",
            "--include-snapshot-times-and-ranks",
            "notime",
            "latest 1",
            "--new-snapshot-filter-group",
            "--include-snapshot-regex",
            "b.*",
        ]
    )
    selection = build_snapshot_filter(args)
    snaps = history("a1 b1 a2 b2 c1")
    assert names(selection.select(snaps, NOW)) == ["b1", "a2", "b2"]


def test_times_before_regex_rank_first() -> None:
    args = build_parser().parse_args(
        [
            "src/a",
            "dst/a",
            "--include-snapshot-times-and-ranks",
            "notime",
            "latest 2",
            "--include-snapshot-regex",
            "a.*",
        ]
    )
    group = build_snapshot_filter(args).groups[0]
    assert group.ranks_first
    assert names(group.select(history("a1 a2 b1 a3"), NOW)) == ["a3"]  # latest 2 are b1 a3, then regex


def test_no_filters_select_everything_and_empty_groups_are_dropped() -> None:
    args = build_parser().parse_args(["src/a", "dst/a", "--new-snapshot-filter-group"])
    assert build_snapshot_filter(args).selects_all


def test_except_plan_adds_its_groups() -> None:
    args = build_parser().parse_args(
        [
            "src/a",
            "dst/a",
            "--delete-dst-snapshots",
            "--delete-dst-snapshots-except-plan",
            json.dumps({"p": {"o": {"daily": 1}}}),
        ]
    )
    snaps = history("p_o_2024-01-01_daily p_o_2024-01-02_daily other")
    week_later = 1_700_000_000 + 7 * 86400  # both dailies are older than a day: only the latest 1 is kept
    assert names(build_snapshot_filter(args).select(snaps, week_later)) == ["p_o_2024-01-02_daily"]
    assert len(build_snapshot_filter(args).select(snaps, NOW)) == 2  # both younger than a day
    assert build_lifecycle_config(args).delete_except


@pytest.mark.parametrize(
    "argv",
    [
        ["--delete-dst-snapshots-except"],
        ["--create-src-snapshots"],
        ["--create-src-snapshots", "--create-src-snapshots-plan", "{'a': {'b': {'7minutely': 1}}}"],
        ["--delete-empty-dst-datasets"],
        ["--daily_hour", "24"],
        ["--create-src-snapshots-timezone", "Mars/Olympus"],
    ],
)
def test_invalid_lifecycle_options_are_usage_errors(argv: list[str]) -> None:
    args = build_parser().parse_args(["src/a", "dst/a", *argv])
    with pytest.raises(UsageError):
        build_lifecycle_config(args)


def test_dummy_needs_skip_replication() -> None:
    pairs = [(Endpoint("dummy"), Endpoint("dst/a"))]
    with pytest.raises(UsageError, match="--skip-replication"):
        check_dummy_pairs(pairs, LifecycleConfig())
    check_dummy_pairs(pairs, LifecycleConfig(skip_replication=True))
    with pytest.raises(UsageError):
        check_dummy_pairs([(Endpoint("dummy"), Endpoint("dummy"))], LifecycleConfig(skip_replication=True))


def test_dummy_without_skip_replication_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dummy", "dst/a", "--delete-dst-snapshots"]) == 2
    assert "--skip-replication" in capsys.readouterr().err


# -- bookmarks ------------------------------------------------------------------------------------


def _plan(src: list[Version], steps: list[SendStep]) -> DatasetPlan:
    return DatasetPlan("src/ds", "dst/ds", steps=tuple(steps))


def test_bookmarks_all_every_sent_snapshot() -> None:
    src = history("a b c d")
    plan = _plan(src, [SendStep(None, src[0]), SendStep(src[0], src[3], intermediates=True)])
    assert bookmark_names(bookmark_candidates(plan, src, "all")) == ["a", "b", "c", "d"]


def test_bookmarks_hourly_keeps_full_latest_and_long_periods() -> None:
    src = history("s1 x_secondly y_minutely z_hourly w_12hourly s6")
    plan = _plan(src, [SendStep(None, src[0]), SendStep(src[0], src[5], intermediates=True)])
    assert bookmark_names(bookmark_candidates(plan, src, "hourly")) == ["s1", "z_hourly", "w_12hourly", "s6"]
    assert bookmark_names(bookmark_candidates(plan, src, "minutely")) == [
        "s1",
        "y_minutely",
        "z_hourly",
        "w_12hourly",
        "s6",
    ]
    assert bookmark_candidates(plan, src, "none") == []


def test_bookmarks_skip_existing_and_dash_i_sends_only_target() -> None:
    src = history("a b c #b")
    plan = _plan(src, [SendStep(src[0], src[2], intermediates=False)])
    assert bookmark_names(bookmark_candidates(plan, src, "all")) == ["c"]
    plan = _plan(src, [SendStep(src[0], src[2], intermediates=True)])
    assert bookmark_names(bookmark_candidates(plan, src, "all")) == ["c"]  # b already has a bookmark


def test_taken_bookmark_name_gets_part_of_the_guid_at_the_end_of_the_timestamp() -> None:
    snaps = history("plain prod_onsite_2026-10-25_02:00:00_hourly")
    # bookmarks of other (renamed or destroyed) snapshots hold both names
    other = [replace(v, guid=v.guid + 1, createtxg=5, is_bookmark=True) for v in snaps]
    plan = _plan(snaps, [SendStep(None, snaps[0]), SendStep(snaps[0], snaps[1])])
    g0, g1 = (f"{v.guid:016x}" for v in snaps)
    assert bookmark_names(bookmark_candidates(plan, [*other, *snaps], "all")) == [
        f"plain-{g0[:8]}",
        f"prod_onsite_2026-10-25_02:00:00-{g1[:8]}_hourly",
    ]
    done = replace(snaps[1], name=f"prod_onsite_2026-10-25_02:00:00-{g1[:8]}_hourly", is_bookmark=True)
    assert bookmark_names(bookmark_candidates(plan, [*other, *snaps, done], "all")) == [f"plain-{g0[:8]}"]


def test_when_every_bookmark_name_is_taken_there_is_none() -> None:
    snap = history("s_daily")[0]
    guid = f"{snap.guid:016x}"
    assert free_bookmark_name(snap, {"s_daily"}) == f"s-{guid[:8]}_daily"
    assert free_bookmark_name(snap, {"s_daily", f"s-{guid[:8]}_daily"}) == f"s-{guid}_daily"
    assert free_bookmark_name(snap, {"s_daily", f"s-{guid[:8]}_daily", f"s-{guid}_daily"}) is None
    long = replace(snap, dataset="p/" + "d" * 230, name="n" * 20)
    assert free_bookmark_name(long, {"n" * 20}) is None  # a longer name would not fit ZFS's 255 characters


# -- dataset deletion -----------------------------------------------------------------------------


def _inventory(spec: dict[str, str]) -> Inventory:
    return Inventory({n: Dataset(n) for n in spec}, {n: tuple(history(v, n)) for n, v in spec.items() if v})


def test_removable_tops_keep_subtrees_with_unselected_or_needed_members() -> None:
    existing = ["d", "d/a", "d/a/x", "d/b", "d/b/y", "d/c"]
    tops = removable_tops(existing, set(existing) - {"d/b/y"}, lambda n: n != "d/c")
    assert tops == ["d/a"]  # d/b keeps its unselected child, d/c fails the condition, so d stays


def test_orphans_and_empty() -> None:
    dst = _inventory({"d": "s1", "d/a": "s1", "d/gone": "s1", "d/gone/x": "", "d/e": "", "d/e/f": "#b"})
    selected = list(dst.datasets)
    assert orphan_tops(dst, "d", selected, {"", "a", "e", "e/f"}) == ["d/gone"]
    assert empty_tops(dst, selected) == ["d/gone/x"]
    assert empty_tops(dst, selected, count_bookmarks=False) == ["d/e", "d/gone/x"]
    assert sorted(without_subtrees(dst, ["d/e"]).datasets) == ["d", "d/a", "d/gone", "d/gone/x"]
    assert orphan_tops(dst, "d", selected, set()) == ["d"]  # dummy source: everything selected goes


# -- pruning --------------------------------------------------------------------------------------


def test_prune_protects_source_guids_latest_common_and_held() -> None:
    dst_snaps = [*history("a b c d", "dst/ds")]
    held = Version("dst/ds", "e", 999, 60, NOW, False, userrefs=1)
    dst = Inventory({"dst/ds": Dataset("dst/ds")}, {"dst/ds": (*dst_snaps, held)})
    src = tuple(history("b #c", "src/ds"))
    config = ReplicationConfig()
    lifecycle = LifecycleConfig(delete_snapshots="snapshots")
    doomed, kept = prune_dataset_versions("dst/ds", dst, src, config, lifecycle, NOW)
    assert names(doomed) == ["a", "d"] and names(kept) == ["e"]  # b on source, c latest common (bookmark)
    doomed, _ = prune_dataset_versions("dst/ds", dst, None, config, lifecycle, NOW)
    assert names(doomed) == ["a", "b", "c", "d"]
    assert without_versions(dst, {"dst/ds": doomed}).snapshots("dst/ds") == (held,)


def test_protected_guids_crosscheck() -> None:
    src = tuple(history("a #b"))
    assert protected_guids(src, bookmarks=False, other_kind=True) == {v.guid for v in src}
    assert protected_guids(src, bookmarks=False, other_kind=False) == {src[0].guid}
    assert protected_guids(src, bookmarks=True, other_kind=False) == {src[1].guid}
    assert protected_guids(None, True, True) is None


# -- creation -------------------------------------------------------------------------------------


def test_due_by_name_groups_datasets_per_name() -> None:
    create = CreateConfig(parse_plan(json.dumps({"p": {"o": {"hourly": 1, "daily": 1}}}), for_creation=True))
    fresh = [Version("t/b", "p_o_2023-11-14_22:00:00_daily", 1, 1, NOW - 60)]
    by_name = due_by_name({"t/a": [], "t/b": fresh}, NOW, create)
    daily = [n for n in by_name if n.endswith("_daily")]
    hourly = [n for n in by_name if n.endswith("_hourly")]
    assert by_name[daily[0]] == ["t/a"] and by_name[hourly[0]] == ["t/a", "t/b"]


def test_batches_split_long_argument_lists() -> None:
    assert batches(["aaaa", "bbbb", "cc"], limit=10) == [["aaaa", "bbbb"], ["cc"]]
    assert batches(["x" * 20], limit=10) == [["x" * 20]]


# -- cache ----------------------------------------------------------------------------------------


def test_cache_round_trip_and_invalidation(tmp_path: object) -> None:
    plan = parse_plan(json.dumps({"p": {"o": {"daily": 1}}}))
    keys = entry_keys(plan.active)
    snaps = [Version("t/a", "p_o_2024-01-01_daily", 1, 1, 100), Version("t/a", "x", 2, 2, 200)]
    latest = latest_by_key(snaps, keys)
    assert list(latest.values()) == [("p_o_2024-01-01_daily", 100)]
    cache = SnapshotCache(str(tmp_path), "local", "t")
    cache.store("t/a", 500, latest, listed_at=501)  # too close to the change: not stored
    assert cache.lookup("t/a", 500, list(keys)) is None
    cache.store("t/a", 500, latest, listed_at=502)
    cache.save()
    again = SnapshotCache(str(tmp_path), "local", "t")
    assert again.lookup("t/a", 500, list(keys)) == latest
    assert again.lookup("t/a", 501, list(keys)) is None  # snapshots changed since
    assert again.lookup("t/a", 500, ["other*key"]) is None  # a plan entry it does not know
    assert again.lookup("t/a", None, list(keys)) is None  # OpenZFS < 2.2: no property
    assert SnapshotCache(str(tmp_path), "otherhost", "t").lookup("t/a", 500, list(keys)) is None


class CannedZfs(Runner):
    """A runner answering the creation job's zfs calls from a fixed state; records what it changes."""

    def __init__(self, changed: int, snapshots: str) -> None:
        super().__init__()
        self.changed, self.snapshots, self.changes = changed, snapshots, []  # type: list[list[str]]

    def run(self, host: Host, argv: Sequence[str], *, changes: bool = False, **_: object) -> str:
        if changes:
            self.changes.append(list(argv))
            return ""
        if any("snapshots_changed" in word for word in argv):
            return f"t/a\t{self.changed}\t77\n"
        return self.snapshots


@pytest.mark.parametrize(
    ("host_seconds", "elapsed", "stored"),
    [
        (1001, 0.0, False),  # the host read 1001 at the probe: the same seconds as the change at 1000
        (1001, 1.5, True),  # ... and 1.5 s passed since on our monotonic clock: past 1002
        (990, 5.0, False),  # a host clock behind: its 995 is before the change
        (1030, 0.0, True),
    ],
)
def test_creation_cache_reads_snapshots_changed_in_the_hosts_clock(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, host_seconds: int, elapsed: float, stored: bool
) -> None:
    """As the replication cache does: the listing time is the host's own clock reading from the
    probe plus the monotonic time since; our wall clock (here far off) plays no part."""
    create = CreateConfig(parse_plan(json.dumps({"p": {"o": {"daily": 1}}}), for_creation=True))
    daily = "t/a@p_o_2024-01-01_00:00:00_daily\t7\t1\t1000\t0\n"
    monkeypatch.setattr(time, "time", lambda: 50_000.0)  # our wall clock: irrelevant to the cache
    monkeypatch.setattr(time, "monotonic", lambda: 100.0 + elapsed)
    caps = Capabilities(True, frozenset(), clock_offset=host_seconds - 50_000.0, host_clock=(host_seconds, 100.0))
    side = Side(Host(name="remote"), "t", caps)
    cache = SnapshotCache(str(tmp_path), "remote", "t")
    runner = CannedZfs(1000, daily)
    create_snapshots(runner, side, create, DatasetFilter(), True, None, cache, now=1011.0)
    assert not runner.changes  # the daily is not due yet
    assert (cache.lookup("t/a", 1000, list(entry_keys(create.plan.active)), "77") is not None) == stored


def test_creation_compares_due_times_in_the_hosts_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host whose clock is behind ours stamps creation times in its clock: `now` must be its clock
    too, or an hourly snapshot taken at 10:00 (our clock) would be due again at once."""
    create = CreateConfig(parse_plan(json.dumps({"p": {"o": {"hourly": 1}}}), for_creation=True))
    ours = 1_700_000_000.0 + 600  # 10 minutes into an hour
    created = int(ours) - 1800  # the host, 30 minutes behind, stamped it half an hour "earlier"
    listing = f"t/a@p_o_x_hourly\t7\t1\t{created}\t0\n"
    monkeypatch.setattr(time, "time", lambda: ours)
    inventory = Inventory({"t/a": Dataset("t/a")}, zfs.parse_versions(listing, detail=True), detailed=True)
    side = Side(Host(name="remote"), "t", Capabilities(True, frozenset(), clock_offset=-1800.0))
    runner = CannedZfs(0, "")
    create_snapshots(runner, side, create, DatasetFilter(), True, inventory, None)
    assert runner.changes == []
