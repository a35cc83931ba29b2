"""Retries with an injected clock and sleep: only transient errors are retried, with growing pauses."""

from __future__ import annotations

import pytest

from zferry.errors import CommandError
from zferry.retry import RetryPolicy, backoff, call_with_retries, is_transient

DROPPED = CommandError("ssh failed", ["ssh"], 255, "Connection reset by peer")
LOST = CommandError("zfs receive failed", ["zfs", "receive"], 255, "")
LOST.transport_failure = True
PERMANENT = CommandError("zfs receive failed", ["zfs"], 1, "destination has been modified")


def flaky(failures: list[BaseException]):  # type: ignore[no-untyped-def]
    calls = []

    def action() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "done"

    return action, calls


def test_transient_errors_are_retried_then_succeed() -> None:
    action, calls = flaky([DROPPED, DROPPED])
    sleeps: list[float] = []
    prepared = []
    result = call_with_retries(
        action, RetryPolicy(retries=2), "x", lambda: prepared.append(1), sleeps.append, rand=lambda: 1.0
    )
    assert result == "done" and len(calls) == 3 and len(prepared) == 2
    assert sleeps == [0.25, 0.5]  # min 0.125 doubled each attempt


def test_gives_up_after_the_last_retry() -> None:
    action, calls = flaky([DROPPED] * 5)
    with pytest.raises(CommandError):
        call_with_retries(action, RetryPolicy(retries=2), "x", sleep=lambda s: None)
    assert len(calls) == 3


def test_permanent_errors_are_not_retried() -> None:
    action, calls = flaky([PERMANENT])
    with pytest.raises(CommandError):
        call_with_retries(action, RetryPolicy(retries=5), "x", sleep=lambda s: None)
    assert len(calls) == 1


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(min_sleep=1, max_sleep=10)
    assert backoff(10, policy, lambda: 1.0) == 10
    assert 5 <= backoff(10, policy, lambda: 0.0) <= 10


def test_classification() -> None:
    assert is_transient(CommandError("x", [], 1, "cannot receive: failed to read from stream"))
    assert not is_transient(ValueError("x"))
    assert not is_transient(PERMANENT)
    assert is_transient(LOST)
    assert not is_transient(
        CommandError("zfs send failed", ["zfs", "send", "-t", "x"], 255, "used in the initial send no longer exists")
    )
