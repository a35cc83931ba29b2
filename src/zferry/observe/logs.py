"""Where a run's log goes: stderr, one file per run in a private log folder, syslog; text or JSON lines.

Front ends install the handlers (`install`) on the `zferry` logger; the engine only logs. The pure
parts (file names, which old files go, the formats) are functions; the I/O parts are small. Every
handler masks secrets (`observe.redact`). Files: `<UTC time>[.N]_<job>.log` (`.N` when a run of
the same job started in the same second), the latest `keep` of a job kept, `current` a symlink to
the newest file of whichever job ran last.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import re
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Optional, Union

from zferry import validate
from zferry.errors import UsageError
from zferry.lock import private_dir
from zferry.observe.redact import RedactingFilter, extra_fields
from zferry.replicate import VERBOSE

LEVELS = {
    "debug": logging.DEBUG,
    "verbose": VERBOSE,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
FACILITIES = ("user", "daemon", *(f"local{n}" for n in range(8)))
CURRENT = "current"
_FACILITY_CODES = logging.handlers.SysLogHandler.facility_names
SyslogAddress = Union[str, tuple[str, int]]
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ")


@dataclass(frozen=True)
class SyslogSettings:
    """Where and what to send to syslog."""

    address: SyslogAddress = "/dev/log"  # a unix socket path, or (host, port) over UDP
    facility: str = "user"
    level: int = logging.INFO


@dataclass(frozen=True)
class LogSettings:
    """Every log destination of a run besides stderr (whose level -v/-q set)."""

    log_dir: Optional[str] = None  # None: no log file
    explicit_dir: bool = False  # given with --log-dir: a folder we cannot use is an error, not a warning
    keep: int = 100
    format: str = "text"  # or "json"
    syslog: Optional[SyslogSettings] = None


def default_log_dir() -> str:
    """`~/zferry-logs`: per-run log files, and the default place of other per-job records (audit log)."""
    return os.path.join(os.path.expanduser("~"), "zferry-logs")


def resolve_log_dir(args: argparse.Namespace) -> str:
    """The log folder the command line asks for: `--log-dir`, else `default_log_dir()`."""
    return getattr(args, "log_dir", None) or default_log_dir()


def settings_from_args(args: argparse.Namespace) -> LogSettings:
    """The log settings from parsed options (`--log-*`, `--no-log-file`), each value checked."""
    syslog = None
    if args.log_syslog is not None:
        level = LEVELS[args.log_syslog_level]
        syslog = SyslogSettings(parse_syslog_address(args.log_syslog), args.log_syslog_facility, level)
    return LogSettings(
        log_dir=None if args.no_log_file else resolve_log_dir(args),
        explicit_dir=bool(args.log_dir),
        keep=args.log_file_keep,
        format=args.log_format,
        syslog=syslog,
    )


def parse_syslog_address(text: str) -> SyslogAddress:
    """`/dev/log` or any path (a unix socket), `host`, `host:port` or `[ipv6]:port` (UDP, port 514 by default)."""
    if "/" in text:
        return text
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\w+))?|([A-Za-z0-9.-]+)(?::(\w+))?", text)
    if not match:
        raise UsageError(f"--log-syslog: {text!r} is neither a socket path nor host[:port], e.g. /dev/log or logs:514")
    host = match.group(1) or match.group(3)
    port = match.group(2) or match.group(4)
    return host, validate.port(port) if port else 514


def log_file_name(started: datetime, job: str, attempt: int = 1) -> str:
    """The file name of a run of `job` started at `started` (UTC); `attempt` > 1 when that name is taken."""
    stamp = started.astimezone(timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")
    return f"{stamp}{'' if attempt == 1 else f'.{attempt}'}_{job}.log"


def _sort_key(name: str, job: str) -> Optional[tuple[str, int]]:
    """(time, attempt) of a log file of `job`, None for any other file (strictly zferry's own names)."""
    match = re.fullmatch(rf"({_TIME.pattern})(?:\.([1-9][0-9]{{0,5}}))?_{re.escape(job)}\.log", name)
    return (match.group(1), int(match.group(2) or 1)) if match else None


def files_to_delete(names: Iterable[str], job: str, keep: int, newest: str) -> list[str]:
    """Which of the files `names` in the log folder go: `job`'s log files but the latest `keep`.

    `newest` (this run's file) always stays. Files of other jobs, and anything not named like a
    zferry log file, are never chosen.
    """
    ours = sorted((key, n) for n in names if n != newest for key in [_sort_key(n, job)] if key is not None)
    survivors = max(keep - 1, 0)
    return [name for _, name in ours[: max(len(ours) - survivors, 0)]]


def iso_time(created: float) -> str:
    """ISO 8601 UTC with milliseconds: 2026-12-07T10:41:03.123Z."""
    stamp = datetime.fromtimestamp(created, timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, job, pid, message, any `extra` fields, exc."""

    def __init__(self, job: str) -> None:
        super().__init__()
        self.job = job

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, object] = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "job": self.job,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            fields.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            fields["exc"] = record.exc_text
        return json.dumps(fields, default=str, ensure_ascii=False)


class TextFileFormatter(logging.Formatter):
    """`2026-12-07T10:41:03.123Z INFO message`: the console's text, with a full time and the level."""

    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:
        return iso_time(record.created)

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s")


def console_formatter(log_format: str, job: str) -> logging.Formatter:
    """stderr's format: today's short text, or JSON lines."""
    return JsonFormatter(job) if log_format == "json" else logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")


class _FileHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that owns (and closes) the log file it writes."""

    def close(self) -> None:
        self.acquire()
        try:
            self.flush()
            self.stream.close()
        finally:
            self.release()
        super().close()


def open_log_file(directory: str, job: str, started: datetime) -> tuple[str, IO[str]]:
    """Create this run's log file (mode 0600, never following or reusing an existing name)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    for attempt in range(1, 1000):
        name = log_file_name(started, job, attempt)
        try:
            fd = os.open(os.path.join(directory, name), flags, 0o600)
        except FileExistsError:
            continue
        return name, open(fd, "a", encoding="utf-8", errors="backslashreplace")
    raise OSError(f"no free log file name for job {job} at {started}")


def remove_old_files(directory: str, job: str, keep: int, newest: str) -> None:
    """Delete `job`'s log files in `directory` but the latest `keep` (`newest` among them)."""
    for name in files_to_delete(os.listdir(directory), job, keep, newest):
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass  # a concurrent run of the same job removed it first


def point_current(directory: str, name: str) -> None:
    """Make `directory/current` a symlink to `name`, atomically (a temporary symlink renamed over it)."""
    temporary = os.path.join(directory, f".{CURRENT}.{os.getpid()}.tmp")
    try:
        os.unlink(temporary)  # left behind by a killed run with our pid
    except FileNotFoundError:
        pass
    os.symlink(name, temporary)
    os.replace(temporary, os.path.join(directory, CURRENT))


def file_handler(
    settings: LogSettings, job: str, started: datetime, logger: logging.Logger
) -> Optional[logging.Handler]:
    """The handler writing this run's log file (DEBUG: everything), after retention and `current`.

    A folder we cannot use is a usage error with `--log-dir`; the default folder only warns (a
    read-only home must not stop backups), and the run goes on without a file.
    """
    if settings.log_dir is None:
        return None
    try:
        directory = private_dir(settings.log_dir, "--log-dir" if settings.explicit_dir else "the log folder")
        name, stream = open_log_file(directory, job, started)
        try:
            remove_old_files(directory, job, settings.keep, name)
            point_current(directory, name)
        except OSError:
            stream.close()
            raise
    except (OSError, UsageError) as error:
        message = str(error) if isinstance(error, UsageError) else f"{settings.log_dir!r}: {error.strerror or error}"
        if settings.explicit_dir:
            raise UsageError(message if isinstance(error, UsageError) else f"--log-dir: {message}") from None
        logger.warning("writing no log file: %s (--no-log-file turns log files off)", message)
        return None
    handler = _FileHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(JsonFormatter(job) if settings.format == "json" else TextFileFormatter())
    return handler


class _SyslogHandler(logging.handlers.SysLogHandler):
    """SysLogHandler that maps VERBOSE to debug and, when syslog fails, warns once and goes quiet."""

    failed = False

    def mapPriority(self, levelName: str) -> str:
        return "debug" if levelName == "VERBOSE" else super().mapPriority(levelName)

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            error = sys.exc_info()[1]
            _warn(f"cannot log to syslog at {self.address}: {error}; not trying again")


def _warn(message: str) -> None:
    """On stderr, not through the logger: a handler is failing."""
    print(f"zferry: warning: {message}", file=sys.stderr)


def reachable(address: SyslogAddress) -> Optional[str]:
    """None if a syslog socket listens at a unix `address` (or it is a UDP address), else why not."""
    if not isinstance(address, str):
        return None
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_UNIX, kind) as probe:
            try:
                probe.connect(address)
                return None
            except OSError as error:
                why = error.strerror or str(error)
    return why


def syslog_handler(settings: SyslogSettings, job: str, logger: logging.Logger) -> Optional[logging.Handler]:
    """A handler sending to syslog as `zferry[pid]: job: message`; None (after a warning) if it is unreachable."""
    why = reachable(settings.address)
    handler = None
    if why is None:
        try:
            handler = _SyslogHandler(settings.address, _FACILITY_CODES[settings.facility])
        except OSError as error:  # a UDP host name that does not resolve
            why = error.strerror or str(error)
    if handler is None:
        logger.warning("cannot log to syslog at %s: %s; logging without it", settings.address, why)
        return None
    handler.ident = f"zferry[{os.getpid()}]: "
    handler.setLevel(settings.level)
    handler.setFormatter(logging.Formatter(job.replace("%", "%%") + ": %(message)s"))
    return handler


def install(logger: logging.Logger, console_level: int, settings: LogSettings, job: str) -> None:
    """Replace `logger`'s handlers: stderr at `console_level`, the log file, syslog; all masking secrets."""
    logging.addLevelName(VERBOSE, "VERBOSE")
    close_files(logger)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level)
    console.setFormatter(console_formatter(settings.format, job))
    console.addFilter(RedactingFilter())
    logger.handlers[:] = [console]  # a warning about the file or syslog goes to stderr
    logger.setLevel(console_level)
    logger.propagate = False
    _add(logger, file_handler(settings, job, datetime.now(timezone.utc), logger))
    if settings.syslog:  # after the file: a warning that syslog is unreachable is in the file too
        _add(logger, syslog_handler(settings.syslog, job, logger))


def _add(logger: logging.Logger, handler: Optional[logging.Handler]) -> None:
    if handler is not None:
        handler.addFilter(RedactingFilter())
        logger.addHandler(handler)
        logger.setLevel(min(logger.level, handler.level))


def close_files(logger: logging.Logger) -> None:
    """Close and remove `logger`'s file and syslog handlers (stderr stays)."""
    for handler in [h for h in logger.handlers if isinstance(h, (_FileHandler, _SyslogHandler))]:
        logger.removeHandler(handler)
        handler.close()


def log_to_files(logger: logging.Logger, level: int, message: str) -> None:
    """Log `message` to the file and syslog handlers only (the front end already printed it on stderr)."""
    record = logger.makeRecord(logger.name, level, "(main)", 0, message, (), None)
    for handler in logger.handlers:
        if isinstance(handler, (_FileHandler, _SyslogHandler)) and level >= handler.level:
            handler.handle(record)
