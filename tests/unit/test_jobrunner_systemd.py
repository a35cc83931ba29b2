"""`zferry-jobrunner --emit-systemd DIR`: the timer, service, logrotate and cron files."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zferry.cli.jobrunner import main
from zferry.jobrunner.systemd import exec_quote

JOB = [
    "tank/home",
    "home",
    "--src-hosts",
    "['localhost']",
    "--dst-hosts",
    "{'nas1': ['onsite']}",
    "--dst-root-datasets",
    "{'nas1': 'backups/^SRC_HOST'}",
    "--src-snapshot-plan",
    "{'prod': {'onsite': {'hourly': 36, 'daily': 31}}}",
    "--create-src-snapshots",
    "--replicate",
    "--job-id",
    "nightly",
]


def emit(tmp_path: Path, *extra: str) -> dict[str, str]:
    assert main([*JOB, "--emit-systemd", str(tmp_path / "units"), *extra]) == 0
    return {p.name: p.read_text() for p in (tmp_path / "units").iterdir()}


def settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        if equals and not line.startswith(("#", "[")):
            out.setdefault(key, []).append(value)
    return out


def test_timer_and_service(tmp_path: Path, no_zfs: Path) -> None:
    files = emit(tmp_path)
    assert sorted(files) == [f"zferry-nightly.{s}" for s in ("cron", "logrotate", "service", "timer")]
    timer = settings(files["zferry-nightly.timer"])
    assert timer["OnCalendar"] == ["*-*-* 03:55:00"] and timer["RandomizedDelaySec"] == ["10min"]
    assert timer["Persistent"] == ["true"] and timer["Unit"] == ["zferry-nightly.service"]
    service = settings(files["zferry-nightly.service"])
    expected = {
        "Type": "oneshot", "Restart": "on-failure", "RestartSec": "5min", "StartLimitIntervalSec": "1h",
        "StartLimitBurst": "3", "User": "zferry", "StandardOutput": "journal", "LogsDirectory": "zferry",
        "CacheDirectory": "zferry", "RuntimeDirectory": "zferry", "ProtectSystem": "strict",
        "PrivateTmp": "yes", "NoNewPrivileges": "yes", "DeviceAllow": "/dev/zfs rw",
    }  # fmt: skip
    assert {key: service[key] for key in expected} == {key: [value] for key, value in expected.items()}
    command = shlex.split(service["ExecStart"][0])  # our quoting is a subset of the shell's
    assert command[:3] == [sys.executable, "-m", "zferry.cli.jobrunner"]
    assert command[3:] == [
        *JOB,
        "--log-dir",
        "/var/log/zferry",
        "--lock-dir",
        "/run/zferry",
        "--no-privilege-elevation",
    ]
    assert not any(w.startswith("--force") for w in command) and not no_zfs.exists()


def test_logrotate_and_cron(tmp_path: Path) -> None:
    files = emit(tmp_path, "--systemd-user", "backup", "--systemd-on-calendar", "hourly")
    rotate = files["zferry-nightly.logrotate"].split()
    assert rotate[0] == "/var/log/zferry/*.jsonl"
    assert {"daily", "compress"} <= set(rotate) and rotate[rotate.index("rotate") + 1] == "14"
    cron = files["zferry-nightly.cron"].splitlines()[-1]
    assert cron.startswith(f"55 3 * * * backup {sys.executable} -m zferry.cli.jobrunner tank/home home ")
    assert "--systemd-user" not in cron and "--emit-systemd" not in cron
    assert "OnCalendar=hourly" in files["zferry-nightly.timer"] and "User=backup" in files["zferry-nightly.service"]


def test_exec_quote_escapes_what_systemd_expands() -> None:
    assert exec_quote("--src-hosts") == "--src-hosts"
    assert exec_quote("{'a': \"b\"}") == '"{\'a\': \\"b\\"}"'
    assert exec_quote("50%") == '"50%%"' and exec_quote("$HOME") == '"$$HOME"'


@pytest.mark.parametrize(
    "extra",
    [
        ["--force-rollback-to-latest-common-snapshot"],
        ["--systemd-on-calendar", "daily\nExecStartPre=/bin/sh"],
        ["--systemd-user", "root; rm"],
    ],
)
def test_refused(extra: list[str], tmp_path: Path) -> None:
    assert main([*JOB, "--emit-systemd", str(tmp_path / "units"), *extra]) == 2
    assert not (tmp_path / "units").exists()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    files = emit(tmp_path)
    units = [str(tmp_path / "units" / name) for name in files if name.endswith((".service", ".timer"))]
    proc = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    assert proc.returncode == 0 and "nightly" not in proc.stderr, proc.stderr
