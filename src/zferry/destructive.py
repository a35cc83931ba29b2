"""The one way to run a destructive or state-changing command: through the destroy guard and the audit log.

`check` asks the destroy guard and records a refusal; `execute` runs what an allowed decision
commands; `run` and `pipeline` run any other recorded action (a forced receive, a property
change, a hold release before a destroy, discarding a partial receive). Each writes the
"started" record before its command starts and the outcome after it ended; when the record
cannot be written, the command does not run (`AuditUnavailable`). The audit log is the
runner's (`Runner.audit`, set by the engine); without one (a dry run, or the Python API
without `ExecutionSettings.audit_log`) commands run unrecorded. A unit test checks that no
module runs these commands any other way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from functools import partial
from typing import IO, Callable, Optional, TypeVar

from zferry import zfs
from zferry.errors import CommandError
from zferry.exec.host import Host
from zferry.exec.runner import Runner, Stage
from zferry.observe import audit
from zferry.observe.audit import Intent
from zferry.plan import guard
from zferry.retry import RetryPolicy, call_idempotent

log = logging.getLogger("zferry")
T = TypeVar("T")

_ACTIONS = {
    guard.Action.DESTROY_VERSIONS: audit.DESTROY,
    guard.Action.DESTROY_TREE: audit.DESTROY_TREE,
    guard.Action.ROLLBACK: audit.ROLLBACK,
    guard.Action.FORCED_RECEIVE: audit.FORCED_RECEIVE,
}


def intent_of(destruction: guard.Destruction, host: Host, argv: Sequence[str] = ()) -> Intent:
    """The audit description of (one command of) a destruction. Pure."""
    d = destruction
    if d.action is guard.Action.DESTROY_VERSIONS and argv:
        target: tuple[str, ...] = tuple(_destroyed_names(argv[-1]))
    elif d.action is guard.Action.DESTROY_TREE:
        target = d.datasets or (d.dataset,)
    elif d.action is guard.Action.ROLLBACK and d.rollback_to is not None:
        target = (d.rollback_to.full_name, *(v.full_name for v in d.versions))
    else:
        target = tuple(v.full_name for v in d.versions) or (d.dataset,)
    return Intent(_ACTIONS[d.action], host.label, target, d.why, tuple(argv))


def _destroyed_names(argument: str) -> list[str]:
    """`pool/ds@a,b` -> [pool/ds@a, pool/ds@b]; a bookmark or dataset stays as it is."""
    dataset, at, names = argument.partition("@")
    return [f"{dataset}@{name}" for name in names.split(",")] if at else [argument]


def check(runner: Runner, host: Host, destruction: guard.Destruction) -> guard.Decision:
    """Ask the destroy guard about `destruction` on `host`; log the decision and record a refusal."""

    def listener(decision: guard.Decision) -> None:
        guard.log_decision(decision)
        if not decision.allowed and runner.audit is not None and not runner.dry_run:
            try:
                runner.audit.refused(intent_of(destruction, host), decision.refusals)
            except audit.AuditUnavailable as error:  # refused anyway; the engine reports the broken log
                log.error("%s", error)

    return guard.check(destruction, listener)


def execute(runner: Runner, host: Host, decision: guard.Decision, retry: Optional[RetryPolicy] = None) -> None:
    """Run the commands of an allowed decision on `host`, each recorded before and after.

    With `retry`, a transient failure is retried and a retry that finds the target gone counts as done.
    """
    for argv in decision.commands():
        command = partial(runner.run, host, argv, changes=True, classify=zfs.classify_error)
        what = f"{decision.destruction.dataset}: {' '.join(argv[:2])}"
        step: Callable[[], object] = command
        if retry is not None:
            step = partial(call_idempotent, command, retry, what, zfs.does_not_exist)
        audited(runner, intent_of(decision.destruction, host, argv), step)


def run(runner: Runner, host: Host, argv: Sequence[str], action: str, target: Sequence[str], reason: str) -> str:
    """Run one recorded state-changing zfs command on `host` (e.g. `zfs inherit`, `zfs receive -A`)."""
    intent = Intent(action, host.label, tuple(target), reason, tuple(argv))
    return audited(runner, intent, partial(runner.run, host, argv, changes=True, classify=zfs.classify_error))


def pipeline(
    runner: Runner,
    stages: Sequence[Stage],
    intent: Intent,
    run_anyway: bool = False,
    source: Optional[IO[bytes]] = None,
) -> None:
    """Run a recorded transfer pipeline (a forced receive: `intent.argv` is its `zfs receive -F`).

    `source`: the stream, when it does not come from a `zfs send` stage (the server's receive)."""
    step = partial(runner.pipeline, stages, classify=zfs.classify_error, run_anyway=run_anyway, source=source)
    audited(runner, intent, step)


def audited(runner: Runner, intent: Intent, step: Callable[[], T]) -> T:
    """Record `intent`, run `step`, record its outcome. Nothing runs when the first record cannot be written."""
    trail = runner.audit
    if trail is None or runner.dry_run:
        return step()
    record_id = trail.begin(intent)
    started = time.monotonic()
    try:
        result = step()
    except BaseException as error:
        details = outcome_details(error, time.monotonic() - started)
        try:
            trail.finish(record_id, intent, audit.FAILED, details)
        except audit.AuditUnavailable as unwritten:
            log.error("%s", unwritten)  # the command's own error is the one to raise
        raise
    trail.finish(record_id, intent, audit.OK, {"seconds": round(time.monotonic() - started, 3)})
    return result


def outcome_details(error: BaseException, seconds: float) -> dict[str, object]:
    """The fields of a "failed" record: exit status and the first line of stderr (or of the error). Pure."""
    if isinstance(error, CommandError):
        return {
            "exit_status": error.returncode,
            "error": audit.first_line(error.stderr) or audit.first_line(str(error)),
            "seconds": round(seconds, 3),
        }
    text = audit.first_line(str(error)) or type(error).__name__
    return {"exit_status": None, "error": text, "seconds": round(seconds, 3)}


def record_lock_takeover(trail: Optional[audit.AuditLog], path: str, where: str, pid: int) -> None:
    """Record that this run took over the lock of `where` (its file `path`) from process `pid`, which is gone."""
    if trail is None:
        return
    intent = Intent(audit.LOCK_TAKEOVER, "local", (where,), f"lock file {path} names pid {pid}, which no longer exists")
    try:
        trail.finish(trail.begin(intent), intent, audit.OK)
    except audit.AuditUnavailable as error:  # the lock is ours either way; destroys will be refused
        log.error("%s", error)
