"""Daemon mode without ZFS: tick arithmetic, the loop on a fake clock, its options."""

from __future__ import annotations

import logging
import threading
from datetime import timezone
from pathlib import Path

import pytest

from zferry import daemon
from zferry.cli.daemon_options import build_daemon_settings
from zferry.cli.main import main, parse_arguments
from zferry.daemon import DaemonSettings, boundary_after, next_tick
from zferry.engine import ExecutionSettings, JobConfig, JobReport, PairResult, Session
from zferry.errors import LockedError, UsageError
from zferry.exec.runner import Runner
from zferry.lifecycle.pair_job import LifecycleReport
from zferry.lifecycle.periods import Period

SECONDLY = Period(1, "secondly")
TEN_SECONDLY = Period(10, "secondly")
T0 = 1_700_000_000.0  # a multiple of 10 seconds


def test_boundaries_are_aligned_to_the_clock() -> None:
    assert boundary_after(T0 + 0.25, SECONDLY, timezone.utc) == T0 + 1
    assert boundary_after(T0, SECONDLY, timezone.utc) == T0 + 1  # strictly after
    ten = boundary_after(T0 + 3.5, TEN_SECONDLY, timezone.utc)
    assert ten % 10 == 0 and T0 + 3.5 < ten <= T0 + 13.5
    assert boundary_after(T0 + 7, Period(1, "minutely"), timezone.utc) % 60 == 0


def test_a_tick_within_its_period_runs_the_next_on_the_next_boundary() -> None:
    assert next_tick(T0, T0 + 0.4, SECONDLY, timezone.utc) == (T0 + 1, 0)
    first = T0 + 0.3  # the first tick starts at once, off the grid
    assert next_tick(first, first + 0.5, SECONDLY, timezone.utc) == (T0 + 1, 0)


def test_an_overrunning_tick_skips_the_boundaries_it_missed() -> None:
    assert next_tick(T0, T0 + 2.5, SECONDLY, timezone.utc) == (T0 + 3, 2)  # T0+1 and T0+2 skipped
    assert next_tick(T0, T0 + 1.2, SECONDLY, timezone.utc) == (T0 + 2, 1)
    start = boundary_after(T0, TEN_SECONDLY, timezone.utc)
    assert next_tick(start, start + 25, TEN_SECONDLY, timezone.utc) == (start + 30, 2)


def test_an_overrun_of_a_daily_period_counts_days() -> None:
    daily = Period(1, "daily")
    start = boundary_after(T0, daily, timezone.utc)
    upcoming, skipped = next_tick(start, start + 3.5 * 86400, daily, timezone.utc)
    assert (upcoming - start, skipped) == (4 * 86400, 3)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


def _job(tmp_path: Path) -> JobConfig:
    return JobConfig((), execution=ExecutionSettings(lock_dir=str(tmp_path / "locks")))


def _loop(tmp_path: Path, lifetime: float, tick_seconds: list[float], fail: tuple[int, ...] = ()) -> tuple[int, list]:
    clock = FakeClock(T0)
    sessions: list[Session] = []

    def tick(session: Session) -> JobReport:
        sessions.append(session)
        clock.now += tick_seconds[min(len(sessions), len(tick_seconds)) - 1]
        if len(sessions) in fail:
            raise LockedError("held")
        report = session.run_once()  # no pairs: takes the (empty) locks, starts nothing
        ok = PairResult("a", "b", None, LifecycleReport(), 0, 0)
        report.pairs.append(ok)
        return report

    settings = DaemonSettings(lifetime, SECONDLY, timezone.utc)
    status = daemon.run(_job(tmp_path), settings, Runner(), clock, clock.wait, tick)
    return status, sessions


def test_the_loop_reuses_one_session_and_ends_at_its_lifetime(tmp_path: Path) -> None:
    status, sessions = _loop(tmp_path, 5, [0.1])
    assert status == 0
    assert len(sessions) == 5  # at T0, T0+1, ... T0+4; none at the end of the lifetime
    assert len({id(s) for s in sessions}) == 1


def test_the_loop_skips_missed_ticks_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="zferry")
    status, sessions = _loop(tmp_path, 10, [2.5, 0.1])
    assert status == 0
    # T0 runs 2.5 s (skips T0+1, T0+2), then T0+3 ... T0+9
    assert len(sessions) == 8
    assert "tick 1 ran 2.5 s: skipped 2 tick(s)" in caplog.text


def test_a_failed_tick_does_not_end_the_daemon(tmp_path: Path) -> None:
    status, sessions = _loop(tmp_path, 4, [0.1], fail=(2,))
    assert len(sessions) == 4 and status == 75


def test_a_stop_ends_the_daemon_between_ticks(tmp_path: Path) -> None:
    runner = Runner()
    calls = []

    def tick(session: Session) -> JobReport:
        calls.append(1)
        threading.Timer(0.05, runner.stop, args=(15,)).start()
        return session.run_once()

    from zferry.errors import Interrupted

    with pytest.raises(Interrupted) as stopped:
        daemon.run(_job(tmp_path), DaemonSettings(3600, Period(1, "hourly")), runner, tick=tick)
    assert stopped.value.exit_code == 143 and calls == [1]


def test_daemon_options() -> None:
    args = parse_arguments(["--daemon-lifetime", "300seconds", "--daemon-frequency", "10secondly", "a", "b"])
    assert build_daemon_settings(args) == DaemonSettings(300.0, TEN_SECONDLY)
    default = build_daemon_settings(parse_arguments(["--daemon-lifetime", "1days", "a", "b"]))
    assert default == DaemonSettings(86400.0, Period(1, "minutely"))
    assert build_daemon_settings(parse_arguments(["a", "b"])) is None
    with pytest.raises(UsageError, match="needs --daemon-lifetime"):
        build_daemon_settings(parse_arguments(["--daemon-frequency", "hourly", "a", "b"]))


@pytest.mark.parametrize(
    "argv",
    [
        ["--daemon-lifetime", "0seconds"],
        ["--daemon-lifetime", "10"],
        ["--daemon-lifetime", "soon"],
        ["--daemon-lifetime", "1days", "--daemon-frequency", "millisecondly"],
        ["--daemon-lifetime", "1days", "--daemon-frequency", "7secondly"],
        ["--daemon-lifetime", "1days", "--daemon-frequency", "often"],
    ],
)
def test_bad_daemon_options_are_refused(argv: list[str], no_zfs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "tank/a", "backup/a"])
    assert exit_info.value.code == 2 and not no_zfs.exists()
    assert "--daemon-" in capsys.readouterr().err
