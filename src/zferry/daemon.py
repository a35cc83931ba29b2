"""Daemon mode (`--daemon-lifetime`, `--daemon-frequency`): one process repeats its job on the
period's boundaries until its lifetime ends.

The first run ("tick") starts at once; each later one on the next boundary of the period (a grid
aligned to the clock as the snapshot plans' periods are: `10secondly` ticks at :00, :10, ...). A
tick that runs past boundaries skips them (it says how many) and the next tick waits for the next
boundary to come; no ticks queue up. No tick starts at or after the end of the lifetime; one that
runs then finishes first.

All ticks share one `engine.Session`: its ssh master connections, capability probes and creation
times; the snapshot caches (`--cache-snapshots`) are files that persist anyway. The destination
locks are taken per tick, so a one-off run can slip in between two ticks.

A tick that fails is logged and the daemon goes on; the exit status is 0 if every tick succeeded,
else that of the last failed tick (1 error, 75 locked). A stop (SIGTERM/SIGINT, `cancel`) ends the
daemon between ticks or during one, with 143/130. Usage errors end it at once (exit 2).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Optional

from zferry.engine import JobConfig, JobReport, Session, make_runner
from zferry.errors import EXIT_OK, Interrupted, UsageError, ZferryError
from zferry.exec.runner import Runner
from zferry.lifecycle.periods import Period, PeriodAnchors, next_boundary

log = logging.getLogger("zferry")
_ANCHORS = PeriodAnchors()


@dataclass(frozen=True)
class DaemonSettings:
    """How long the daemon lives (seconds) and how often it runs its job."""

    lifetime: float
    frequency: Period
    tz: Optional[tzinfo] = None  # the zone whose clock periods longer than an hour follow; None: local


def boundary_after(instant: float, frequency: Period, tz: Optional[tzinfo] = None) -> float:
    """The first boundary of `frequency` strictly after unix time `instant`. Pure."""
    after = datetime.fromtimestamp(instant, timezone.utc)
    return next_boundary(after, frequency, _ANCHORS, tz).timestamp()


def next_tick(scheduled: float, now: float, frequency: Period, tz: Optional[tzinfo] = None) -> tuple[float, int]:
    """When the tick after one scheduled at `scheduled` (that ended at `now`) starts, and how many
    boundaries it skips: those that passed while the tick ran. Pure."""
    first = boundary_after(scheduled, frequency, tz)
    if first >= now:
        return first, 0
    following = boundary_after(now, frequency, tz)
    if frequency.steps_in_real_time:
        return following, round((following - first) * 1000 / frequency.milliseconds)
    skipped = 0
    while first < following:
        skipped += 1
        first = boundary_after(first, frequency, tz)
    return following, skipped


Tick = Callable[[Session], JobReport]


def run(
    config: JobConfig,
    settings: DaemonSettings,
    runner: Optional[Runner] = None,
    clock: Callable[[], float] = time.time,
    wait: Optional[Callable[[float], bool]] = None,
    tick: Tick = Session.run_once,
) -> int:
    """Run `config` on every tick until the lifetime ends; return the exit status (see the module).

    `wait(seconds)` sleeps and returns True when stopped (default: the runner's cancel event);
    `clock` and `wait` are injectable for tests, and so is `tick` (a run of the session).
    """
    runner = runner or make_runner(config)
    sleep = wait or runner.cancel.wait
    start = clock()
    deadline = start + settings.lifetime
    status, count, scheduled = EXIT_OK, 0, start
    log.info("daemon: running %s every %s for %g s", config.name, _period_text(settings.frequency), settings.lifetime)
    with Session(config, runner) as session:
        while True:
            count += 1
            status = _run_tick(session, tick, count) or status
            upcoming, skipped = next_tick(scheduled, clock(), settings.frequency, settings.tz)
            if skipped:
                log.warning("daemon: tick %d ran %.1f s: skipped %d tick(s)", count, clock() - scheduled, skipped)
            if upcoming >= deadline:
                break
            if sleep(max(0.0, upcoming - clock())):
                runner.check_cancelled()
            scheduled = upcoming
    log.info("daemon: lifetime over after %d tick(s); exit status %d", count, status)
    return status


def _run_tick(session: Session, tick: Tick, count: int) -> int:
    """One tick; a failure is logged and returned as its exit status (stops and usage errors propagate)."""
    try:
        report = tick(session)
    except (Interrupted, UsageError):
        raise
    except ZferryError as error:
        log.error("daemon: tick %d failed: %s", count, error)
        return error.exit_code
    if report.exit_code != EXIT_OK:
        log.error("daemon: tick %d failed (exit status %d); going on", count, report.exit_code)
    return report.exit_code


def _period_text(period: Period) -> str:
    return f"{period.amount if period.amount > 1 else ''}{period.unit}"
