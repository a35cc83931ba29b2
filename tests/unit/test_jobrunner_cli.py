"""zferry-jobrunner's command line: checks before anything runs, the dry run, a run's summary."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zferry.cli.jobrunner import main
from zferry.cli.options import build_parser as zferry_parser
from zferry.jobrunner.config import build_parser

PROJECT = Path(__file__).resolve().parents[2]

LOCAL = [
    "tank/a",
    "a",
    "--src-hosts",
    "['localhost']",
    "--dst-hosts",
    "{'localhost': ['onsite']}",
    "--dst-root-datasets",
    "{'localhost': 'backup'}",
    "--src-snapshot-plan",
    "{'prod': {'onsite': {'hourly': 3}}}",
    "--no-log-file",
]


def test_every_option_has_help_text_and_none_clashes_with_zferry() -> None:
    own = [a for a in build_parser()._actions if a.option_strings]
    assert [a.option_strings for a in own if not (a.help or "").strip()] == []
    shared = {s for a in own for s in a.option_strings} & {
        s for a in zferry_parser()._actions for s in a.option_strings
    }
    assert shared == {"-h", "--help", "-r", "--recursive", "--create-src-snapshots"}


@pytest.mark.parametrize(
    "argv",
    [
        ["--workers", "0", "--replicate"],
        ["--workers", "many", "--replicate"],
        ["--workers", "0%", "--replicate"],
        ["--work-period-seconds", "-1", "--replicate"],
        ["--work-period-seconds", "inf", "--replicate"],
        ["--job-id", "a b", "--replicate"],
        ["--replicate", "--threads", "0"],  # a zferry option, checked by zferry's parser per sub-job
        ["--replicate", "--no-such-option"],
        ["--replicate", "--src-hosts", "['h1', 'h1']"],
        ["--create-src-snapshots", "--src-snapshot-plan", "{'prod': {'onsite': {'hourly': 'x'}}}"],
    ],
)
def test_bad_input_exits_2_before_anything_runs(argv: list[str], no_zfs: Path) -> None:
    assert main([*LOCAL, *argv]) == 2
    assert not no_zfs.exists()


def test_jobrunner_dryrun_prints_copy_pasteable_command_lines(capsys: pytest.CaptureFixture[str], no_zfs: Path) -> None:
    assert main([*LOCAL, "--create-src-snapshots", "--replicate", "--jobrunner-dryrun", "--dryrun"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and not no_zfs.exists()
    words = shlex.split(lines[1], comments=True)
    assert words[:3] == ["zferry", "tank/a", "backup/a"] and "--dryrun=send" in words
    assert lines[1].endswith("# localhost/run/~/replicate/localhost")


def test_a_run_in_process_reports_each_sub_job(capsys: pytest.CaptureFixture[str], no_zfs: Path) -> None:
    """zfs fails here: creation fails, the replication waiting for it is skipped, monitoring still runs."""
    status = main(
        [
            *LOCAL,
            "--create-src-snapshots",
            "--replicate",
            "--monitor-src-snapshots",
            "--workers",
            "2",
            "--monitor-snapshot-plan",
            "{'prod': {'onsite': {'hourly': {'critical': '2 hours'}}}}",
        ]
    )
    captured = capsys.readouterr()
    assert status == 3  # the worst: the monitor's UNKNOWN
    assert no_zfs.read_text().startswith("zfs ")
    table = {line.split()[0]: line.split()[1:3] for line in captured.err[captured.err.index("sub-job ") :].splitlines()}
    assert table["localhost/run/create-src-snapshots"] == ["failed", "1"]
    assert table["localhost/run/~/replicate/localhost"] == ["skipped", "0"]
    assert table["localhost/monitor/src-snapshots"] == ["failed", "3"]
    assert "localhost/monitor/src-snapshots: ZFERRY UNKNOWN" in captured.out
    assert "[localhost/run/create-src-snapshots]" in captured.err  # log records carry the sub-job's name


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--dst-root-datasets" in out and "examples:" in out


def test_jobrunner_dryrun_checks_the_sub_jobs_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*LOCAL, "--replicate", "--jobrunner-dryrun", "--threads", "0"]) == 2
    assert capsys.readouterr().out == ""


def test_sigterm_stops_every_sub_job(tmp_path: Path) -> None:
    """A `zfs` that hangs: SIGTERM ends the jobrunner and its sub-jobs' children within seconds, exit 143."""
    started = tmp_path / "started"
    (tmp_path / "zfs").write_text(f"#!/bin/sh\ntouch {started}\nexec sleep 60\n")
    (tmp_path / "zfs").chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}", PYTHONPATH=str(PROJECT / "src"), HOME=str(tmp_path))
    argv = [*LOCAL, "--create-src-snapshots", "--replicate", "--workers", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "zferry.cli.jobrunner", *argv], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert started.exists()
    begin = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err.decode()
    assert time.monotonic() - begin < 10
    assert b"cancelled" in err  # the replication never started
