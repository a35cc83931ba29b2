"""The send-step planner, checked against a simulation of what the destination ends up holding."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.fixtures import history
from zferry.model import Version
from zferry.plan.steps import SendStep, send_steps


def simulate(src: list[Version], steps: list[SendStep], start: set[str]) -> list[str]:
    """Apply the steps as ZFS would and return the destination's snapshot names, oldest first."""
    have = set(start)
    latest = None
    for step in steps:
        if step.base is None:
            assert not have, "a full send needs an empty destination"
        else:
            assert step.base.name in have or step.base.is_bookmark, f"base {step.base} missing on dst"
            if latest is not None:
                assert step.base.createtxg <= latest.createtxg
        if step.intermediates:
            assert step.base is not None and not step.base.is_bookmark
            have.update(s.name for s in src if step.base.createtxg < s.createtxg <= step.target.createtxg)
        else:
            have.add(step.target.name)
        latest = step.target
    return [s.name for s in src if s.name in have]


def test_worked_example_from_docstring() -> None:
    src = history("a b c d e f")
    selected = {s.guid for s in src if s.name != "c"}
    steps = send_steps(src, selected, src[0])
    assert [str(s) for s in steps] == ["-i @a src/ds@b", "-i @b src/ds@d", "-I @d src/ds@f"]


def test_full_then_incremental_stream() -> None:
    src = history("s1 s2 s3")
    steps = send_steps(src, {s.guid for s in src}, None)
    assert [s.kind for s in steps] == ["full", "-I"]
    assert steps[0].target.name == "s1" and steps[1].target.name == "s3"


def test_no_stream_sends_only_the_latest() -> None:
    src = history("s1 s2 s3 s4")
    steps = send_steps(src, {s.guid for s in src}, src[1], no_stream=True)
    assert [str(s) for s in steps] == ["-i @s2 src/ds@s4"]


def test_no_stream_first_run_sends_only_the_latest_in_full() -> None:
    src = history("s1 s2 s3 s4")
    steps = send_steps(src, {s.guid for s in src if s.name != "s4"}, None, no_stream=True)
    assert [str(s) for s in steps] == ["full src/ds@s3"]


def test_from_bookmark_first_step_is_dash_i() -> None:
    snaps = history("s3 s4 s5", start_txg=30)
    base = history("#s2", start_txg=20)[0]
    steps = send_steps(snaps, {s.guid for s in snaps}, base)
    assert [str(s) for s in steps] == ["-i #s2 src/ds@s3", "-I @s3 src/ds@s5"]


def test_nothing_selected_after_base_is_up_to_date() -> None:
    src = history("a b")
    assert send_steps(src, {src[0].guid}, src[1]) == []
    assert send_steps(src, set(), None) == []


@pytest.mark.parametrize("n", range(1, 7))
def test_every_selection_of_short_histories(n: int) -> None:
    """Exhaustive: every base position and every subset of selected snapshots, both stream modes."""
    src = history(" ".join(f"s{i}" for i in range(n)))
    for base_index in [None, *range(n)]:
        base = None if base_index is None else src[base_index]
        start = set() if base is None else {s.name for s in src[: base_index + 1]}
        for mask in itertools.product([False, True], repeat=n):
            selected = {s.guid for s, keep in zip(src, mask) if keep}
            newer = [s.name for i, s in enumerate(src) if mask[i] and (base_index is None or i > base_index)]
            for no_stream in (False, True):
                steps = send_steps(src, selected, base, no_stream)
                result = simulate(src, steps, start)
                expected_new = newer[-1:] if no_stream else newer  # no_stream: only the latest, with or without base
                assert result == [s.name for s in src if s.name in start or s.name in expected_new], (
                    base_index,
                    mask,
                    no_stream,
                    [str(s) for s in steps],
                )
                assert len(steps) <= (min(1, len(newer)) if no_stream else len(newer))
                if no_stream and base is None and newer:  # first run: the latest alone, in full
                    assert [s.kind for s in steps] == ["full"]


@given(st.lists(st.booleans(), min_size=1, max_size=40), st.integers(min_value=-1, max_value=39))
def test_random_long_histories_send_exactly_the_selection(mask: list[bool], base_index: int) -> None:
    src = history(" ".join(f"s{i}" for i in range(len(mask))))
    base_index = min(base_index, len(src) - 1)
    base = None if base_index < 0 else src[base_index]
    start = set() if base is None else {s.name for s in src[: base_index + 1]}
    selected = {s.guid for s, keep in zip(src, mask) if keep}
    steps = send_steps(src, selected, base)
    wanted = {s.name for i, s in enumerate(src) if mask[i] and i > base_index}
    assert set(simulate(src, steps, start)) == start | wanted
