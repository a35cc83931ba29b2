"""The zfs host's clock, for the caches keyed on `snapshots_changed`.

`snapshots_changed` is written in the clock of the host that holds the dataset, in whole
seconds, so a snapshot taken in the same second as a listing leaves it unchanged. A cached
listing is trusted only if it started safely after the last change, both read in the host's
clock: our clock plus the offset the capability probe measured (`exec/probe.py`), with its
uncertainty added to the margin. Both caches (creation and replication) use this one rule.
"""

from __future__ import annotations

import time
from typing import Optional

from zferry.exec.probe import Capabilities

SAFETY_SECONDS = 2.0
"""A change this much before a listing (beyond the clock's uncertainty) is certainly in it."""


def host_time(caps: Capabilities, local_now: Optional[float] = None) -> float:
    """Now (or `local_now`, our clock) read in the clock of the host `caps` describes."""
    return (time.time() if local_now is None else local_now) + caps.clock_offset


def listed_after_change(changed: int, listed_at: float, clock_error: float) -> bool:
    """True if a listing that started at `listed_at` (host clock, give or take `clock_error`)
    certainly saw every snapshot change up to `changed` (the host's `snapshots_changed`)."""
    return listed_at - changed >= SAFETY_SECONDS + clock_error
