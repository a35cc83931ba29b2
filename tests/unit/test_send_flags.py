"""Record flags per chain (-L, -c, -e): decided at the full send, recorded, kept by every incremental."""

from __future__ import annotations

import pytest

from zferry.cli.main import build_config, parse_arguments
from zferry.errors import UsageError
from zferry.plan.send_flags import (
    DEFAULT,
    ChainFlags,
    chain_flags,
    letters,
    parse_letters,
    plan_flags,
    recorded_letters,
)


def test_letters_are_read_from_short_combined_and_long_options() -> None:
    assert letters(["-Lc", "-p"]) == "Lc"
    assert letters(["--large-block", "--embed", "-v"]) == "Le"
    assert letters(["--raw"]) == "w" and letters(["-wc"]) == "cw"
    assert letters([]) == "" and letters(["-p", "-b"]) == ""


def test_a_new_chain_gets_the_defaults_and_records_them() -> None:
    assert chain_flags([], True, None, "Lce") == ChainFlags(("-L", "-c", "-e"), "Lce")
    assert chain_flags(["-p"], True, None, "Lce") == ChainFlags(("-L", "-c", "-e"), "Lce")
    assert chain_flags([], True, None, "") == ChainFlags((), "none")


def test_the_users_own_flags_win_and_are_recorded() -> None:
    assert chain_flags(["-c"], True, None, "Lce") == ChainFlags((), "c")
    assert chain_flags(["--raw"], True, None, "Lce") == ChainFlags((), "w")


def test_an_existing_chain_keeps_its_recorded_flags() -> None:
    assert chain_flags([], False, "Lce", "") == ChainFlags(("-L", "-c", "-e"), None)
    assert chain_flags([], False, "", "Lce") == ChainFlags((), None)  # recorded plain: stays plain
    assert chain_flags(["-c"], False, "Lce", "Lce") == ChainFlags(("-L", "-e"), None)
    assert chain_flags(["-w"], False, "Lce", "Lce") == ChainFlags((), None)  # raw carries blocks as they are


def test_a_chain_without_a_record_is_sent_as_before() -> None:
    """Received before zferry recorded flags: new defaults must not toggle -L within it."""
    assert chain_flags([], False, None, "Lce") == ChainFlags()
    assert chain_flags(["-c"], False, None, "Lce") == ChainFlags()


def test_turning_on_large_blocks_within_a_recorded_chain_is_refused() -> None:
    with pytest.raises(UsageError, match="without -L"):
        chain_flags(["-L"], False, "ce", "Lce")
    assert chain_flags(["-L"], False, "Lce", "Lce") == ChainFlags(("-c", "-e"), None)


def test_a_plans_later_sends_follow_its_first() -> None:
    head, rest = plan_flags([], "Lce", True, None)
    assert head == ChainFlags(("-L", "-c", "-e"), "Lce") and rest == ChainFlags(("-L", "-c", "-e"), None)
    head, rest = plan_flags([], "Lce", False, None)
    assert head == rest == ChainFlags()
    head, rest = plan_flags([], "Lce", False, None, clone_origin_recorded="Lc", is_clone=True)
    assert head == ChainFlags(("-L", "-c"), "Lc") and rest == ChainFlags(("-L", "-c"), None)
    head, _ = plan_flags([], "Lce", False, None, clone_origin_recorded=None, is_clone=True)
    assert head == ChainFlags()  # the origin's chain has no record: the clone has none either


def test_recorded_values() -> None:
    assert recorded_letters(None) is None and recorded_letters("-") is None
    assert recorded_letters("none") == "" and recorded_letters("Lce") == "Lce"
    assert recorded_letters("garbage") is None


def test_the_option_parses_letters_or_none() -> None:
    assert parse_letters("Lce") == "Lce" and parse_letters("-L -c") == "Lc" and parse_letters("e,L") == "Le"
    assert parse_letters("none") == ""
    for bad in ("", "x", "Lw", "-p"):
        with pytest.raises(UsageError, match="letters out of Lce"):
            parse_letters(bad)


def test_the_cli_default_is_the_engines() -> None:
    assert build_config(parse_arguments(["p/a", "q/a"])).send_flags == DEFAULT
    assert build_config(parse_arguments(["--zfs-send-default-flags=none", "p/a", "q/a"])).send_flags == ""
