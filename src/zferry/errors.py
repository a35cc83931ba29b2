"""Errors that carry the exit code the command line ends with. Only `main()` exits."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_LOCKED = 75  # EX_TEMPFAIL: another run writing to the same destination holds its lock
EXIT_INTERRUPTED = 130  # 128 + SIGINT; SIGTERM ends with 143


class ZferryError(Exception):
    """Base of every error zferry reports to the user. The message says what to do."""

    exit_code = EXIT_ERROR


class UsageError(ZferryError):
    """Invalid command line or input value; nothing was run."""

    exit_code = EXIT_USAGE


class LockedError(ZferryError):
    """Another run writing to the same destination is in progress."""

    exit_code = EXIT_LOCKED


class CommandError(ZferryError):
    """A child process (zfs, ssh, a pipeline stage) failed."""

    def __init__(self, message: str, argv: list[str] | None = None, returncode: int = 1, stderr: str = ""):
        super().__init__(message)
        self.argv = argv or []
        self.returncode = returncode
        self.stderr = stderr
        # ssh itself failed (status 255 from a remote command): the connection, not the command.
        self.transport_failure = False


class DatasetNotFound(CommandError):
    """`zfs` said the dataset does not exist."""


class ConflictError(ZferryError):
    """The destination diverged from the source; a force flag or manual action is needed."""


class Interrupted(ZferryError):
    """A signal asked us to stop; children were terminated. Exits with 128 + the signal number."""

    def __init__(self, message: str, signum: int = 2) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum
