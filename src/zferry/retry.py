"""Retry transient failures with jittered exponential backoff. Knows nothing about ZFS.

The clock, the sleep and the random source are parameters, so tests run instantly.
"""

from __future__ import annotations

import logging
import random
import re
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from zferry.errors import CommandError

log = logging.getLogger("zferry")
T = TypeVar("T")

# What a dropped or flaky network looks like from here; anything else is treated as permanent.
_TRANSIENT = re.compile(
    r"connection (reset|timed out|closed|lost)|broken pipe|failed to read from stream|"
    r"timeout, server .* not responding|no route to host|network is unreachable|"
    r"resource temporarily unavailable|kex_exchange_identification|"
    r"partially-complete state|dataset is busy",  # a receive of a run that just died, still ending
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2
    min_sleep: float = 0.125
    max_sleep: float = 300.0
    max_elapsed: float = 3600.0


def is_transient(error: BaseException) -> bool:
    """ssh's own failure (exit 255 of a remote command) or an error text that says the connection broke."""
    if not isinstance(error, CommandError):
        return False
    return error.transport_failure or bool(_TRANSIENT.search(f"{error.stderr} {error}"))


def backoff(attempt: int, policy: RetryPolicy, rand: Callable[[], float]) -> float:
    """Sleep before retry number `attempt` (1-based): a random point up to min * 2^attempt, capped."""
    ceiling = min(policy.max_sleep, policy.min_sleep * 2.0**attempt)
    return float(ceiling * (0.5 + rand() / 2))


def call_with_retries(
    action: Callable[[], T],
    policy: RetryPolicy,
    what: str,
    before_retry: Callable[[], object] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
) -> T:
    """Run `action`; on a transient error retry up to `policy.retries` times, calling `before_retry` first."""
    started = clock()
    attempt = 0
    while True:
        try:
            return action()
        except CommandError as error:
            attempt += 1
            if attempt > policy.retries or not is_transient(error) or clock() - started > policy.max_elapsed:
                raise
            pause = backoff(attempt, policy, rand)
            log.warning("%s: %s; retry %d of %d in %.1f s", what, error, attempt, policy.retries, pause)
            sleep(pause)
            before_retry()


def call_idempotent(
    action: Callable[[], object],
    policy: RetryPolicy,
    what: str,
    already_done: Callable[[CommandError], bool],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
) -> None:
    """Run a step that changes something, with retries; a retry that finds the change made counts as done.

    A dropped connection may hide that the first attempt succeeded: when a retry fails with an error
    that `already_done` recognises (e.g. "already exists" for a create, "does not exist" for a
    destroy), the step is done. On the first attempt that error is a real one and is raised.
    """
    attempts = 0

    def attempt() -> None:
        nonlocal attempts
        attempts += 1
        try:
            action()
        except CommandError as error:
            if attempts > 1 and already_done(error):
                log.info("%s: done by an earlier attempt (%s)", what, error)
                return
            raise

    call_with_retries(attempt, policy, what, sleep=sleep, clock=clock, rand=rand)
