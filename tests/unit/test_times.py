"""--include-snapshot-times-and-ranks: parsing and evaluation (FR-FLT-005..007)."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zferry.errors import UsageError
from zferry.model import Version
from zferry.select.regex import NameFilter
from zferry.select.snapshots import SnapshotFilter, SnapshotGroup
from zferry.select.times import (
    EMPTY_TIME_RANGE,
    UNIX_TIME_INFINITY,
    Ago,
    Rank,
    RankRange,
    TimeRange,
    TimesAndRanks,
    parse_rank_range,
    parse_time_bound,
    parse_time_range,
    parse_times_and_ranks,
)

UTC = timezone.utc
DAY = 86_400
NOW = 1_700_000_000  # 2023-11-14T22:13:20Z


def snaps(creations: list[int], names: list[str] | None = None) -> list[Version]:
    names = names or [f"s{i}" for i in range(len(creations))]
    return [
        Version("pool/ds", n, guid=1000 + i, createtxg=i + 1, creation=c)
        for i, (n, c) in enumerate(zip(names, creations))
    ]


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def names_of(versions: list[Version]) -> list[str]:
    return [v.name for v in versions]


def select(values: list[str], snapshots: list[Version], now: float = NOW) -> list[str]:
    return names_of(parse_times_and_ranks(values, tz=UTC).select(snapshots, now))


# ---- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("notime", EMPTY_TIME_RANGE),
        ("0..0", TimeRange(0, 0)),
        ("*..*", TimeRange()),
        ("anytime..anytime", TimeRange()),
        ("anytime", TimeRange()),
        ("1728109805..*", TimeRange(1728109805, None)),
        ("1 week ago..anytime", TimeRange(Ago(7 * DAY * 1000), None)),
        ("12weeksago..0secs ago", TimeRange(Ago(84 * DAY * 1000), Ago(0))),
        ("40 mins ago..36hours ago", TimeRange(Ago(40 * 60_000), Ago(36 * 3_600_000))),
        ("90days ago..1 month ago", TimeRange(Ago(90 * DAY * 1000), Ago(round(30.5 * DAY * 1000)))),
        ("2 years ago..500 millis ago", TimeRange(Ago(730 * DAY * 1000), Ago(500))),
        ("3 seconds ago..1 sec ago", TimeRange(Ago(3000), Ago(1000))),
        ("2023-01-01..2023-02-01", TimeRange(utc(2023, 1, 1), utc(2023, 2, 1))),
    ],
)
def test_parse_time_range(text: str, expected: TimeRange) -> None:
    assert parse_time_range(text, tz=UTC) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-10-05", utc(2024, 10, 5)),
        ("2024-10-05T14:48:55", utc(2024, 10, 5, 14, 48, 55)),
        ("2024-10-05 14:48", utc(2024, 10, 5, 14, 48)),
        ("2024-10-05T14:48:55Z", utc(2024, 10, 5, 14, 48, 55)),
        ("2024-10-05T14:48:55+02", utc(2024, 10, 5, 12, 48, 55)),
        ("2024-10-05T14:48:55-04:30", utc(2024, 10, 5, 19, 18, 55)),
        ("2024-10-05T14:48:55.999+0000", utc(2024, 10, 5, 14, 48, 55)),
    ],
)
def test_parse_iso_bounds(text: str, expected: int) -> None:
    assert parse_time_bound(text, tz=UTC) == expected


def test_naive_iso_is_read_in_the_given_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_time_bound("2024-07-01T12:00", tz=berlin) == utc(2024, 7, 1, 10)
    assert parse_time_bound("2024-01-01T12:00", tz=berlin) == utc(2024, 1, 1, 11)
    assert parse_time_bound("2024-07-01", tz=ZoneInfo("America/New_York")) == utc(2024, 7, 1, 4)


@pytest.mark.parametrize(
    "text", ["2024-01-01", "yesterday..today", "1 fortnight ago..*", "2024-13-01..*", "5 days..*", "..", "-5..*"]
)
def test_bad_time_ranges_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--include-snapshot-times-and-ranks"):
        parse_time_range(text, tz=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("latest 10", RankRange(Rank("latest", 0), Rank("latest", 10))),
        ("oldest 5", RankRange(Rank("oldest", 0), Rank("oldest", 5))),
        ("latest10%", RankRange(Rank("latest", 0), Rank("latest", 10, True))),
        ("all except latest 3", RankRange(Rank("latest", 3), Rank("latest", 100, True))),
        ("all except oldest 5", RankRange(Rank("oldest", 5), Rank("oldest", 100, True))),
        ("all except latest 10%", RankRange(Rank("latest", 10, True), Rank("latest", 100, True))),
        ("allexceptoldest 20%", RankRange(Rank("oldest", 20, True), Rank("oldest", 100, True))),
        ("oldest 1..oldest 10", RankRange(Rank("oldest", 1), Rank("oldest", 10))),
        ("latest 2..latest 50%", RankRange(Rank("latest", 2), Rank("latest", 50, True))),
    ],
)
def test_parse_rank_range(text: str, expected: RankRange) -> None:
    assert parse_rank_range(text) == expected


@pytest.mark.parametrize(
    "text", ["latest", "newest 3", "latest 101%", "oldest 1..latest 3", "all except oldest 1..oldest 3", "top 5", ""]
)
def test_bad_rank_ranges_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="rank"):
        parse_rank_range(text)


def test_times_and_ranks_needs_a_time_range() -> None:
    with pytest.raises(UsageError, match="TIMERANGE"):
        parse_times_and_ranks([])


# ---- evaluation ----------------------------------------------------------------------------


def test_fr_flt_005_absolute_range_selects_january_only() -> None:
    creations = [
        utc(2022, 12, 31, 23, 59, 59),
        utc(2023, 1, 1),
        utc(2023, 1, 15),
        utc(2023, 1, 31, 23, 59, 59),
        utc(2023, 2, 1),
        utc(2023, 3, 1),
    ]
    assert select(["2023-01-01..2023-02-01"], snaps(creations)) == ["s1", "s2", "s3"]


def test_fr_flt_005_relative_range_selects_last_seven_days() -> None:
    creations = [NOW - 30 * DAY, NOW - 7 * DAY - 1, NOW - 7 * DAY, NOW - 3 * DAY, NOW - 1]
    assert select(["1 week ago..anytime"], snaps(creations)) == ["s2", "s3", "s4"]


def test_relative_bounds_round_up_fractional_now() -> None:
    creations = [NOW - 10, NOW - 9]
    # lo = ceil(NOW + 0.5 - 10) = NOW - 9
    assert select(["10 secs ago..*"], snaps(creations), now=NOW + 0.5) == ["s1"]


def test_bounds_in_the_wrong_order_are_swapped() -> None:
    creations = [NOW - 5 * DAY, NOW - 2 * DAY, NOW]
    assert select(["anytime..3 days ago"], snaps(creations)) == ["s0"]
    assert select(["1 days ago..3 days ago"], snaps(creations)) == ["s1"]
    assert select([f"{NOW}..{NOW - 3 * DAY}"], snaps(creations)) == ["s1"]


def test_fr_flt_006_latest_ten() -> None:
    s = snaps(list(range(100, 125)))
    assert select(["0..0", "latest 10"], s) == [f"s{i}" for i in range(15, 25)]


def test_fr_flt_006_all_except_oldest_five() -> None:
    s = snaps(list(range(100, 112)))
    assert select(["notime", "all except oldest 5"], s) == [f"s{i}" for i in range(5, 12)]


@pytest.mark.parametrize(
    ("rank", "expected"),
    [
        ("oldest 3", [0, 1, 2]),
        ("latest 3", [7, 8, 9]),
        ("all except latest 3", [0, 1, 2, 3, 4, 5, 6]),
        ("all except oldest 8", [8, 9]),
        ("oldest 1..oldest 4", [1, 2, 3]),
        ("latest 1..latest 3", [7, 8]),
        ("latest 20%", [8, 9]),
        ("oldest 25%", [0, 1]),  # round(2.5) == 2
        ("all except latest 30%", [0, 1, 2, 3, 4, 5, 6]),
        ("oldest 100%", list(range(10))),
        ("oldest 0%", []),
        ("latest 0", []),
        ("latest 50", list(range(10))),
        ("oldest 4..oldest 2", [2, 3]),
    ],
)
def test_rank_ranges_over_ten(rank: str, expected: list[int]) -> None:
    assert select(["notime", rank], snaps(list(range(10)))) == [f"s{i}" for i in expected]


def test_time_and_rank_are_a_union() -> None:
    # daily snapshots 20..1 days ago, but none in the last 10 days except one
    creations = [NOW - d * DAY for d in range(20, 10, -1)] + [NOW - 2 * DAY]
    chosen = select(["7 days ago..anytime", "latest 3"], snaps(creations))
    assert chosen == ["s8", "s9", "s10"]  # latest 3 regardless of age
    many = [NOW - d * 3600 for d in range(100, 0, -1)]  # hourly for 100 hours
    chosen = select(["2 days ago..anytime", "latest 3"], snaps(many))
    assert chosen == [f"s{i}" for i in range(52, 100)]  # the last 48 hours, more than 3


def test_deletion_example_without_union() -> None:
    # delete dailies older than 7 days but keep the latest 7 regardless of age
    creations = [NOW - d * DAY for d in range(20, 0, -1)]
    group = SnapshotGroup(
        times_and_ranks=(
            parse_times_and_ranks(["notime", "all except latest 7"]),
            parse_times_and_ranks(["anytime..7 days ago"]),
        )
    )
    assert names_of(group.select(snaps(creations), NOW)) == [f"s{i}" for i in range(0, 13)]
    sparse = [NOW - d * DAY for d in (40, 30, 20)]
    assert names_of(group.select(snaps(sparse), NOW)) == []


def test_several_rank_ranges_apply_one_after_the_other() -> None:
    s = snaps(list(range(20)))
    # oldest 2 of the latest 10
    assert select(["notime", "latest 10", "oldest 2"], s) == ["s10", "s11"]
    # a time range keeps its matches through every rank range; the second rank range ranks
    # the 13 survivors of the first (s0..s2 by time, s10..s19 by rank), whose oldest 2 are s0, s1
    assert select(["0..3", "latest 10", "oldest 2"], s) == ["s0", "s1", "s2"]
    assert select(["0..3", "latest 10", "latest 2"], s) == ["s0", "s1", "s2", "s18", "s19"]


def test_anytime_with_ranks_selects_everything() -> None:
    s = snaps(list(range(5)))
    assert select(["*..*", "latest 1"], s) == names_of(s)


def test_fr_flt_007_regex_then_latest_five() -> None:
    names = [f"snap{i}{'d' if i % 3 == 0 else 'h'}" for i in range(30)]
    s = snaps(list(range(30)), names)
    group = SnapshotGroup(NameFilter.build([".*d"], [], "snapshot"), (parse_times_and_ranks(["0..0", "latest 5"]),))
    assert names_of(group.select(s, NOW)) == ["snap15d", "snap18d", "snap21d", "snap24d", "snap27d"]
    # the other order ranks first, then filters names: only the d among the latest 5
    reordered = SnapshotGroup(group.names, group.times_and_ranks, ranks_first=True)
    assert names_of(reordered.select(s, NOW)) == ["snap27d"]


def test_fr_flt_007_groups_are_a_union() -> None:
    s = snaps([1, 2, 3, 4], ["a", "b", "c", "ab"])
    f = SnapshotFilter(
        (SnapshotGroup(NameFilter.build(["a"], [], "snapshot")), SnapshotGroup(NameFilter.build(["b"], [], "snapshot")))
    )
    assert names_of(f.select(s, NOW)) == ["a", "b"]
    assert not f.selects_all
    assert SnapshotFilter().selects_all


def test_filter_group_with_times_is_not_select_all() -> None:
    f = SnapshotFilter((SnapshotGroup(times_and_ranks=(parse_times_and_ranks(["notime", "latest 1"]),)),))
    assert not f.selects_all
    assert names_of(f.select(snaps([1, 2, 3]), NOW)) == ["s2"]


def test_hundred_thousand_snapshots_give_exact_counts() -> None:
    s = snaps(list(range(NOW - 100_000, NOW)))
    assert len(TimesAndRanks(TimeRange(Ago(3_600_000), None), (parse_rank_range("latest 10"),)).select(s, NOW)) == 3600
    assert len(parse_times_and_ranks(["notime", "all except latest 1%"]).select(s, NOW)) == 99_000
    assert parse_times_and_ranks(["notime", "oldest 1"]).select(s, NOW)[0] is s[0]


def test_unbounded_end_is_past_any_creation() -> None:
    assert TimeRange(5, None).resolve(NOW) == (5, UNIX_TIME_INFINITY)


# ---- properties ----------------------------------------------------------------------------

creation_lists = st.lists(st.integers(0, 2_000_000_000), max_size=60).map(sorted)


@given(creation_lists, st.integers(0, 80), st.sampled_from(["latest", "oldest"]))
def test_rank_never_exceeds_n(creations: list[int], n: int, kind: str) -> None:
    s = snaps(creations)
    chosen = parse_times_and_ranks(["notime", f"{kind} {n}"]).select(s, NOW)
    assert len(chosen) == min(n, len(s))
    assert chosen == (s[:n] if kind == "oldest" else s[len(s) - min(n, len(s)) :])


@given(creation_lists, st.integers(0, 80), st.sampled_from(["latest", "oldest"]), st.booleans())
def test_all_except_complements(creations: list[int], n: int, kind: str, percent: bool) -> None:
    n = min(n, 100) if percent else n
    unit = "%" if percent else ""
    s = snaps(creations)
    some = parse_times_and_ranks(["notime", f"{kind} {n}{unit}"]).select(s, NOW)
    rest = parse_times_and_ranks(["notime", f"all except {kind} {n}{unit}"]).select(s, NOW)
    assert {id(v) for v in some}.isdisjoint({id(v) for v in rest})
    assert sorted(some + rest, key=lambda v: v.createtxg) == s


@given(creation_lists, st.integers(0, 2_000_000_000), st.integers(0, 2_000_000_000), st.integers(0, 30))
def test_union_contains_both_parts_in_order(creations: list[int], lo: int, hi: int, n: int) -> None:
    s = snaps(creations)
    both = parse_times_and_ranks([f"{lo}..{hi}", f"latest {n}"]).select(s, NOW)
    times = parse_times_and_ranks([f"{lo}..{hi}"]).select(s, NOW)
    ranks = parse_times_and_ranks(["notime", f"latest {n}"]).select(s, NOW)
    assert {id(v) for v in both} == {id(v) for v in times} | {id(v) for v in ranks}
    assert both == [v for v in s if v in both]  # order kept
    a, b = min(lo, hi), max(lo, hi)
    assert all(a <= v.creation < b for v in times)
