"""`--include-snapshot-times-and-ranks TIMERANGE [RANKRANGE ...]`: parse once, evaluate fast.

A TIMERANGE selects snapshots whose ZFS `creation` time falls into the half-open range
[start, end). Each bound is `anytime`/`*` (unbounded), unix seconds, an ISO 8601 date or
datetime (with or without offset; without one it is read in the given or local time zone), or
a duration ago such as `36 hours ago` / `12weeksago`. `notime` is `0..0`, the empty range.
Bounds given in the wrong order are swapped.

A RANKRANGE selects by position in the oldest-first list: `oldest 10`, `latest 10%`,
`all except latest 3`, `oldest 1..oldest 10`. When rank ranges are given, a snapshot is
selected if its rank OR its creation time matches (UNION). Several rank ranges apply one
after the other (AND): each one ranks the snapshots the previous one left over.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Optional, Union

from zferry.errors import UsageError
from zferry.model import Version

OPTION = "--include-snapshot-times-and-ranks"
UNIX_TIME_INFINITY = 2**64
"""Upper bound of an open-ended time range: later than any creation time."""

_MS_PER_UNIT: dict[str, int] = {
    "millisecond": 1,
    "milli": 1,
    "second": 1000,
    "sec": 1000,
    "minute": 60_000,
    "min": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "week": 7 * 86_400_000,
    "month": round(30.5 * 86_400_000),
    "year": 365 * 86_400_000,
}
_UNITS = "|".join(sorted(_MS_PER_UNIT, key=len, reverse=True))
_AGO_RE = re.compile(rf"(\d+)\s*({_UNITS})s?\s*ago")
_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)
_RANK_RE = re.compile(r"(all\s*except\s*)?(oldest|latest)\s*(\d+)\s*(%?)")


@dataclass(frozen=True)
class Ago:
    """A time bound relative to `now`: that many milliseconds before it."""

    milliseconds: int


Bound = Union[int, Ago, None]
"""Unix seconds, a duration ago, or None for `anytime` (unbounded)."""


@dataclass(frozen=True)
class TimeRange:
    """Half-open creation time range [lo, hi); None bounds are open."""

    lo: Bound = None
    hi: Bound = None

    @property
    def is_all(self) -> bool:
        """True when both bounds are `anytime`: every snapshot matches."""
        return self.lo is None and self.hi is None

    def resolve(self, now: float) -> tuple[int, int]:
        """The range as integer unix seconds [lo, hi) at time `now`, lo <= hi."""
        lo = _resolve(self.lo, now, 0)
        hi = _resolve(self.hi, now, UNIX_TIME_INFINITY)
        return (lo, hi) if lo <= hi else (hi, lo)


def _resolve(bound: Bound, now: float, default: int) -> int:
    if bound is None:
        return default
    if isinstance(bound, Ago):
        return math.ceil(now - bound.milliseconds / 1000)
    return bound


EMPTY_TIME_RANGE = TimeRange(0, 0)


@dataclass(frozen=True)
class Rank:
    """A position counted from the oldest or the latest end, absolute or in percent."""

    kind: str  # "oldest" | "latest"
    number: int
    percent: bool = False

    def index(self, n: int) -> int:
        """Zero-based cut position in an oldest-first list of `n` snapshots."""
        m = round(n * self.number / 100) if self.percent else min(n, self.number)
        return m if self.kind == "oldest" else n - m


@dataclass(frozen=True)
class RankRange:
    """The snapshots whose oldest-first position i satisfies lo.index(n) <= i < hi.index(n)."""

    lo: Rank
    hi: Rank

    def bounds(self, n: int) -> tuple[int, int]:
        """The slice [a, b) of an oldest-first list of `n` snapshots this range selects."""
        a, b = self.lo.index(n), self.hi.index(n)
        return (a, b) if a <= b else (b, a)


@dataclass(frozen=True)
class TimesAndRanks:
    """One `--include-snapshot-times-and-ranks` occurrence: a time range and rank ranges."""

    times: TimeRange = TimeRange()
    ranks: tuple[RankRange, ...] = ()

    def select(self, snapshots: Sequence[Version], now: float) -> list[Version]:
        """The snapshots (given oldest first, by createtxg) that this filter keeps at `now`.

        Without rank ranges, keeps those created in the time range. With rank ranges, each
        rank range in turn keeps the snapshots whose rank among the remaining ones is in the
        range, plus those created in the time range.
        """
        if self.times.is_all:  # every snapshot matches the time range, so the union is all
            return list(snapshots)
        lo, hi = self.times.resolve(now)
        if not self.ranks:
            return [s for s in snapshots if lo <= s.creation < hi]
        current = list(snapshots)
        for rank_range in self.ranks:
            a, b = rank_range.bounds(len(current))
            if lo >= hi:  # pure rank filter
                current = current[a:b]
            else:
                current = [s for i, s in enumerate(current) if a <= i < b or lo <= s.creation < hi]
        return current


def parse_time_bound(text: str, tz: Optional[tzinfo] = None) -> Bound:
    """Parse one side of a TIMERANGE; naive ISO datetimes are read in `tz` (None: local time)."""
    spec = text.strip()
    if spec in ("*", "anytime"):
        return None
    if spec.isdigit():
        return int(spec)
    match = _AGO_RE.fullmatch(spec)
    if match:
        return Ago(int(match.group(1)) * _MS_PER_UNIT[match.group(2)])
    match = _ISO_RE.fullmatch(spec)
    if match:
        try:
            return _iso_to_unix(match, tz)
        except ValueError as exc:
            raise UsageError(f"{OPTION}: invalid date or time {spec!r}: {exc}") from None
    raise UsageError(
        f"{OPTION}: cannot read the time {spec!r}; use 'anytime' or '*', unix seconds (1728109805), "
        "an ISO 8601 date or datetime ('2024-10-05', '2024-10-05T14:48:55+02:00'), "
        "or a duration ago ('90 days ago', '36hours ago')"
    )


def _iso_to_unix(match: re.Match[str], tz: Optional[tzinfo]) -> int:
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0").ljust(6, "0"))
    dt = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micros)
    if offset is not None:
        dt = dt.replace(tzinfo=_parse_offset(offset))
    elif tz is not None:
        dt = dt.replace(tzinfo=tz)
    return math.floor(dt.timestamp())  # naive: the local time zone of this machine


def _parse_offset(text: str) -> tzinfo:
    if text == "Z":
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"UTC offset out of range: {text}")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_time_range(text: str, tz: Optional[tzinfo] = None) -> TimeRange:
    """Parse a TIMERANGE such as `2024-01-01..2024-04-01`, `1 week ago..anytime` or `notime`."""
    spec = text.strip()
    if spec == "notime":
        return EMPTY_TIME_RANGE
    if spec in ("*", "anytime"):
        return TimeRange()
    if ".." not in spec:
        raise UsageError(
            f"{OPTION}: time range {text!r} lacks the '..' separator; write START..END, "
            "e.g. '2024-01-01..2024-04-01', '7 days ago..anytime', or 'notime' for no time"
        )
    lo_text, hi_text = spec.split("..", 1)
    return TimeRange(parse_time_bound(lo_text, tz), parse_time_bound(hi_text, tz))


def _parse_rank(text: str, whole: str) -> tuple[bool, Rank]:
    spec = text.strip()
    match = _RANK_RE.fullmatch(spec)
    if not match:
        raise UsageError(
            f"{OPTION}: cannot read the rank range {whole!r}; use e.g. 'latest 10', 'oldest 5%', "
            "'all except latest 3', or 'oldest 1..oldest 10'"
        )
    is_except, kind, number, percent = match.groups()
    if percent and int(number) > 100:
        raise UsageError(f"{OPTION}: rank {spec!r} exceeds 100%; use a percentage from 0 to 100")
    return bool(is_except), Rank(kind, int(number), bool(percent))


def parse_rank_range(text: str) -> RankRange:
    """Parse a RANKRANGE such as `latest 10`, `all except oldest 5`, `latest 10%`, `oldest 1..oldest 10`."""
    spec = text.strip()
    if ".." in spec:
        lo_text, hi_text = spec.split("..", 1)
        lo_except, lo = _parse_rank(lo_text, text)
        hi_except, hi = _parse_rank(hi_text, text)
        if lo_except or hi_except:
            raise UsageError(f"{OPTION}: no 'all except' in rank range {text!r}; use 'oldest A..oldest B'")
        if lo.kind != hi.kind:
            raise UsageError(
                f"{OPTION}: rank range {text!r} mixes 'oldest' and 'latest'; count both ends from one side"
            )
        return RankRange(lo, hi)
    is_except, rank = _parse_rank(spec, text)
    if not is_except:
        return RankRange(Rank(rank.kind, 0), rank)
    # `all except latest 3` == `latest 3..latest 100%`: exactly the complement of `latest 3`, also for
    # percentages (rounding `latest 10%` and `oldest 90%` separately could leave a snapshot in neither).
    return RankRange(rank, Rank(rank.kind, 100, True))


def parse_times_and_ranks(values: Sequence[str], tz: Optional[tzinfo] = None) -> TimesAndRanks:
    """Parse the arguments of one `--include-snapshot-times-and-ranks`: TIMERANGE [RANKRANGE ...]."""
    if not values:
        raise UsageError(f"{OPTION}: needs a TIMERANGE, optionally followed by RANKRANGEs")
    return TimesAndRanks(parse_time_range(values[0], tz), tuple(parse_rank_range(v) for v in values[1:]))


_DURATION_RE = re.compile(rf"(\d+)\s*({_UNITS})s?")


def parse_duration(text: str, option: str) -> float:
    """A duration such as `90 minutes`, `2hours` or `1 seconds`, in seconds."""
    match = _DURATION_RE.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"{option}: cannot read the duration {text!r}; write e.g. '90 minutes', '26 hours', '7 days'")
    return int(match.group(1)) * _MS_PER_UNIT[match.group(2)] / 1000
