"""Every option has a line of help, and --help keeps its examples."""

from __future__ import annotations

import argparse

import pytest

from zferry.cli.main import main
from zferry.cli.options import build_parser


def test_every_option_has_help_text() -> None:
    missing = [
        a.option_strings[0] if a.option_strings else a.dest
        for a in build_parser()._actions
        if a.help != argparse.SUPPRESS and not (a.help or "").strip()
    ]
    assert missing == []


def test_only_the_sub_millisecond_anchor_is_hidden() -> None:
    hidden = [a.option_strings[0] for a in build_parser()._actions if a.help == argparse.SUPPRESS]
    assert hidden == ["--millisecondly_microsecond"]


def test_help_shows_examples_and_the_anchor_ranges(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "zferry tank/data backup/data" in out and "+pairs.tsv" in out
    assert "the hour (0..23) at which daily snapshots are due" in " ".join(out.split())
