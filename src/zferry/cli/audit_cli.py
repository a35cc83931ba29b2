"""The audit trail on the command line: the `--audit-log` option, and `zferry audit tail`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import IO, Callable, Optional

from zferry.cli.numbers import whole_number
from zferry.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, UsageError
from zferry.observe.audit import decode, default_audit_path, describe

AUDIT_HELP = (
    "append every destroy, rollback, forced receive, property change, hold release before a destroy and "
    "lock takeover to FILE (JSON lines, before it runs and with its outcome; default: "
    "~/zferry-logs/audit.jsonl); when FILE cannot be written those actions are refused and the run exits 1, "
    "e.g. --audit-log /var/log/zferry/audit.jsonl"
)


def add_audit_option(parser: argparse.ArgumentParser) -> None:
    """The `--audit-log FILE` option of a replication run."""
    group = parser.add_argument_group("audit trail")
    group.add_argument("--audit-log", metavar="FILE", help=AUDIT_HELP)


def audit_path(value: Optional[str], log_dir: Optional[str] = None) -> str:
    """The audit log's absolute path: `value` (~ expanded), else `audit.jsonl` in `log_dir`, else the
    default. No file is touched."""
    if value is None:
        return os.path.join(os.path.expanduser(log_dir), "audit.jsonl") if log_dir else default_audit_path()
    if not value.strip():
        raise UsageError("--audit-log needs a file name, e.g. --audit-log /var/log/zferry/audit.jsonl")
    return os.path.abspath(os.path.expanduser(value))


def build_parser() -> argparse.ArgumentParser:
    """`zferry audit tail ...`."""
    parser = argparse.ArgumentParser(
        prog="zferry audit",
        description="Read zferry's audit trail (one JSON object per line; jq reads it too).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    tail = commands.add_parser(
        "tail",
        help="print the latest records, e.g. zferry audit tail -n 50",
        description="Print the latest audit records: time, job, action, target, result, [reason].",
        epilog="examples:\n  zferry audit tail -n 50\n  zferry audit tail --follow --json | jq .target",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tail.add_argument(
        "-n",
        "--lines",
        type=whole_number(0),
        default=10,
        metavar="N",
        help="how many of the latest records to print (default: 10), e.g. -n 100",
    )
    tail.add_argument(
        "-f", "--follow", action="store_true", help="then keep printing new records as they come, like tail -f"
    )
    tail.add_argument("--json", action="store_true", help="print the records as they are stored, one JSON per line")
    tail.add_argument("--audit-log", metavar="FILE", help="the file to read (default: ~/zferry-logs/audit.jsonl)")
    return parser


def last_lines(path: str, count: int, block: int = 1 << 16) -> tuple[list[str], int]:
    """The last `count` complete lines of `path`, and the offset just after them (its end)."""
    with open(path, "rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        position, data = end, b""
        while position > 0 and data.count(b"\n") <= count:
            step = min(block, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
    complete, newline, partial = data.rpartition(b"\n")  # `partial`: a line still being written
    lines = complete.split(b"\n")[-count:] if newline and count else []
    return [line.decode(errors="replace") for line in lines], end - len(partial)


class Follower:
    """New complete lines of a growing file; starts over when the file is replaced or truncated (rotated)."""

    def __init__(self, path: str, offset: int) -> None:
        self.path = path
        self.offset = offset
        self._inode: Optional[int] = None
        self._rest = b""

    def poll(self) -> list[str]:
        """The lines appended since the last poll (none while the file is missing)."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return []
        if (self._inode is not None and info.st_ino != self._inode) or info.st_size < self.offset:
            self.offset, self._rest = 0, b""
        self._inode = info.st_ino
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        self.offset += len(data)
        complete, newline, self._rest = (self._rest + data).rpartition(b"\n")
        return [line.decode(errors="replace") for line in complete.split(b"\n")] if newline else []


def render(line: str, as_json: bool) -> Optional[str]:
    """What to print for one stored line: itself (--json) or its description; None for a blank line."""
    if not line.strip():
        return None
    if as_json:
        return line
    fields = decode(line)
    return describe(fields) if fields is not None else f"(not an audit record: {line[:80]!r})"


def tail(args: argparse.Namespace, out: IO[str], sleep: Callable[[float], None] = time.sleep) -> int:
    """Print the last records of the audit log, then follow it if asked."""
    path = audit_path(args.audit_log)
    try:
        lines, offset = last_lines(path, args.lines)
    except FileNotFoundError:
        if not args.follow:
            print(f"zferry audit: no audit log at {path} (nothing recorded yet?)", file=sys.stderr)
            return EXIT_ERROR
        lines, offset = [], 0
    except OSError as error:
        print(f"zferry audit: cannot read {path}: {error.strerror}", file=sys.stderr)
        return EXIT_ERROR
    _print(lines, args.json, out)
    if not args.follow:
        return EXIT_OK
    follower = Follower(path, offset)
    while True:
        _print(follower.poll(), args.json, out)
        sleep(0.5)


def _print(lines: Sequence[str], as_json: bool, out: IO[str]) -> None:
    for line in lines:
        text = render(line, as_json)
        if text is not None:
            print(text, file=out, flush=True)


def main(argv: Sequence[str]) -> int:
    """`zferry audit ARGS`: the exit status."""
    args = build_parser().parse_args(list(argv))
    try:
        return tail(args, sys.stdout)
    except UsageError as error:
        print(f"zferry audit: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. | head
        return EXIT_OK
