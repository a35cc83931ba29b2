"""Progress lines: format, terminal redraw, and no noise in logs for short transfers."""

from __future__ import annotations

import io
import logging

from zferry.observe.progress import Progress, format_status, human_bytes


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_with_and_without_total() -> None:
    assert human_bytes(1536) == "1.5 KiB"
    assert format_status("dst", 512 << 20, 1 << 30, 10) == "dst: 512.0 MiB of 1.0 GiB (50%), 51.2 MiB/s, ETA 10 s"
    assert format_status("dst", 3000, 1000, 1) == "dst: 2.9 KiB, 2.9 KiB/s"  # estimate was low: no bogus ETA


def test_terminal_line_is_redrawn_in_place() -> None:
    now = [0.0]
    out = Tty()
    progress = Progress("dst", 100, out, clock=lambda: now[0])
    now[0] = 1.0
    progress.update(50)
    progress.finish()
    assert out.getvalue().startswith("\r\033[K") and "50%" in out.getvalue() and out.getvalue().endswith("\n")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_logs_only_report_transfers_longer_than_an_interval() -> None:
    logger, collect = logging.getLogger("zferry"), Collect()
    logger.addHandler(collect)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        now = [0.0]
        progress = Progress("dst", None, io.StringIO(), clock=lambda: now[0], quiet_seconds=27)
        now[0] = 2.0
        progress.update(10)
        assert collect.messages == []
        now[0] = 30.0
        progress.update(10 << 20)
        assert collect.messages == ["dst: 10.0 MiB, 341.3 KiB/s"]  # 10 MiB in 30 s
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)
