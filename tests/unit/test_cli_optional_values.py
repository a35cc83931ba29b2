"""Options with an optional or variable number of values never swallow a dataset name."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from zferry.cli.main import main, parse_arguments
from zferry.cli.options import build_parser
from zferry.errors import UsageError

PAIR = ["tank/a", "backup/a"]


def optional_value_options() -> list[argparse.Action]:
    return [a for a in build_parser()._actions if a.option_strings and a.nargs == "?"]


def with_choices() -> list[argparse.Action]:
    return [a for a in optional_value_options() if a.choices is not None]


def test_the_optional_value_options_are_the_ones_we_test() -> None:
    names = sorted(a.option_strings[0] for a in optional_value_options())
    assert names == [
        "--cache-snapshots",
        "--compare-snapshot-lists",
        "--delete-dst-snapshots",
        "--delete-empty-dst-datasets",
        "--dryrun",
        "--log-syslog",  # no choices: its value (an address) is tested in test_logs.py
    ]


@pytest.mark.parametrize("action", optional_value_options(), ids=lambda a: a.option_strings[0])
def test_a_bare_optional_value_option_before_the_datasets_takes_its_default(action: argparse.Action) -> None:
    option = action.option_strings[0]
    for argv in ([option, *PAIR], [*PAIR, option], ["-r", option, *PAIR, "-v"]):
        args = parse_arguments(argv)
        assert args.root_dataset_pairs == PAIR
        assert getattr(args, action.dest) == action.const


@pytest.mark.parametrize("action", with_choices(), ids=lambda a: a.option_strings[0])
def test_a_value_is_given_with_equals(action: argparse.Action) -> None:
    option = action.option_strings[0]
    assert action.choices is not None
    for choice in action.choices:
        args = parse_arguments([f"{option}={choice}", *PAIR])
        assert (getattr(args, action.dest), args.root_dataset_pairs) == (choice, PAIR)


@pytest.mark.parametrize("action", with_choices(), ids=lambda a: a.option_strings[0])
def test_a_bare_option_followed_by_one_of_its_values_is_refused_as_ambiguous(action: argparse.Action) -> None:
    option = action.option_strings[0]
    assert action.choices is not None
    choice = list(action.choices)[-1]
    with pytest.raises(UsageError, match=re.escape(f"write {option}={choice}")):
        parse_arguments([option, choice, *PAIR])


def test_dryrun_before_the_datasets_runs_nothing(no_zfs: Path, tmp_path: Path) -> None:
    # the example; the fake zfs fails, which shows the pair was read as a pair
    assert main(["--lock-dir", str(tmp_path), "--dryrun", *PAIR]) == 1
    assert parse_arguments(["--dry", *PAIR]).dryrun == "send"  # an abbreviation, as argparse resolves it


def test_words_after_a_double_dash_are_left_alone() -> None:
    assert parse_arguments(["--", *PAIR]).root_dataset_pairs == PAIR


TIMES = "--include-snapshot-times-and-ranks"


@pytest.mark.parametrize(
    ("argv", "values"),
    [
        ([TIMES, "notime", "latest 10", *PAIR], [["notime", "latest 10"]]),
        (
            [TIMES, "notime", "oldest 5%", "all except latest 3", *PAIR],
            [["notime", "oldest 5%", "all except latest 3"]],
        ),
        ([TIMES, "1 week ago..anytime", *PAIR], [["1 week ago..anytime"]]),
        ([f"{TIMES}=notime", "latest 2", *PAIR], [["notime", "latest 2"]]),
        ([*PAIR, TIMES, "notime", "latest 1"], [["notime", "latest 1"]]),
        ([TIMES, "notime", "latest 1", *PAIR, "-r"], [["notime", "latest 1"]]),
        ([TIMES, "notime", "latest 1", TIMES, "*", *PAIR], [["notime", "latest 1"], ["*"]]),
        (["--include-snapshot-times", "notime", "latest1", *PAIR], [["notime", "latest1"]]),
    ],
)
def test_times_and_ranks_stop_at_the_first_word_that_is_no_rank(argv: list[str], values: list[list[str]]) -> None:
    args = parse_arguments(argv)
    assert args.include_snapshot_times_and_ranks == values
    assert args.root_dataset_pairs == PAIR


def test_datasets_after_times_and_ranks_keep_their_order_after_earlier_ones() -> None:
    argv = ["tank/a", "backup/a", TIMES, "notime", "latest 1", "tank/b", "backup/b"]
    assert parse_arguments(argv).root_dataset_pairs == ["tank/a", "backup/a", "tank/b", "backup/b"]


def test_a_leading_value_option_keeps_its_value() -> None:
    args = parse_arguments(["--threads", "3", TIMES, "notime", "latest 1", *PAIR])
    assert (args.threads, args.root_dataset_pairs) == (3, PAIR)


def test_a_timezone_with_a_plus_is_not_an_argument_file() -> None:
    assert parse_arguments(["--create-src-snapshots-timezone", "+0200", *PAIR]).create_src_snapshots_timezone == "+0200"
