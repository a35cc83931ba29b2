"""Shared fixtures for unit tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A HOME of its own per test: zferry runs write their log files to ~/zferry-logs, not the developer's."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture
def no_zfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH whose `zfs`, `ssh` and `sudo` only record that they were called (and fail).

    Proves that nothing ran: the returned file exists only if one of them was started.
    """
    record = tmp_path / "calls"
    for tool in ("zfs", "ssh", "sudo"):
        script = tmp_path / tool
        script.write_text(f'#!/bin/sh\necho {tool} "$@" >> {record}\nexit 1\n')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    return record
