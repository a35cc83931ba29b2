"""Every number option is range-checked before anything runs (exit 2, no process started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zferry.cli.lifecycle_options import build_lifecycle_config
from zferry.cli.main import build_config, main, parse_arguments
from zferry.cli.ssh_options import build_ssh_settings

PAIR = ["tank/a", "backup/a"]


def refused(argv: list[str], no_zfs: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run zferry with `argv`; it must exit 2 without starting zfs, ssh or sudo. Returns stderr."""
    try:
        status = main([*argv, *PAIR])
    except SystemExit as exit_info:  # argparse reports bad values itself
        status = exit_info.code  # type: ignore[assignment]
    assert status == 2
    assert not no_zfs.exists()
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--threads", "0"],
        ["--threads", "-2"],
        ["--threads", "many"],
        ["--timeout", "0"],
        ["--timeout", "-1"],
        ["--timeout", "nan"],
        ["--timeout", "inf"],
    ],
)
def test_threads_and_timeout(argv: list[str], no_zfs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(argv, no_zfs, capsys)
    assert f"argument {argv[0]}: " in err and ("out of range" in err or "is not a" in err)


@pytest.mark.parametrize(
    "argv",
    [
        ["--retries", "-1"],
        ["--retry-min-sleep-secs", "-0.5"],
        ["--retry-max-sleep-secs", "-1"],
        ["--retry-max-elapsed-secs", "-1"],
        ["--retry-min-sleep-secs", "10", "--retry-max-sleep-secs", "1"],
    ],
)
def test_retries(argv: list[str], no_zfs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(argv, no_zfs, capsys)
    assert "out of range" in err or "make the minimum the smaller one" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--ssh-src-port", "0"],
        ["--ssh-dst-port", "65536"],
        ["--ssh-dst-port", "ssh"],
        ["--ssh-control-persist-secs", "0"],
    ],
)
def test_ssh_ports_and_persistence(argv: list[str], no_zfs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(argv, no_zfs, capsys)
    assert "1 to 65535" in err or "out of range" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--progress-interval", "-1"],
        ["--progress-interval", "0"],
        ["--mbuffer-size", "0"],
        ["--mbuffer-size", "128k"],
        ["--mbuffer-size", "639k"],
        ["--mbuffer-size", "lots"],
        ["--bwlimit", "0"],
        ["--bwlimit", "0k"],
        ["--bwlimit", "fast"],
        ["--compression-program-opts=-0"],
        ["--compression-program-opts=-20"],
    ],
)
def test_transfer_pipeline_numbers(argv: list[str], no_zfs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(argv, no_zfs, capsys)
    assert any(w in err for w in ("out of range", "at least 640k", "above 0", "from -1 to -19"))


@pytest.mark.parametrize(
    ("option", "bad"),
    [
        ("--daily_hour", "24"),
        ("--daily_hour", "-1"),
        ("--hourly_minute", "60"),
        ("--minutely_second", "60"),
        ("--weekly_weekday", "7"),
        ("--monthly_monthday", "0"),
        ("--monthly_monthday", "32"),
        ("--yearly_month", "13"),
        ("--yearly_year", "0"),
        ("--secondly_millisecond", "1000"),
    ],
)
def test_anchors(option: str, bad: str, no_zfs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert f"{option}: {bad} is out of range" in refused([option, bad], no_zfs, capsys)


def test_values_at_the_edges_of_their_ranges_are_accepted() -> None:
    args = parse_arguments(
        [
            *["--threads", "1", "--timeout", "0.5", "--retries", "0", "--retry-min-sleep-secs", "0"],
            *["--retry-max-sleep-secs", "0", "--retry-max-elapsed-secs", "0", "--progress-interval", "1"],
            *["--mbuffer-size", "640k", "--bwlimit", "1", "--compression-program-opts=-19"],
            *["--ssh-src-port", "1", "--ssh-dst-port", "65535", "--ssh-control-persist-secs", "1"],
            *["--daily_hour", "23", "--weekly_weekday", "6", "--monthly_monthday", "31", "--yearly_year", "9999"],
            *PAIR,
        ]
    )
    config = build_config(args)
    assert (config.threads, config.retry.retries, config.stream.progress_interval) == (1, 0, 1)
    assert (build_ssh_settings(args).src.port, build_ssh_settings(args).dst.port) == (1, 65535)
    build_lifecycle_config(args)
