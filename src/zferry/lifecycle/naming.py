"""How new snapshots are named: the timestamp in `org_target_<timestamp>_period`.

`SnapshotNaming` writes the timestamp (`--create-src-snapshots-timeformat`, `-timezone`);
`with_timestamp_tag` appends a tag to the timestamp of a name. Kept apart from the plans in
`zferry.lifecycle.plan` because every run needs the naming (bookmark names, option checks)
and few need a plan: a plain run does not import the plan and its filter types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Optional

from zferry.errors import UsageError
from zferry.lifecycle.periods import earlier_occurrence, parse_period, resolve_timezone

DEFAULT_TIMEFORMAT = "%Y-%m-%d_%H:%M:%S"
"""bzfs's default `--create-src-snapshots-timeformat`: seconds, no zone suffix."""

MAX_LABEL = 200  # org + target + period + timestamp must leave room in ZFS's 255-byte names
_TIMESTAMP_RE = re.compile(r"[A-Za-z0-9_.:-]*")

REPEATED_TIME_TAG = "dst"
"""Ends the timestamp of a snapshot taken in the second run of a repeated local hour (as sanoid's)."""


def with_timestamp_tag(name: str, tag: str) -> str:
    """`name` with `tag` at the end of its timestamp: before a final `_<period>` (`_hourly`,
    `_10minutely`, ...), else at the end. The repeated hour's `dst` and a taken bookmark name's
    fallback go there, so plan filters (`org_target_*_period`) still match the name."""
    head, sep, last = name.rpartition("_")
    if sep and head and parse_period(last) is not None:
        return f"{head}{tag}_{last}"
    return name + tag


@dataclass(frozen=True)
class SnapshotNaming:
    """How the timestamp part of new snapshot names is written."""

    timeformat: str = DEFAULT_TIMEFORMAT
    tz: Optional[tzinfo] = None  # None: this machine's time zone

    def timestamp(self, now: float) -> str:
        """`now` formatted with `timeformat` in `tz`; a trailing `%F` gives milliseconds, '+' becomes 'z'.

        When the clocks went back and the local time repeats, a timestamp that reads as one
        of the first run of that hour gets `REPEATED_TIME_TAG` appended, so names stay unique.
        """
        instant = datetime.fromtimestamp(now, timezone.utc)
        text = self._format(instant)
        earlier = earlier_occurrence(instant, self.tz)
        if earlier is not None and self._format(earlier) == text:
            text += REPEATED_TIME_TAG
        return text

    def _format(self, instant: datetime) -> str:
        fmt = self.timeformat
        millis = fmt.endswith("%F")
        if millis:
            fmt = fmt[:-1] + "f"
        text = instant.astimezone(self.tz).strftime(fmt)
        if millis:
            text = text[:-3]
        return text.replace("+", "z")  # zfs does not accept '+' in snapshot names


DEFAULT_NAMING = SnapshotNaming()


def make_naming(timeformat: str = DEFAULT_TIMEFORMAT, timezone_spec: str = "") -> SnapshotNaming:
    """Validate `--create-src-snapshots-timeformat` and `--create-src-snapshots-timezone`."""
    naming = SnapshotNaming(timeformat, resolve_timezone(timezone_spec))
    sample = naming.timestamp(1_700_000_000.123456)
    if not _TIMESTAMP_RE.fullmatch(sample) or len(sample) > MAX_LABEL // 2:
        raise UsageError(
            f"--create-src-snapshots-timeformat: {timeformat!r} gives {sample!r}, which is not usable in a "
            "snapshot name; use only letters, digits, '_', '.', ':' and '-', e.g. '%Y-%m-%d_%H:%M:%S'"
        )
    return naming
