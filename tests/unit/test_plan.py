"""Snapshot plans: parsing, naming, due checks across time zones and DST (FR-LCM-001..003)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zferry.errors import UsageError
from zferry.lifecycle.naming import DEFAULT_TIMEFORMAT, SnapshotNaming, make_naming, with_timestamp_tag
from zferry.lifecycle.periods import Period, PeriodAnchors, first_instant, next_boundary, parse_period, resolve_timezone
from zferry.lifecycle.plan import PlanEntry, due_snapshot_names, next_due_time, parse_plan
from zferry.model import Version

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600


def ts(tz: Optional[timezone | ZoneInfo], *args: int) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp())


def version(name: str, creation: float, txg: int = 1, bookmark: bool = False) -> Version:
    return Version("pool/ds", name, guid=txg, createtxg=txg, creation=int(creation), is_bookmark=bookmark)


def due(plan: str, existing: list[Version], now: float, tz: object = UTC, **anchors: int) -> list[str]:
    naming = SnapshotNaming(DEFAULT_TIMEFORMAT, tz)  # type: ignore[arg-type]
    return due_snapshot_names(existing, now, parse_plan(plan, for_creation=True), naming, PeriodAnchors(**anchors))


# ---- parsing -------------------------------------------------------------------------------


def test_parse_json_and_python_literal_alike() -> None:
    text = (
        '{"prod": {"onsite": {"secondly": 40, "10minutely": 6, "hourly": 36, "daily": 31, "weekly": 12, '
        '"monthly": 18, "yearly": 5}, "us-west": {"daily": 0}}}'
    )
    plan = parse_plan(text)
    assert plan == parse_plan(text.replace('"', "'"))
    assert [(e.org, e.target, e.period_name, e.count) for e in plan.entries][:3] == [
        ("prod", "onsite", "secondly", 40),
        ("prod", "onsite", "10minutely", 6),
        ("prod", "onsite", "hourly", 36),
    ]
    assert len(plan.entries) == 8
    assert len(plan.active) == 7
    assert plan.entries[1].period == Period(10, "minutely")


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2]",
        "{'prod': 5}",
        "{'prod': {'onsite': 5}}",
        "{'prod': {'onsite': {'daily': -1}}}",
        "{'prod': {'onsite': {'daily': True}}}",
        "{'prod': {'onsite': {'daily': 1.5}}}",
        "{'prod': {'onsite': {'daily': '3'}}}",
        "{'my_org': {'onsite': {'daily': 3}}}",  # '_' separates the name parts
        "{'prod': {'on_site': {'daily': 3}}}",
        "{'prod': {'onsite': {'dai_ly': 3}}}",
        "{'prod/x': {'onsite': {'daily': 3}}}",
        "{'prod': {'on@site': {'daily': 3}}}",
        "{'prod': {'on site': {'daily': 3}}}",
        "{'prod': {'onsite': {'daily;rm': 3}}}",
        "{'1prod': {'onsite': {'daily': 3}}}",
        "{'': {'onsite': {'daily': 3}}}",
        "{1: {'onsite': {'daily': 3}}}",
        "__import__('os').system('true')",
        "{'prod': {'onsite': {'daily': 2**3}}}",
        "not a plan",
    ],
)
def test_bad_plans_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--create-src-snapshots-plan"):
        parse_plan(text)


@pytest.mark.parametrize("period", ["7hourly", "5monthly", "7minutely", "13secondly", "7millisecondly"])
def test_creation_periods_must_recur_daily(period: str) -> None:
    text = f"{{'prod': {{'onsite': {{'{period}': 1}}}}}}"
    parse_plan(text)  # fine as a filter
    with pytest.raises(UsageError, match="divide"):
        parse_plan(text, for_creation=True)


def test_parse_period() -> None:
    assert parse_period("hourly") == Period(1, "hourly")
    assert parse_period("12hourly") == Period(12, "hourly")
    assert parse_period("100millisecondly") == Period(100, "millisecondly")
    assert parse_period("adhoc") is None
    assert parse_period("0hourly") is None
    assert parse_period("hourly2") is None


def test_anchors_are_range_checked() -> None:
    with pytest.raises(UsageError, match="--daily_hour"):
        PeriodAnchors(daily_hour=24)
    with pytest.raises(UsageError, match="--weekly_weekday"):
        PeriodAnchors(weekly_weekday=7)
    with pytest.raises(UsageError, match="--monthly_monthday"):
        PeriodAnchors(monthly_monthday=0)


# ---- naming (FR-LCM-002, FR-LCM-003 AC1) -----------------------------------------------------


def test_fr_lcm_002_default_name_pattern() -> None:
    now = ts(UTC, 2024, 11, 6, 8, 30, 5)
    names = due("{'prod': {'offsite': {'daily': 30}}}", [], now)
    assert names == ["prod_offsite_2024-11-06_08:30:05_daily"]
    assert re.fullmatch(r"prod_offsite_\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d_daily", names[0])


def test_fr_lcm_002_custom_timeformat() -> None:
    naming = make_naming("%Y%m%d", "UTC")
    plan = parse_plan("{'prod': {'offsite': {'daily': 30}}}")
    assert due_snapshot_names([], ts(UTC, 2024, 11, 6, 8, 30, 5), plan, naming) == ["prod_offsite_20241106_daily"]


def test_fr_lcm_003_timestamp_in_new_york_time() -> None:
    now = ts(UTC, 2024, 7, 1, 3, 0, 0)  # 23:00 the day before in New York (EDT)
    naming = make_naming(DEFAULT_TIMEFORMAT, "America/New_York")
    plan = parse_plan("{'prod': {'onsite': {'hourly': 1}}}")
    assert due_snapshot_names([], now, plan, naming) == ["prod_onsite_2024-06-30_23:00:00_hourly"]


@pytest.mark.parametrize(
    ("fmt", "tz", "expected"),
    [
        ("%Y-%m-%d_%H:%M:%S.%f", "UTC", "2023-11-14_22:13:20.123456"),
        ("%Y-%m-%d_%H:%M:%S.%F", "UTC", "2023-11-14_22:13:20.123"),
        ("%Y-%m-%d_%H:%M:%S%z", "+0530", "2023-11-15_03:43:20z0530"),
        ("%Y-%m-%d_%H:%M:%S%z", "-04:00", "2023-11-14_18:13:20-0400"),
        ("%Y-%m-%dT%H-%M-%S", "Europe/Berlin", "2023-11-14T23-13-20"),
        ("%Y-%m-%d_%H:%M:%S", "Asia/Kolkata", "2023-11-15_03:43:20"),
    ],
)
def test_timestamps(fmt: str, tz: str, expected: str) -> None:
    assert make_naming(fmt, tz).timestamp(1_700_000_000.123456) == expected


@pytest.mark.parametrize("fmt", ["%Y/%m/%d", "%Y %m", "%Y@%H", "%Y#"])
def test_unsafe_timeformats_are_rejected(fmt: str) -> None:
    with pytest.raises(UsageError, match="--create-src-snapshots-timeformat"):
        make_naming(fmt, "UTC")


def test_timezones() -> None:
    assert resolve_timezone("") is None
    assert resolve_timezone("local") is None
    assert resolve_timezone("UTC") == UTC
    assert resolve_timezone("+0530") == timezone(timedelta(hours=5, minutes=30))
    assert resolve_timezone("-04:00") == timezone(-timedelta(hours=4))
    assert resolve_timezone("Europe/Vienna") == ZoneInfo("Europe/Vienna")
    for bad in ("Mars/Base", "+2500", "EST5EDT6", "../etc/passwd"):
        with pytest.raises(UsageError, match="--create-src-snapshots-timezone"):
            resolve_timezone(bad)


# ---- due checks (FR-LCM-001, FR-LCM-003 AC2) ---------------------------------------------------

HOURLY = "{'prod': {'onsite': {'hourly': 24}}}"


def test_fr_lcm_001_not_due_after_59_minutes_due_after_61() -> None:
    last = ts(UTC, 2024, 5, 1, 10)
    existing = [version("prod_onsite_2024-05-01_10:00:00_hourly", last)]
    assert due(HOURLY, existing, last + 59 * 60) == []
    assert due(HOURLY, existing, last + 61 * 60) == ["prod_onsite_2024-05-01_11:01:00_hourly"]
    assert due(HOURLY, existing, last + 60 * 60) == ["prod_onsite_2024-05-01_11:00:00_hourly"]


def test_late_snapshot_resumes_the_schedule() -> None:
    late = ts(UTC, 2024, 5, 1, 10, 40)  # taken late: the next one is still due at 11:00
    existing = [version("prod_onsite_2024-05-01_10:40:00_hourly", late)]
    assert due(HOURLY, existing, ts(UTC, 2024, 5, 1, 10, 59, 59)) == []
    assert due(HOURLY, existing, ts(UTC, 2024, 5, 1, 11)) == ["prod_onsite_2024-05-01_11:00:00_hourly"]


def test_fr_lcm_003_daily_hour_anchor() -> None:
    plan = "{'prod': {'onsite': {'daily': 7}}}"
    yesterday = ts(UTC, 2024, 5, 1, 2)
    existing = [version("prod_onsite_2024-05-01_02:00:00_daily", yesterday)]
    assert due(plan, existing, ts(UTC, 2024, 5, 2, 1, 59), daily_hour=2) == []
    assert due(plan, existing, ts(UTC, 2024, 5, 2, 2), daily_hour=2) == ["prod_onsite_2024-05-02_02:00:00_daily"]
    # without the anchor it was due at midnight
    assert due(plan, existing, ts(UTC, 2024, 5, 2, 0), daily_hour=0) == ["prod_onsite_2024-05-02_00:00:00_daily"]


def test_first_snapshot_is_due_at_once_and_zero_counts_never() -> None:
    plan = "{'prod': {'onsite': {'hourly': 0, 'daily': 3}, 'offsite': {'weekly': 0}}}"
    assert due(plan, [], ts(UTC, 2024, 5, 1, 10, 17)) == ["prod_onsite_2024-05-01_10:17:00_daily"]


def test_longer_periods_first_and_adhoc_last_and_always() -> None:
    plan = "{'prod': {'onsite': {'adhoc': 1, 'hourly': 2, 'yearly': 1, '10minutely': 1, 'daily': 1}}}"
    now = ts(UTC, 2024, 5, 1, 10)
    names = due(plan, [], now)
    assert [n.rsplit("_", 1)[1] for n in names] == ["yearly", "daily", "hourly", "10minutely", "adhoc"]
    existing = [version(n, now, i) for i, n in enumerate(names)]
    assert due(plan, existing, now + 60) == ["prod_onsite_2024-05-01_10:01:00_adhoc"]


def test_even_if_not_due() -> None:
    plan = parse_plan(HOURLY)
    now = ts(UTC, 2024, 5, 1, 10)
    existing = [version("prod_onsite_2024-05-01_10:00:00_hourly", now)]
    naming = SnapshotNaming(DEFAULT_TIMEFORMAT, UTC)
    assert due_snapshot_names(existing, now + 5, plan, naming) == []
    assert due_snapshot_names(existing, now + 5, plan, naming, even_if_not_due=True) == [
        "prod_onsite_2024-05-01_10:00:05_hourly"
    ]


def test_only_matching_snapshots_count() -> None:
    now = ts(UTC, 2024, 5, 1, 10, 30)
    recent = now - 60
    others = [
        version("prod_offsite_2024-05-01_10:29:00_hourly", recent, 1),  # other target
        version("test_onsite_2024-05-01_10:29:00_hourly", recent, 2),  # other org
        version("prod_onsite_2024-05-01_10:29:00_daily", recent, 3),  # other period
        version("prod_onsite_2024-05-01_10:29:00_hourly", recent, 4, bookmark=True),  # a bookmark
        version("prod_onsite_2024-05-01_10:29:00_2hourly", recent, 5),
    ]
    assert due(HOURLY, others, now) == ["prod_onsite_2024-05-01_10:30:00_hourly"]
    assert due(HOURLY, [*others, version("prod_onsite_x_hourly", recent, 6)], now) == []


def test_empty_target_matches_only_names_with_a_year_next() -> None:
    entry = PlanEntry("prod", "", "daily", 1)
    assert entry.matches("prod_2024-05-01_10:00:00_daily")
    assert not entry.matches("prod_onsite_2024-05-01_10:00:00_daily")
    assert re.fullmatch(entry.name_regex, "prod_2024-05-01_daily")
    assert not re.fullmatch(entry.name_regex, "prod_onsite_2024_daily")
    assert PlanEntry("prod", "onsite", "daily", 1).name_regex == "prod_onsite_.*_daily"


def test_next_due_time() -> None:
    entry = parse_plan(HOURLY).entries[0]
    last = ts(UTC, 2024, 5, 1, 10, 15)
    naming = SnapshotNaming(DEFAULT_TIMEFORMAT, UTC)
    assert next_due_time([version("prod_onsite_x_hourly", last)], entry, naming, PeriodAnchors()) == last + 45 * 60
    assert next_due_time([], entry, naming, PeriodAnchors()) is None


# ---- DST ---------------------------------------------------------------------------------------


def simulate(plan_text: str, tz: object, start: int, end: int, step: int, **anchors: int) -> list[Version]:
    """Run the due check every `step` seconds from start to end (exclusive); return what was created."""
    plan = parse_plan(plan_text, for_creation=True)
    naming = SnapshotNaming(DEFAULT_TIMEFORMAT, tz)  # type: ignore[arg-type]
    anchor = PeriodAnchors(**anchors)
    latest: dict[str, Version] = {}
    created: list[Version] = []
    for now in range(start, end, step):
        existing = sorted(latest.values(), key=lambda v: v.createtxg)
        for name in due_snapshot_names(existing, now, plan, naming, anchor):
            v = version(name, now, len(created) + 1)
            created.append(v)
            latest[name.rsplit("_", 1)[1]] = v
    return created


def local_times(versions: list[Version], suffix: str, tz: ZoneInfo) -> list[str]:
    return [
        datetime.fromtimestamp(v.creation, tz).strftime("%m-%d %H:%M%z") for v in versions if v.name.endswith(suffix)
    ]


@pytest.mark.parametrize(
    ("tz", "start", "hourly_utc_hours"),
    [
        (BERLIN, ts(UTC, 2024, 3, 30, 22), list(range(22, 24)) + list(range(0, 6))),  # spring forward 03-31
        (BERLIN, ts(UTC, 2024, 10, 26, 22), list(range(22, 24)) + list(range(0, 6))),  # fall back 10-27
        (NEW_YORK, ts(UTC, 2024, 3, 10, 4), list(range(4, 12))),  # spring forward 03-10
        (NEW_YORK, ts(UTC, 2024, 11, 3, 4), list(range(4, 12))),  # fall back 11-03
    ],
)
def test_hourly_snapshots_every_real_hour_across_dst(tz: ZoneInfo, start: int, hourly_utc_hours: list[int]) -> None:
    created = simulate("{'prod': {'onsite': {'hourly': 36}}}", tz, start, start + 8 * HOUR, 300)
    hours = [datetime.fromtimestamp(v.creation, UTC).hour for v in created]
    assert hours == hourly_utc_hours
    assert [b.creation - a.creation for a, b in zip(created, created[1:])] == [HOUR] * 7


def test_berlin_spring_forward_names_and_dailies() -> None:
    start = ts(BERLIN, 2024, 3, 30, 12)
    created = simulate(
        "{'prod': {'onsite': {'hourly': 36, 'daily': 31}}}",
        BERLIN,
        start,
        start + 48 * HOUR,
        600,
        daily_hour=2,
        daily_minute=30,
    )
    # 02:30 did not exist on 03-31: the first instant after the gap
    assert local_times(created, "_daily", BERLIN) == ["03-30 12:00+0100", "03-31 03:00+0200", "04-01 02:30+0200"]
    hourly = [v.name for v in created if v.name.endswith("_hourly")]
    assert "prod_onsite_2024-03-31_01:00:00_hourly" in hourly
    assert "prod_onsite_2024-03-31_03:00:00_hourly" in hourly
    assert not any("2024-03-31_02:" in n for n in hourly)  # that hour did not exist
    assert len(hourly) == 48


def test_berlin_fall_back_one_daily_per_day_at_anchor() -> None:
    start = ts(BERLIN, 2024, 10, 25, 12)
    created = simulate(
        "{'prod': {'onsite': {'daily': 31, '30minutely': 4}}}",
        BERLIN,
        start,
        start + 96 * HOUR,
        300,
        daily_hour=2,
        daily_minute=30,
    )
    assert local_times(created, "_daily", BERLIN) == [
        "10-25 12:00+0200",
        "10-26 02:30+0200",
        "10-27 02:30+0200",
        "10-28 02:30+0100",
        "10-29 02:30+0100",
    ]
    halves = [v.creation for v in created if v.name.endswith("_30minutely")]
    assert len(halves) == 96 * 2  # 96 real hours, a snapshot every 30 real minutes
    assert {b - a for a, b in zip(halves, halves[1:])} == {1800}
    names = [v.name for v in created if v.name.endswith("_30minutely")]
    assert len(set(names)) == len(names)
    assert "prod_onsite_2024-10-27_02:30:00_30minutely" in names  # the first run of the repeated hour
    assert "prod_onsite_2024-10-27_02:30:00dst_30minutely" in names  # its second run


def test_new_york_weekly_and_monthly_anchors() -> None:
    start = ts(NEW_YORK, 2024, 2, 26)
    created = simulate(
        "{'prod': {'onsite': {'weekly': 4, 'monthly': 3}}}",
        NEW_YORK,
        start,
        start + 35 * 86400,
        HOUR,
        weekly_weekday=1,
        weekly_hour=6,
        monthly_monthday=10,
        monthly_hour=9,
    )
    assert local_times(created, "_weekly", NEW_YORK) == [
        "02-26 00:00-0500",
        "02-26 06:00-0500",
        "03-04 06:00-0500",
        "03-11 06:00-0400",
        "03-18 06:00-0400",
        "03-25 06:00-0400",
    ]
    assert local_times(created, "_monthly", NEW_YORK) == ["02-26 00:00-0500", "03-10 09:00-0400"]


@pytest.mark.parametrize(
    ("tz", "expected_utc"),
    [
        (ZoneInfo("Asia/Kolkata"), (18, 30)),
        (ZoneInfo("Australia/Lord_Howe"), (13, 0)),  # +11 in January (DST of 30 minutes)
        (timezone(timedelta(hours=-4)), (4, 0)),
        (UTC, (0, 0)),
    ],
)
def test_daily_at_local_midnight_in_other_zones(tz: object, expected_utc: tuple[int, int]) -> None:
    start = ts(UTC, 2024, 1, 9, 12)  # ticks every 5 minutes: three local midnights in three days
    created = simulate("{'prod': {'onsite': {'daily': 3}}}", tz, start, start + 3 * 86400, 300)
    later = [datetime.fromtimestamp(v.creation, UTC) for v in created[1:]]
    assert len(later) == 3
    assert {(t.hour, t.minute) for t in later} == {expected_utc}


def test_yearly_and_multi_month_boundaries() -> None:
    anchors = PeriodAnchors(yearly_month=7, yearly_monthday=31, monthly_monthday=31)
    after = datetime(2023, 8, 1, tzinfo=UTC)
    assert next_boundary(after, Period(1, "yearly"), anchors, UTC) == datetime(2024, 7, 31, tzinfo=UTC)
    assert next_boundary(after, Period(2, "yearly"), anchors, UTC) == datetime(2025, 7, 31, tzinfo=UTC)
    assert next_boundary(after, Period(1, "monthly"), anchors, UTC) == datetime(2023, 8, 31, tzinfo=UTC)
    feb = datetime(2024, 2, 1, tzinfo=UTC)
    assert next_boundary(feb, Period(1, "monthly"), anchors, UTC) == datetime(2024, 2, 29, tzinfo=UTC)
    assert next_boundary(feb, Period(3, "monthly"), anchors, UTC) == datetime(2024, 4, 30, tzinfo=UTC)
    assert next_boundary(
        datetime(2024, 5, 1, 12, 1, tzinfo=UTC), Period(12, "hourly"), PeriodAnchors(), UTC
    ) == datetime(2024, 5, 2, tzinfo=UTC)


@given(
    st.integers(1_600_000_000, 1_800_000_000),
    st.sampled_from(
        [
            Period(1, "hourly"),
            Period(15, "minutely"),
            Period(1, "daily"),
            Period(1, "weekly"),
            Period(1, "monthly"),
            Period(2, "hourly"),
        ]
    ),
    st.sampled_from([BERLIN, NEW_YORK, UTC, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("Asia/Kolkata")]),
)
def test_next_boundary_is_strictly_later_and_within_a_period(instant: int, period: Period, tz: object) -> None:
    after = datetime.fromtimestamp(instant, UTC)
    nxt = next_boundary(after, period, PeriodAnchors(), tz)  # type: ignore[arg-type]
    assert nxt > after
    limit = timedelta(days=32) if period.unit == "monthly" else timedelta(milliseconds=period.milliseconds)
    slack = timedelta(0) if period.steps_in_real_time else timedelta(hours=1)  # a DST change may add an hour
    assert nxt - after <= limit + slack
    assert next_boundary(nxt, period, PeriodAnchors(), tz) > nxt  # type: ignore[arg-type]


# ---- a simulated year of GFS ------------------------------------------------------------------

GFS = "{'prod': {'onsite': {'hourly': 36, 'daily': 31, 'weekly': 12, 'monthly': 18, 'yearly': 5}}}"


def year_of_snapshots() -> list[Version]:
    return simulate(GFS, BERLIN, ts(BERLIN, 2024, 1, 1), ts(BERLIN, 2025, 1, 1), HOUR)


def test_gfs_year_creates_the_expected_snapshots() -> None:
    created = year_of_snapshots()
    counts = {
        p: sum(v.name.endswith("_" + p) for v in created) for p in ("hourly", "daily", "weekly", "monthly", "yearly")
    }
    assert counts == {"hourly": 366 * 24, "daily": 366, "weekly": 53, "monthly": 12, "yearly": 1}
    assert set(local_times(created, "_daily", BERLIN)) == {
        t for t in local_times(created, "_daily", BERLIN) if t[6:11] == "00:00"
    }
    weekly = [datetime.fromtimestamp(v.creation, BERLIN) for v in created if v.name.endswith("_weekly")]
    assert {d.strftime("%a %H:%M") for d in weekly[1:]} == {"Sun 00:00"}
    assert [
        d.day for d in (datetime.fromtimestamp(v.creation, BERLIN) for v in created if v.name.endswith("_monthly"))
    ] == [1] * 12


@pytest.mark.parametrize(
    ("start", "utc_hours"),
    [
        (ts(UTC, 2024, 11, 3, 2), [2, 4, 7, 9, 11]),  # fall back: the wall clock reaches 02:00 again 3 h later
        (ts(UTC, 2024, 3, 10, 3), [3, 5, 7, 8, 10, 12]),  # spring forward: 02:00 is missing, 03:00 EDT instead
    ],
)
def test_two_hourly_follows_the_new_york_wall_clock(start: int, utc_hours: list[int]) -> None:
    created = simulate("{'prod': {'onsite': {'2hourly': 5}}}", NEW_YORK, start, start + 10 * HOUR, 600)
    assert [datetime.fromtimestamp(v.creation, UTC).hour for v in created] == utc_hours
    local_hours = [datetime.fromtimestamp(v.creation, NEW_YORK).hour for v in created]
    assert [h for h in local_hours if h % 2] in ([], [3])  # 03:00 EDT stands for the missing 02:00


VIENNA = ZoneInfo("Europe/Vienna")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")

# Both DST changes of 2026 in each zone: the UTC instant of the change, the start of six
# hours of runs every 5 minutes around it, the hourly snapshots' local timestamps hour by
# hour, and those of the 15-minutely ones in the hour before and after the change.
DST_CHANGES_2026 = [
    pytest.param(
        VIENNA,
        ts(UTC, 2026, 3, 29, 1),  # 02:00 CET becomes 03:00 CEST
        ts(UTC, 2026, 3, 28, 22),
        ["03-28_23:00:00", "03-29_00:00:00", "03-29_01:00:00", "03-29_03:00:00", "03-29_04:00:00", "03-29_05:00:00"],
        ["01:00:00", "01:15:00", "01:30:00", "01:45:00", "03:00:00", "03:15:00", "03:30:00", "03:45:00"],
        id="vienna-spring",
    ),
    pytest.param(
        VIENNA,
        ts(UTC, 2026, 10, 25, 1),  # 03:00 CEST becomes 02:00 CET
        ts(UTC, 2026, 10, 24, 22),
        ["10-25_00:00:00", "10-25_01:00:00", "10-25_02:00:00", "10-25_02:00:00dst", "10-25_03:00:00", "10-25_04:00:00"],
        ["02:00:00", "02:15:00", "02:30:00", "02:45:00", "02:00:00dst", "02:15:00dst", "02:30:00dst", "02:45:00dst"],
        id="vienna-fall",
    ),
    pytest.param(
        NEW_YORK,
        ts(UTC, 2026, 3, 8, 7),  # 02:00 EST becomes 03:00 EDT
        ts(UTC, 2026, 3, 8, 4),
        ["03-07_23:00:00", "03-08_00:00:00", "03-08_01:00:00", "03-08_03:00:00", "03-08_04:00:00", "03-08_05:00:00"],
        ["01:00:00", "01:15:00", "01:30:00", "01:45:00", "03:00:00", "03:15:00", "03:30:00", "03:45:00"],
        id="new-york-spring",
    ),
    pytest.param(
        NEW_YORK,
        ts(UTC, 2026, 11, 1, 6),  # 02:00 EDT becomes 01:00 EST
        ts(UTC, 2026, 11, 1, 3),
        ["10-31_23:00:00", "11-01_00:00:00", "11-01_01:00:00", "11-01_01:00:00dst", "11-01_02:00:00", "11-01_03:00:00"],
        ["01:00:00", "01:15:00", "01:30:00", "01:45:00", "01:00:00dst", "01:15:00dst", "01:30:00dst", "01:45:00dst"],
        id="new-york-fall",
    ),
    pytest.param(
        LORD_HOWE,
        ts(UTC, 2026, 4, 4, 15),  # 02:00 (+11:00) becomes 01:30 (+10:30); in summer time hourly falls on :30
        ts(UTC, 2026, 4, 4, 12, 30),
        ["04-04_23:30:00", "04-05_00:30:00", "04-05_01:30:00", "04-05_02:00:00", "04-05_03:00:00", "04-05_04:00:00"],
        ["01:00:00", "01:15:00", "01:30:00", "01:45:00", "01:30:00dst", "01:45:00dst", "02:00:00", "02:15:00"],
        id="lord-howe-autumn",
    ),
    pytest.param(
        LORD_HOWE,
        ts(UTC, 2026, 10, 3, 15, 30),  # 02:00 (+10:30) becomes 02:30 (+11:00)
        ts(UTC, 2026, 10, 3, 12, 30),
        ["10-03_23:00:00", "10-04_00:00:00", "10-04_01:00:00", "10-04_02:30:00", "10-04_03:30:00", "10-04_04:30:00"],
        ["01:00:00", "01:15:00", "01:30:00", "01:45:00", "02:30:00", "02:45:00", "03:00:00", "03:15:00"],
        id="lord-howe-spring",
    ),
]


@pytest.mark.parametrize(("tz", "change", "start", "hourly", "quarters"), DST_CHANGES_2026)
def test_hour_by_hour_through_each_dst_change(
    tz: ZoneInfo, change: int, start: int, hourly: list[str], quarters: list[str]
) -> None:
    """Hourly and shorter periods step in real time: one snapshot per period, unique names."""
    created = simulate("{'prod': {'onsite': {'hourly': 36, '15minutely': 8}}}", tz, start, start + 6 * HOUR, 300)
    names = [v.name for v in created]
    assert len(set(names)) == len(names)
    hours = [v for v in created if v.name.endswith("_hourly")]
    quarter = [v for v in created if v.name.endswith("_15minutely")]
    assert names_of(hours) == [f"2026-{t}" for t in hourly]
    assert [v.creation - start for v in hours] == [k * HOUR for k in range(6)]  # neither skipped nor doubled
    assert [v.creation - start for v in quarter] == [k * 900 for k in range(24)]
    assert [n.split("_")[1] for n in names_of(v for v in quarter if -HOUR <= v.creation - change < HOUR)] == quarters


def test_local_zone_of_this_machine_steps_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--create-src-snapshots-timezone ''`: this machine's zone (here TZ=Europe/Vienna) behaves alike."""
    monkeypatch.setenv("TZ", "Europe/Vienna")
    time.tzset()
    try:
        start = ts(UTC, 2026, 10, 24, 23)
        created = simulate("{'prod': {'onsite': {'hourly': 36}}}", None, start, start + 4 * HOUR, 300)
        skipped = first_instant(datetime(2026, 3, 29, 2, 30), None)
        repeated = first_instant(datetime(2026, 10, 25, 2, 30), None)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert names_of(created) == [
        "2026-10-25_01:00:00",
        "2026-10-25_02:00:00",
        "2026-10-25_02:00:00dst",
        "2026-10-25_03:00:00",
    ]
    assert skipped == datetime(2026, 3, 29, 1, tzinfo=UTC)  # 02:30 CET never happened: 03:00 CEST
    assert repeated == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, the first of two


def test_timestamp_tags_go_before_the_period() -> None:
    assert (
        with_timestamp_tag("prod_onsite_2026-10-25_02:00:00_hourly", "dst")
        == "prod_onsite_2026-10-25_02:00:00dst_hourly"
    )
    assert with_timestamp_tag("a_b_10minutely", "-x") == "a_b-x_10minutely"
    assert with_timestamp_tag("manual_snapshot", "-x") == "manual_snapshot-x"  # no period: at the end
    assert with_timestamp_tag("hourly", "-x") == "hourly-x"
    entry = PlanEntry("prod", "onsite", "hourly", 1)
    assert entry.matches(with_timestamp_tag(entry.snapshot_name("2026-10-25_02:00:00"), "-1a2b3c4d"))


def names_of(versions: Iterable[Version]) -> list[str]:
    """The timestamps of plan snapshot names `prod_onsite_<timestamp>_<period>`."""
    return [v.name[len("prod_onsite_") :].rpartition("_")[0] for v in versions]


@pytest.mark.parametrize(
    ("tz", "change", "anchor", "on_change_day"),
    [
        (VIENNA, ts(UTC, 2026, 3, 29, 1), (2, 30), "03-29 03:00+0200"),  # missing: first instant after the gap
        (VIENNA, ts(UTC, 2026, 10, 25, 1), (2, 30), "10-25 02:30+0200"),  # repeated: its first occurrence
        (NEW_YORK, ts(UTC, 2026, 3, 8, 7), (2, 30), "03-08 03:00-0400"),
        (NEW_YORK, ts(UTC, 2026, 11, 1, 6), (1, 30), "11-01 01:30-0400"),
        (LORD_HOWE, ts(UTC, 2026, 4, 4, 15), (1, 45), "04-05 01:45+1100"),
        (LORD_HOWE, ts(UTC, 2026, 10, 3, 15, 30), (2, 15), "10-04 02:30+1100"),
    ],
)
def test_daily_anchor_in_a_missing_or_repeated_local_time(
    tz: ZoneInfo, change: int, anchor: tuple[int, int], on_change_day: str
) -> None:
    """Daily and longer follow the wall clock: one snapshot per local day, never two, never none."""
    hour, minute = anchor
    created = simulate(
        "{'prod': {'onsite': {'daily': 31}}}",
        tz,
        change - 36 * HOUR,
        change + 60 * HOUR,
        300,
        daily_hour=hour,
        daily_minute=minute,
    )
    times = local_times(created, "_daily", tz)[1:]  # the first is taken at once, when none exists
    expected_days = [(datetime.fromtimestamp(change, tz) + timedelta(days=d)).strftime("%m-%d") for d in (-1, 0, 1, 2)]
    assert [t[:5] for t in times] == expected_days
    assert times[1] == on_change_day
    assert {t[6:11] for t in (times[0], times[2], times[3])} == {f"{hour:02d}:{minute:02d}"}


def test_repeated_hour_timestamps_get_the_tag_only_when_needed() -> None:
    fall_back = ts(UTC, 2026, 10, 25, 1)  # Vienna: 02:00 CET, the second 02:00
    plain = SnapshotNaming(DEFAULT_TIMEFORMAT, VIENNA)
    assert plain.timestamp(fall_back - HOUR) == "2026-10-25_02:00:00"
    assert plain.timestamp(fall_back) == "2026-10-25_02:00:00dst"
    assert plain.timestamp(fall_back + HOUR) == "2026-10-25_03:00:00"
    with_offset = SnapshotNaming("%Y-%m-%d_%H:%M:%S%z", VIENNA)  # already unique: no tag
    assert with_offset.timestamp(fall_back) == "2026-10-25_02:00:00z0100"
    assert SnapshotNaming(DEFAULT_TIMEFORMAT, UTC).timestamp(fall_back) == "2026-10-25_01:00:00"
