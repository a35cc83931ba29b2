"""The zfs host's clock, for the caches keyed on `snapshots_changed`.

`snapshots_changed` is the time of a dataset's last snapshot change in the clock of the host that
holds it, in whole seconds (OpenZFS stamps it with the kernel's coarse clock while it commits the
change). A cached snapshot list is trusted only if the listing that made it started after the
second of its `snapshots_changed` had passed on that host:

- every change stamped V happened before the host's clock read V + 1, so a listing that started
  later saw it (a change commits under the pool's configuration lock, which the listing takes too);
- every change after the listing is stamped at least V + 1, so the property moves and the entry
  no longer matches.

That needs a time the host's clock has certainly reached when the listing starts: for local zfs
it is this machine's own clock, the one ZFS reads. For a remote host it is the host's own reading
from the capability probe (`date +%s`, taken before any listing) plus the time elapsed since on
our monotonic clock, less the most a clock may be slewed (`MAX_SLEW`): our wall clock, its offset
to the host's and a step of either never enter. `SAFETY_SECONDS` adds a second beyond the proof
for the kernel's coarse clock (a tick behind) and small steps back of the host's clock.
Both caches (creation and replication) use this one rule.
"""

from __future__ import annotations

import time
from typing import Optional

from zferry.exec.host import Host
from zferry.exec.probe import Capabilities

SAFETY_SECONDS = 2.0
"""A listing this many seconds after `snapshots_changed` (host clock, lower bound) saw every change."""

MAX_SLEW = 0.0005
"""The fastest rate at which NTP/adjtime slews a clock (500 ppm): elapsed time may be off by that much."""


def host_time(caps: Capabilities, local_now: Optional[float] = None) -> float:
    """Now (or `local_now`, our clock) read in the clock of the host `caps` describes (an estimate)."""
    return (time.time() if local_now is None else local_now) + caps.clock_offset


def host_time_floor(
    host: Host, caps: Capabilities, wall: Optional[float] = None, monotonic: Optional[float] = None
) -> float:
    """A time the clock of `host` has certainly reached now (`wall`/`monotonic`: our clocks' readings
    of now); minus infinity when the probe read no clock there."""
    if host.is_local:  # the clock ZFS stamps with (not `time.time`, which a test may stand still)
        return time.clock_gettime(time.CLOCK_REALTIME) if wall is None else wall
    if caps.host_clock is None:
        return float("-inf")
    seconds, probed = caps.host_clock
    elapsed = max(0.0, (time.monotonic() if monotonic is None else monotonic) - probed)
    return seconds + elapsed * (1 - MAX_SLEW)


def listed_after_change(changed: int, listed_at: float) -> bool:
    """True if a listing that started when the host's clock had reached `listed_at` (a lower bound,
    `host_time_floor`) certainly saw every snapshot change up to `changed` (its `snapshots_changed`)."""
    return listed_at - changed >= SAFETY_SECONDS
