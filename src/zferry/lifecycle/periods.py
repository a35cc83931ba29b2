"""Snapshot periods (`hourly`, `10minutely`, ...), their anchors, and when the next one starts.

Periods of an hour or less step in real time: their boundaries are a fixed grid on the UTC
timeline, phased so that the zone's standard time (its time without daylight saving) reads
the anchors (`--hourly_minute`, ...). So an hourly snapshot is due once every real hour, also
while the clocks go forward or back (in Australia/Lord_Howe, whose clocks move by 30 minutes,
the hourly snapshots of the summer fall on :30). Longer periods (2hourly ... yearly) follow the
wall clock of the zone: a daily snapshot is due at `--daily_hour:--daily_minute:--daily_second`
local time every day, also on days of 23 or 25 hours. A boundary at a local time that does not
exist (the hour skipped when clocks go forward) falls on the first instant after the gap; one
at a local time that happens twice falls on its first occurrence.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Optional

from zferry.errors import UsageError

PERIOD_MILLISECONDS: dict[str, int] = {
    "yearly": 365 * 86_400_000,
    "monthly": round(30.5 * 86_400_000),
    "weekly": 7 * 86_400_000,
    "daily": 86_400_000,
    "hourly": 3_600_000,
    "minutely": 60_000,
    "secondly": 1000,
    "millisecondly": 1,
}
"""Each period unit and its (nominal, for months and years) length."""

PERIOD_DURATION_WORDS: dict[str, str] = {
    "yearly": "years",
    "monthly": "months",
    "weekly": "weeks",
    "daily": "days",
    "hourly": "hours",
    "minutely": "minutes",
    "secondly": "seconds",
    "millisecondly": "milliseconds",
}
"""The duration word for each unit, as `--include-snapshot-times-and-ranks` spells it."""

_PERIOD_RE = re.compile(rf"([1-9][0-9]*)?({'|'.join(PERIOD_MILLISECONDS)})")
_SUB_DAILY = ("hourly", "minutely", "secondly", "millisecondly")
_US = timedelta(microseconds=1)
_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Period:
    """Every `amount` units of `unit`, e.g. Period(10, "minutely") for `10minutely`."""

    amount: int
    unit: str

    @property
    def milliseconds(self) -> int:
        """Nominal length in milliseconds (a month counts 30.5 days, a year 365)."""
        return self.amount * PERIOD_MILLISECONDS[self.unit]

    @property
    def is_sub_daily(self) -> bool:
        """True for hourly and shorter units (also `2hourly`, ...)."""
        return self.unit in _SUB_DAILY

    @property
    def steps_in_real_time(self) -> bool:
        """True for periods of an hour or less: a grid in UTC, untouched by daylight saving time."""
        return self.milliseconds <= PERIOD_MILLISECONDS["hourly"]


def parse_period(name: str) -> Optional[Period]:
    """The period a plan name such as `hourly` or `10minutely` stands for; None if not periodic."""
    match = _PERIOD_RE.fullmatch(name)
    if not match:
        return None
    return Period(int(match.group(1) or 1), match.group(2))


def check_schedulable(period: Period, option: str) -> None:
    """Reject periods that would not recur at the same time of day (or year)."""
    if period.is_sub_daily and 86_400_000 % period.milliseconds != 0:
        raise UsageError(
            f"{option}: period '{period.amount}{period.unit}' does not divide a day evenly; choose a length "
            "that does (e.g. 10minutely, 2hourly, 6hourly) so snapshots happen at the same times every day"
        )
    if period.unit == "monthly" and 12 % period.amount != 0:
        raise UsageError(f"{option}: period '{period.amount}monthly' does not divide a year; use 1, 2, 3, 4, 6 or 12")


@dataclass(frozen=True)
class PeriodAnchors:
    """Offsets within each cycle at which periodic snapshots become due (bzfs `--daily_hour` etc.).

    `weekly_weekday` counts like cron: 0 = Sunday ... 6 = Saturday. `yearly_year` and
    `monthly_month` fix the phase of multi-year and multi-month periods.
    """

    yearly_year: int = 2025
    yearly_month: int = 1
    yearly_monthday: int = 1
    yearly_hour: int = 0
    yearly_minute: int = 0
    yearly_second: int = 0
    monthly_month: int = 1
    monthly_monthday: int = 1
    monthly_hour: int = 0
    monthly_minute: int = 0
    monthly_second: int = 0
    weekly_weekday: int = 0
    weekly_hour: int = 0
    weekly_minute: int = 0
    weekly_second: int = 0
    daily_hour: int = 0
    daily_minute: int = 0
    daily_second: int = 0
    hourly_minute: int = 0
    hourly_second: int = 0
    minutely_second: int = 0
    secondly_millisecond: int = 0
    millisecondly_microsecond: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            lo, hi = _anchor_limits(f.name)
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise UsageError(f"--{f.name}: {value!r} is out of range; give an integer from {lo} to {hi}")


def _anchor_limits(name: str) -> tuple[int, int]:
    limits = {
        "year": (1, 9999),
        "month": (1, 12),
        "monthday": (1, 31),
        "weekday": (0, 6),
        "hour": (0, 23),
        "minute": (0, 59),
        "second": (0, 59),
        "millisecond": (0, 999),
        "microsecond": (0, 999),
    }
    return limits[name.split("_", 1)[1]]


def resolve_timezone(spec: str) -> Optional[tzinfo]:
    """`--create-src-snapshots-timezone`: '' or 'local' (None: this machine's zone), 'UTC',
    a fixed offset '+HHMM' / '-HH:MM', or an IANA name such as 'Europe/Berlin'."""
    text = spec.strip()
    if text in ("", "local"):
        return None
    if text.upper() in ("UTC", "Z"):
        return timezone.utc
    match = re.fullmatch(r"([+-])(\d\d):?(\d\d)", text)
    if match:
        sign, hours, minutes = match.groups()
        if int(hours) > 23 or int(minutes) > 59:
            raise UsageError(f"--create-src-snapshots-timezone: offset {spec!r} is out of range (max ±23:59)")
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        return timezone(-offset if sign == "-" else offset)
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(text)
    except (ValueError, OSError, LookupError):
        raise UsageError(
            f"--create-src-snapshots-timezone: unknown time zone {spec!r}; use '' for local time, 'UTC', "
            "'+HHMM'/'-HHMM', or an IANA name such as 'Europe/Berlin'"
        ) from None


def wall_clock(instant: datetime, tz: Optional[tzinfo]) -> datetime:
    """The naive local time that the aware `instant` reads as in `tz` (None: this machine's zone)."""
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def to_instant(wall: datetime, tz: Optional[tzinfo]) -> datetime:
    """The UTC instant of naive local time `wall` in `tz`; `wall.fold` picks the repeated hour."""
    if tz is None:
        return wall.astimezone(timezone.utc)
    return wall.replace(tzinfo=tz).astimezone(timezone.utc)


def ceil_wall(wall: datetime, period: Period, anchors: PeriodAnchors) -> datetime:
    """The first period boundary at or after naive local time `wall` (wall clock arithmetic)."""
    a = anchors
    unit, amount = period.unit, period.amount
    midnight = wall.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    if unit in _SUB_DAILY or unit in ("daily", "weekly"):
        if unit == "millisecondly":
            start = midnight + timedelta(microseconds=a.millisecondly_microsecond)
        elif unit == "secondly":
            start = midnight + timedelta(milliseconds=a.secondly_millisecond)
        elif unit == "minutely":
            start = midnight + timedelta(seconds=a.minutely_second)
        elif unit == "hourly":
            start = midnight + timedelta(minutes=a.hourly_minute, seconds=a.hourly_second)
        elif unit == "daily":
            start = midnight + timedelta(hours=a.daily_hour, minutes=a.daily_minute, seconds=a.daily_second)
        else:
            start = midnight + timedelta(hours=a.weekly_hour, minutes=a.weekly_minute, seconds=a.weekly_second)
            python_weekday = (a.weekly_weekday - 1) % 7  # cron counts 0=Sunday, Python 0=Monday
            start -= timedelta(days=(start.weekday() - python_weekday) % 7)
        if start > wall:  # count from the latest anchor at or before wall, as bzfs does
            start -= timedelta(days=7 if unit == "weekly" else 1)
        period_us = period.milliseconds * 1000
        delta = wall - start
        remainder = (delta.days * _DAY_US + delta.seconds * 1_000_000 + delta.microseconds) % period_us
        return wall + timedelta(microseconds=(period_us - remainder) % period_us)
    if unit == "monthly":  # boundaries fall into the months monthly_month + k * amount
        base = a.monthly_month - 1
        k = (wall.year * 12 + wall.month - 1 - base) // amount  # the last such month up to wall's month
        for step in (k, k + 1):
            month_index = base + step * amount
            candidate = _at(
                month_index // 12,
                month_index % 12 + 1,
                a.monthly_monthday,
                a.monthly_hour,
                a.monthly_minute,
                a.monthly_second,
            )
            if candidate >= wall:
                return candidate
    if unit == "yearly":  # boundaries fall into the years yearly_year + k * amount
        year = wall.year - (wall.year - a.yearly_year) % amount
        for candidate_year in (year, year + amount):
            candidate = _at(
                candidate_year,
                a.yearly_month,
                a.yearly_monthday,
                a.yearly_hour,
                a.yearly_minute,
                a.yearly_second,
            )
            if candidate >= wall:
                return candidate
    raise ValueError(f"unknown period unit {unit!r}")


def _at(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
    """A naive datetime, with `day` clamped to the length of the month."""
    return datetime(year, month, min(day, calendar.monthrange(year, month)[1]), hour, minute, second)


def next_boundary(after: datetime, period: Period, anchors: PeriodAnchors, tz: Optional[tzinfo]) -> datetime:
    """The first period boundary strictly after the aware instant `after`, as an aware UTC datetime.

    A snapshot of this period created at `after` is followed by the next one at this instant.
    """
    if period.steps_in_real_time:
        # Standard time never jumps: the grid it reads is evenly spaced in real time.
        standard = _standard_offset(after, tz)
        standard_wall = (after.astimezone(timezone.utc) + standard).replace(tzinfo=None)
        grid = ceil_wall(standard_wall + _US, period, anchors)
        return (grid - standard).replace(tzinfo=timezone.utc)
    grid = ceil_wall(wall_clock(after, tz) + _US, period, anchors)
    instant = first_instant(grid, tz)
    while instant <= after:  # `after` was in a repeated hour, past this boundary's first occurrence
        grid = ceil_wall(grid + _US, period, anchors)
        instant = first_instant(grid, tz)
    return instant


def first_instant(wall: datetime, tz: Optional[tzinfo]) -> datetime:
    """The first UTC instant at which the clock of `tz` reads naive `wall` (its first occurrence
    if it reads it twice); for a time the clock skips, the first instant after the gap."""
    candidates = sorted({to_instant(wall.replace(fold=0), tz), to_instant(wall.replace(fold=1), tz)})
    real = [t for t in candidates if wall_clock(t, tz) == wall.replace(fold=0)]
    if real:
        return real[0]
    # A skipped time: the two readings (with the offsets before and after the change) lie on
    # either side of the change, which happens at a whole second.
    before, after = int(candidates[0].timestamp()), int(candidates[-1].timestamp())
    new_offset = _utcoffset(candidates[-1], tz)
    while after - before > 1:
        middle = (before + after) // 2
        if _utcoffset(datetime.fromtimestamp(middle, timezone.utc), tz) == new_offset:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, timezone.utc)


def earlier_occurrence(instant: datetime, tz: Optional[tzinfo]) -> Optional[datetime]:
    """If the clock of `tz` read the same local time already before the aware `instant` (the
    repeated hour after clocks go back), that earlier instant; else None."""
    wall = instant.astimezone(tz).replace(tzinfo=None, fold=0)
    first = to_instant(wall, tz)
    return first if first < instant else None


def _standard_offset(instant: datetime, tz: Optional[tzinfo]) -> timedelta:
    """The UTC offset of the zone's standard time (without daylight saving) at `instant`."""
    local = instant.astimezone(tz)
    offset = local.utcoffset()
    assert offset is not None
    if tz is None:  # this machine's zone: only the time module knows whether DST is in effect
        is_dst = time.localtime(instant.timestamp()).tm_isdst > 0
        return timedelta(seconds=-time.timezone) if is_dst else offset
    return offset - (local.dst() or timedelta(0))


def _utcoffset(instant: datetime, tz: Optional[tzinfo]) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()  # tz None: this machine's zone
    assert offset is not None
    return offset
