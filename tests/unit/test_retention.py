"""Pruning selection and `zfs destroy` batching (FR-LCM-004, FR-LCM-005, FR-FLT-008)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_plan import BERLIN, GFS, ts, year_of_snapshots
from zferry.errors import UsageError
from zferry.lifecycle.plan import except_plan_filter, include_plan_filter, parse_plan
from zferry.lifecycle.retention import destroy_arguments, snapshots_to_delete
from zferry.model import Version
from zferry.select.regex import NameFilter
from zferry.select.snapshots import SnapshotFilter, SnapshotGroup
from zferry.select.times import parse_times_and_ranks

UTC = timezone.utc
DAY = 86_400
NOW = 1_700_000_000


def snap(name: str, creation: int, guid: int, dataset: str = "pool/dst", bookmark: bool = False) -> Version:
    return Version(dataset, name, guid=guid, createtxg=guid, creation=creation, is_bookmark=bookmark)


def daily_series(days: list[int], prefix: str = "prod_onsite") -> list[Version]:
    """One snapshot per entry, `d` days before NOW, oldest first."""
    ordered = sorted(days, reverse=True)
    return [snap(f"{prefix}_d{d}_daily", NOW - d * DAY, i + 1) for i, d in enumerate(ordered)]


def names(versions: list[Version]) -> list[str]:
    return [v.name for v in versions]


def times_filter(*values: str) -> SnapshotFilter:
    return SnapshotFilter((SnapshotGroup(times_and_ranks=(parse_times_and_ranks(values, tz=UTC),)),))


# ---- FR-LCM-004 ------------------------------------------------------------------------------


def test_fr_lcm_004_deletes_only_the_selected() -> None:
    dst = daily_series([45, 31, 30, 29, 2])
    older_than_30_days = times_filter("anytime..30 days ago")
    assert names(snapshots_to_delete(dst, older_than_30_days, NOW)) == [
        "prod_onsite_d45_daily",
        "prod_onsite_d31_daily",
    ]


def test_fr_lcm_004_except_inverts() -> None:
    dst = daily_series([45, 31, 30, 29, 2])
    keep_recent = times_filter("30 days ago..anytime")
    assert names(snapshots_to_delete(dst, keep_recent, NOW, except_selected=True)) == [
        "prod_onsite_d45_daily",
        "prod_onsite_d31_daily",
    ]
    assert names(snapshots_to_delete(dst, keep_recent, NOW)) == [
        "prod_onsite_d30_daily",
        "prod_onsite_d29_daily",
        "prod_onsite_d2_daily",
    ]


# ---- FR-LCM-005 ------------------------------------------------------------------------------


def test_fr_lcm_005_snapshot_still_on_source_is_kept() -> None:
    s_old = snap("s_old", NOW - 100 * DAY, 11)
    dst = [s_old, snap("s_mid", NOW - 50 * DAY, 12), snap("s_new", NOW, 13)]
    everything_old = times_filter("anytime..10 days ago")
    assert names(snapshots_to_delete(dst, everything_old, NOW, source_guids={11, 13})) == ["s_mid"]


def test_fr_lcm_005_dummy_source_deletes_it() -> None:
    dst = [snap("s_old", NOW - 100 * DAY, 11), snap("s_new", NOW, 13)]
    assert names(snapshots_to_delete(dst, times_filter("anytime..10 days ago"), NOW, source_guids=None)) == ["s_old"]


def test_latest_common_snapshot_is_never_deleted() -> None:
    dst = [snap("a", 1, 1), snap("b", 2, 2), snap("c", 3, 3)]
    assert names(snapshots_to_delete(dst, SnapshotFilter(), NOW, latest_common_guid=2)) == ["a", "c"]
    assert names(snapshots_to_delete(dst, SnapshotFilter(), NOW, source_guids={1}, latest_common_guid=3)) == ["b"]
    keep_nothing = SnapshotFilter((SnapshotGroup(NameFilter.build(["!.*"], [], "snapshot")),))
    assert names(snapshots_to_delete(dst, keep_nothing, NOW, except_selected=True, latest_common_guid=3)) == ["a", "b"]


def test_except_with_real_source_never_deletes_what_the_source_has() -> None:
    dst = [snap("keep_me", 1, 1), snap("on_source", 2, 2), snap("gone", 3, 3)]
    keep = SnapshotFilter((SnapshotGroup(NameFilter.build(["keep_.*"], [], "snapshot")),))
    assert names(snapshots_to_delete(dst, keep, NOW, except_selected=True, source_guids={2})) == ["gone"]


# ---- FR-FLT-008 and plans as filters ---------------------------------------------------------

DAILY_30 = '{"prod": {"onsite": {"daily": 30}}}'


def test_fr_flt_008_keeps_dailies_younger_than_30_days() -> None:
    days = [d / 2 for d in range(0, 120)]  # two dailies a day for 60 days: 60 of them younger than 30 days
    dst = [snap(f"prod_onsite_{i}_daily", int(NOW - d * DAY), i + 1) for i, d in enumerate(sorted(days, reverse=True))]
    keep = except_plan_filter(parse_plan(DAILY_30, "--delete-dst-snapshots-except-plan"))
    deleted = snapshots_to_delete(dst, keep, NOW, except_selected=True)
    assert {NOW - v.creation for v in deleted} == {int(d * DAY) for d in days if d > 30}
    assert len(dst) - len(deleted) == 61  # 0, 0.5, ..., 30.0 days old


def test_fr_flt_008_keeps_the_latest_30_however_old() -> None:
    dst = daily_series(list(range(100, 40, -1)))  # 60 dailies, all older than 30 days
    keep = except_plan_filter(parse_plan(DAILY_30))
    deleted = snapshots_to_delete(dst, keep, NOW, except_selected=True)
    assert names(deleted) == [f"prod_onsite_d{d}_daily" for d in range(100, 70, -1)]


def test_plan_groups_only_match_their_own_names() -> None:
    dst = [
        snap("prod_onsite_1_daily", NOW, 1),
        snap("prod_offsite_1_daily", NOW, 2),
        snap("prod_onsite_1_hourly", NOW, 3),
        snap("test_onsite_1_daily", NOW, 4),
        snap("manual", NOW, 5),
        snap("prod_onsite_1_daily_not", NOW, 6),
    ]
    keep = except_plan_filter(parse_plan(DAILY_30))
    assert names(snapshots_to_delete(dst, keep, NOW, except_selected=True)) == [
        "prod_offsite_1_daily",
        "prod_onsite_1_hourly",
        "test_onsite_1_daily",
        "manual",
        "prod_onsite_1_daily_not",
    ]


def test_include_plan_with_zero_counts_selects_nothing_and_empty_except_plan_refuses() -> None:
    dst = daily_series([3, 2, 1])
    assert include_plan_filter(parse_plan('{"prod": {"onsite": {"daily": 0}}}')).select(dst, NOW) == []
    assert include_plan_filter(parse_plan("{}")).select(dst, NOW) == []
    assert names(include_plan_filter(parse_plan('{"prod": {"onsite": {"daily": 2}}}')).select(dst, NOW)) == [
        "prod_onsite_d2_daily",
        "prod_onsite_d1_daily",
    ]
    with pytest.raises(UsageError, match="refusing"):
        except_plan_filter(parse_plan("{}"))


def test_include_plan_latest_and_age() -> None:
    dst = daily_series([5, 4, 3, 1])
    plan = parse_plan('{"prod": {"onsite": {"daily": 2, "weekly": 1}}}')
    # latest 2 (d3, d1) or younger than 2 days (d1)
    assert names(include_plan_filter(plan).select(dst, NOW)) == ["prod_onsite_d3_daily", "prod_onsite_d1_daily"]


def test_adhoc_plan_entries_keep_only_the_latest_n() -> None:
    dst = [snap(f"prod_onsite_{i}_adhoc", NOW - 10 + i, i + 1) for i in range(5)]
    keep = except_plan_filter(parse_plan('{"prod": {"onsite": {"adhoc": 2}}}'))
    assert names(snapshots_to_delete(dst, keep, NOW, except_selected=True)) == [
        "prod_onsite_0_adhoc",
        "prod_onsite_1_adhoc",
        "prod_onsite_2_adhoc",
    ]


# ---- GFS over a simulated year ----------------------------------------------------------------


def survivors(created: list[Version], now: int) -> dict[str, list[str]]:
    keep = except_plan_filter(parse_plan(GFS))
    deleted = {id(v) for v in snapshots_to_delete(created, keep, now, except_selected=True)}
    kept: dict[str, list[str]] = {}
    for v in created:
        if id(v) not in deleted:
            kept.setdefault(v.name.rsplit("_", 1)[1], []).append(
                datetime.fromtimestamp(v.creation, BERLIN).strftime("%Y-%m-%d %H:%M")
            )
    return kept


def test_gfs_year_survivors_per_period() -> None:
    created = year_of_snapshots()
    kept = survivors(created, ts(BERLIN, 2025, 1, 1))
    assert {p: len(v) for p, v in kept.items()} == {"hourly": 36, "daily": 31, "weekly": 12, "monthly": 12, "yearly": 1}
    assert kept["hourly"][0] == "2024-12-30 12:00" and kept["hourly"][-1] == "2024-12-31 23:00"
    assert kept["daily"] == [f"2024-12-{d:02d} 00:00" for d in range(1, 32)]
    assert kept["weekly"] == [
        "2024-10-13 00:00",
        "2024-10-20 00:00",
        "2024-10-27 00:00",
        "2024-11-03 00:00",
        "2024-11-10 00:00",
        "2024-11-17 00:00",
        "2024-11-24 00:00",
        "2024-12-01 00:00",
        "2024-12-08 00:00",
        "2024-12-15 00:00",
        "2024-12-22 00:00",
        "2024-12-29 00:00",
    ]
    assert kept["monthly"] == [f"2024-{m:02d}-01 00:00" for m in range(1, 13)]
    assert kept["yearly"] == ["2024-01-01 00:00"]


def test_gfs_keeps_the_latest_n_when_snapshots_stopped_long_ago() -> None:
    created = year_of_snapshots()
    kept = survivors(created, ts(BERLIN, 2025, 6, 1))  # five months without new snapshots
    assert {p: len(v) for p, v in kept.items()} == {"hourly": 36, "daily": 31, "weekly": 12, "monthly": 12, "yearly": 1}
    assert kept["hourly"][0] == "2024-12-30 12:00"


# ---- properties -------------------------------------------------------------------------------

versions_strategy = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 1000)), max_size=40).map(
    lambda items: [snap(f"{n}{i}", c, i + 1) for i, (n, c) in enumerate(sorted(items, key=lambda t: t[1]))]
)


@given(
    versions_strategy,
    st.sets(st.integers(1, 45)),
    st.one_of(st.none(), st.integers(1, 45)),
    st.booleans(),
    st.integers(0, 10),
)
def test_never_deletes_source_or_latest_common(
    dst: list[Version], source: set[int], common: int | None, except_selected: bool, n: int
) -> None:
    f = SnapshotFilter(
        (SnapshotGroup(NameFilter.build(["a.*"], [], "snapshot"), (parse_times_and_ranks(["notime", f"latest {n}"]),)),)
    )
    deleted = snapshots_to_delete(
        dst, f, NOW, except_selected=except_selected, source_guids=source, latest_common_guid=common
    )
    assert all(v.guid not in source and v.guid != common for v in deleted)
    assert deleted == [v for v in dst if v in deleted]  # a subsequence of dst, oldest first
    normal = snapshots_to_delete(dst, f, NOW)
    inverted = snapshots_to_delete(dst, f, NOW, except_selected=True)
    assert sorted(v.guid for v in normal + inverted) == [v.guid for v in dst]


# ---- zfs destroy batching ----------------------------------------------------------------------


def test_destroy_arguments_group_by_dataset_and_keep_bookmarks_apart() -> None:
    versions = [
        snap("a", 1, 1, "pool/x"),
        snap("b", 2, 2, "pool/y"),
        snap("c", 3, 3, "pool/x"),
        snap("bm", 4, 4, "pool/x", bookmark=True),
    ]
    assert destroy_arguments(versions) == ["pool/x@a,c", "pool/y@b", "pool/x#bm"]
    assert destroy_arguments([]) == []


def test_destroy_arguments_split_long_lists() -> None:
    versions = [snap(f"prod_onsite_2024-01-01_00:00:{i:05d}_hourly", i, i + 1) for i in range(10_000)]
    args = destroy_arguments(versions)
    assert len(args) > 1
    assert all(len(a) <= 100_000 for a in args)
    assert [n for a in args for n in a.split("@", 1)[1].split(",")] == names(versions)
    assert all(a.startswith("pool/dst@") for a in args)


@given(st.lists(st.text("abcxyz0123456789_", min_size=1, max_size=30), max_size=60), st.integers(40, 200))
def test_destroy_arguments_cover_every_name_once(raw: list[str], limit: int) -> None:
    versions = [snap(n, i, i + 1) for i, n in enumerate(raw)]
    args = destroy_arguments(versions, max_chars=limit)
    assert [n for a in args for n in a.split("@", 1)[1].split(",")] == raw
    assert all(len(a) <= limit for a in args)
