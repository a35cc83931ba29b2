"""Fencing: parsing the DR state properties and the refusal decision, over every small case."""

from __future__ import annotations

import itertools
from typing import Optional

import pytest

from zferry import fencing, validate, zfs
from zferry.errors import UsageError
from zferry.fencing import (
    EPOCH_PROPERTY,
    ROLE_PROPERTY,
    DrState,
    DrStateError,
    check_replication,
    parse_dr_state,
)
from zferry.model import Dataset


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, DrState(None, None)),
        ({ROLE_PROPERTY: "-", EPOCH_PROPERTY: "-"}, DrState(None, None)),
        ({ROLE_PROPERTY: "", EPOCH_PROPERTY: ""}, DrState(None, None)),
        ({ROLE_PROPERTY: "primary", EPOCH_PROPERTY: "3"}, DrState("primary", 3)),
        ({ROLE_PROPERTY: "standby"}, DrState("standby", None)),
        ({ROLE_PROPERTY: "fenced", EPOCH_PROPERTY: "0"}, DrState("fenced", 0)),
        ({EPOCH_PROPERTY: "007"}, DrState(None, 7)),
    ],
)
def test_parse(values: dict[str, str], expected: DrState) -> None:
    assert parse_dr_state(values) == expected


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        (ROLE_PROPERTY, "Primary"),
        (ROLE_PROPERTY, "master"),
        (EPOCH_PROPERTY, "-1"),
        (EPOCH_PROPERTY, "+2"),
        (EPOCH_PROPERTY, "1.5"),
        (EPOCH_PROPERTY, "two"),
        (EPOCH_PROPERTY, "1" * 19),
        (EPOCH_PROPERTY, "\u0661"),  # a non-ASCII digit: int() would take it
    ],
)
def test_malformed_values_are_clear_errors(prop: str, value: str) -> None:
    with pytest.raises(DrStateError) as caught:
        parse_dr_state({prop: value}, "tank/db")
    message = str(caught.value)
    assert message.startswith(f"tank/db: {prop}=")
    assert repr(value) in message and "zfs inherit" in message
    assert caught.value.exit_code == 1


def test_as_properties_round_trips() -> None:
    for role, epoch in itertools.product([None, *fencing.ROLES], [None, 0, 12]):
        state = DrState(role, epoch)
        assert parse_dr_state(state.as_properties()) == state


def expected_refusal(source: DrState, destination: DrState) -> Optional[str]:
    """The rules, stated independently: which rule refuses, if any."""
    if source.role == "fenced":
        return "fenced"
    if destination.epoch is not None and destination.epoch > (source.epoch or 0):
        return "epoch"
    return None


STATES = [DrState(r, e) for r, e in itertools.product([None, *fencing.ROLES], [None, 0, 1, 2])]


def test_every_pair_of_states() -> None:
    for source, destination in itertools.product(STATES, STATES):
        message = check_replication(source, destination)
        rule = expected_refusal(source, destination)
        if rule is None:
            assert message is None, (source, destination)
        else:
            assert message is not None, (source, destination)
            assert ("is fenced" in message) == (rule == "fenced")
            assert "zferry-dr status" in message


def test_messages_name_the_epochs() -> None:
    message = check_replication(DrState("primary", 1), DrState("primary", 2))
    assert message is not None
    assert f"{EPOCH_PROPERTY} 2 is higher than the source's (1)" in message
    message = check_replication(DrState(None, None), DrState("standby", 1))
    assert message is not None and "(unset, counts as 0)" in message
    # A destination without an epoch is not in a DR group: anything may be received into it.
    assert check_replication(DrState("primary", 5), DrState(None, None)) is None
    assert check_replication(DrState(None, None), DrState(None, 0)) is None


def test_refusal_reads_listed_roots() -> None:
    fenced = Dataset("src/db", user_props={ROLE_PROPERTY: "fenced", EPOCH_PROPERTY: "3"})
    newer = Dataset("dst/db", user_props={ROLE_PROPERTY: "primary", EPOCH_PROPERTY: "4"})
    plain = Dataset("dst/db", user_props={ROLE_PROPERTY: "-", EPOCH_PROPERTY: "-"})
    assert fencing.state_of(None) == DrState()
    assert fencing.refusal(None, None) is None
    assert fencing.refusal(Dataset("src/db"), plain) is None
    assert "is fenced" in (fencing.refusal(fenced, None) or "")
    assert "4 is higher" in (fencing.refusal(plain, newer) or "")
    broken = Dataset("src/db", user_props={EPOCH_PROPERTY: "x"})
    assert (fencing.refusal(broken, plain) or "").startswith("src/db: zferry:dr-epoch='x'")


def test_every_receive_excludes_the_dr_properties() -> None:
    excluded = ["-x", ROLE_PROPERTY, "-x", EPOCH_PROPERTY]
    assert zfs.receive("dst/a") == ["zfs", "receive", "-u", "-s", *excluded, "dst/a"]
    assert zfs.receive("dst/a", force=True, resumable=False, dry_run=True)[2:-1] == ["-u", "-F", "-n", *excluded]
    # Naming them in the options as well would make zfs refuse ("specified multiple times"): dropped there.
    extra = ["-x", ROLE_PROPERTY, "-o", f"{EPOCH_PROPERTY}=9", "-o", "compression=lz4", "-x", "mountpoint"]
    argv = zfs.receive("dst/a", extra=extra)
    assert argv == ["zfs", "receive", "-u", "-s", *excluded, "-o", "compression=lz4", "-x", "mountpoint", "dst/a"]


@pytest.mark.parametrize("words", [["-x", ROLE_PROPERTY], [f"-x{EPOCH_PROPERTY}"], ["-uo", f"{ROLE_PROPERTY}=primary"]])
def test_recv_options_cannot_name_the_dr_properties(words: list[str]) -> None:
    with pytest.raises(UsageError, match="never sets or carries the DR state properties"):
        validate.zfs_recv_options(words)
    assert validate.zfs_recv_options(["-x", "zferry:other"]) == ("-x", "zferry:other")
