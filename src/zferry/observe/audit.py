"""The audit trail: every destructive or state-changing action, appended to a JSON-lines file
before it runs (result "started") and again with its outcome ("ok", "failed"), or once when the
destroy guard refuses it ("refused"). An `id` links a "started" record to its outcome.

Building and reading records is pure (`record`, `encode`, `decode`, `describe`); `AuditLog`
writes them: the file is opened with O_APPEND|O_CREAT (mode 0600), and each record is one
`os.write` of one line followed by `fsync`, so concurrent writers never interleave and a
record is on disk before its command starts. A log that cannot be written refuses: `begin`
raises `AuditUnavailable` and the caller runs nothing (a run that cannot write its audit
record does not destroy).
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import socket
import stat
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Optional

from zferry.errors import ZferryError

log = logging.getLogger("zferry")

STARTED, OK, FAILED, REFUSED = "started", "ok", "failed", "refused"

# The actions recorded (the `action` field).
DESTROY = "destroy"  # snapshots or bookmarks: zfs destroy pool/ds@a,b / pool/ds#b
DESTROY_TREE = "destroy-tree"  # zfs destroy -r pool/ds
ROLLBACK = "rollback"  # zfs rollback [-r]
FORCED_RECEIVE = "forced-receive"  # zfs receive -F
ABORT_RECEIVE = "abort-partial-receive"  # zfs receive -A
PROPERTY = "property"  # zfs set / zfs inherit
RELEASE_HOLDS = "release-holds"  # zfs release, before a destroy
LOCK_TAKEOVER = "lock-takeover"  # a lock file named a holder whose process is gone


def default_audit_path() -> str:
    """`~/zferry-logs/audit.jsonl`: the audit log when --audit-log is not given (the log folder's default)."""
    return os.path.join(os.path.expanduser("~"), "zferry-logs", "audit.jsonl")


class AuditUnavailable(ZferryError):
    """The audit log cannot be written, so the action it would record is not run."""


@dataclass(frozen=True)
class Origin:
    """Who acts: this machine, user, process and job."""

    host: str
    user: str
    pid: int
    job: str

    @staticmethod
    def current(job: str) -> Origin:
        """This process's origin."""
        uid = os.geteuid()
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        return Origin(socket.gethostname(), user, os.getpid(), job)


@dataclass(frozen=True)
class Intent:
    """One action as the audit log describes it: what, where, on what, why, and its exact argv."""

    action: str
    target_host: str  # "local" or [user@]host, as in the log
    target: tuple[str, ...]  # datasets, snapshots, bookmarks
    reason: str  # the option or rule that selected it
    argv: tuple[str, ...] = ()  # the command (none for a lock takeover)


def iso_time(seconds: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-12-07T10:22:26.123Z."""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def first_line(text: str) -> str:
    """The first non-blank line of `text`, stripped ('' if none)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def record(
    origin: Origin,
    intent: Intent,
    result: str,
    record_id: str,
    now: float,
    details: Optional[Mapping[str, object]] = None,
) -> dict[str, object]:
    """One audit record as a JSON-ready dict (field order as written). Pure."""
    fields: dict[str, object] = {
        "time": iso_time(now),
        "host": origin.host,
        "user": origin.user,
        "pid": origin.pid,
        "job": origin.job,
        "action": intent.action,
        "target_host": intent.target_host,
        "target": list(intent.target),
        "reason": intent.reason,
        "argv": list(intent.argv),
        "result": result,
        "id": record_id,
    }
    fields.update(details or {})
    return fields


def encode(fields: Mapping[str, object]) -> bytes:
    """One line of JSON (ASCII, so any byte in a name is escaped and the line stays one line)."""
    return (json.dumps(fields, ensure_ascii=True, separators=(", ", ": ")) + "\n").encode("ascii")


def decode(line: str) -> Optional[dict[str, object]]:
    """A record from one line of the file; None for a line that is not a JSON object."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def describe(fields: Mapping[str, object]) -> str:
    """One human-readable line: time, job, action, target, result (and error), reason."""
    target = fields.get("target")
    names = " ".join(str(t) for t in target) if isinstance(target, list) else str(target or "")
    where = f"{fields.get('target_host')}:" if fields.get("target_host") not in (None, "", "local") else ""
    result = str(fields.get("result", "?"))
    if result == FAILED:
        result += f" (exit {fields.get('exit_status', '?')}: {fields.get('error', '')})"
    elif result == REFUSED:
        result += f" ({fields.get('error', '')})"
    head = f"{fields.get('time', '?')}  {fields.get('job', '?')}  {fields.get('action', '?')}"
    return f"{head}  {where}{names}  {result}  [{fields.get('reason', '')}]"


def new_id() -> str:
    """A fresh record id (links "started" to its outcome)."""
    return os.urandom(8).hex()  # like uuid4().hex[:16], without importing uuid (start-up time)


class AuditLog:
    """The append-only audit file of one run. Thread-safe; opened on the first record.

    Once a write failed, every later `begin` raises too (the whole run stops destroying) and
    `error` says why; the engine turns that into exit status 1.
    """

    def __init__(self, path: str, origin: Origin, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.origin = origin
        self.clock = clock
        self.error: Optional[str] = None
        self._fd: Optional[int] = None
        self._lock = threading.Lock()

    def begin(self, intent: Intent) -> str:
        """Record that `intent` starts; return the id for `finish`. Raises AuditUnavailable (run nothing then)."""
        record_id = new_id()
        self._write(record(self.origin, intent, STARTED, record_id, self.clock()), intent)
        return record_id

    def finish(
        self, record_id: str, intent: Intent, result: str, details: Optional[Mapping[str, object]] = None
    ) -> None:
        """Record the outcome of `intent` (`ok` or `failed`). Raises AuditUnavailable."""
        self._write(record(self.origin, intent, result, record_id, self.clock(), details), intent)

    def refused(self, intent: Intent, why: Sequence[str]) -> None:
        """Record that the destroy guard refused `intent` (one record; nothing ran). Raises AuditUnavailable."""
        self._write(record(self.origin, intent, REFUSED, new_id(), self.clock(), {"error": "; ".join(why)}), intent)

    def _write(self, fields: Mapping[str, object], intent: Intent) -> None:
        data = encode(fields)
        with self._lock:
            if self.error is None:
                try:
                    fd = self._open()
                    if os.write(fd, data) != len(data):
                        raise OSError(0, "short write (disk full?)")
                    os.fsync(fd)
                except OSError as error:
                    self.error = f"cannot write the audit log {self.path!r}: {error.strerror or error}"
            if self.error is not None:
                command = " ".join(intent.argv) or intent.action
                hint = "fix the file or choose another with --audit-log"
                raise AuditUnavailable(f"{self.error}; not running: {command} ({hint})")

    def _open(self) -> int:
        if self._fd is None:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, mode=0o700, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO must not block us
            fd = os.open(self.path, flags, 0o600)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise OSError(0, "not a regular file")
            self._fd = fd
        return self._fd

    def close(self) -> None:
        """Close the file (a later record opens it again)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
