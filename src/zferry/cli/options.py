"""The `zferry` command line: options grouped by concern, help text with examples."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from typing import Optional

from zferry import __version__
from zferry.cli.audit_cli import add_audit_option
from zferry.cli.daemon_options import add_daemon_options
from zferry.cli.lifecycle_options import SnapshotFilterStep, add_lifecycle_options
from zferry.cli.numbers import seconds, whole_number
from zferry.cli.observe_options import add_observe_options
from zferry.cli.ssh_options import add_remote_options
from zferry.errors import UsageError

DESCRIPTION = """\
Replicate ZFS datasets and their snapshots from SRC_DATASET to DST_DATASET, like rsync for ZFS.

The first run sends the oldest selected snapshot in full, then every newer one incrementally;
later runs send only what the destination lacks, starting from the latest snapshot both sides
have in common (compared by GUID, so renamed snapshots still count). zferry never destroys or
rolls back anything on the destination unless a --force option asks for it.
"""

EXAMPLES = """\
examples:
  Replicate one dataset to another pool on this machine:
    zferry tank/data backup/data

  Replicate a whole tree, parents before children, 4 datasets at a time:
    zferry --recursive --threads 4 tank/home backup/home

  Only daily snapshots, skipping the tmp subtree; show what would run without running it:
    zferry -r --include-snapshot-regex '.*_daily' --exclude-dataset tmp --dryrun tank backup/tank

  Send only the latest snapshot (zfs send -i instead of -I):
    zferry --no-stream tank/db backup/db

  The destination has snapshots the source does not know: throw them away and continue:
    zferry --force-rollback-to-latest-common-snapshot tank/db backup/db

  Many pairs from a file (one "SRC<TAB>DST" pair per line), patterns from another (one per line):
    zferry -r --exclude-dataset-regex +excludes.txt +pairs.tsv

exit status: 0 success, 1 error, 2 bad usage, 75 another run writing to the same destination
holds its lock, 130 interrupted by SIGINT, 143 by SIGTERM.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zferry",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        fromfile_prefix_chars=None,
    )
    parser.add_argument(
        "root_dataset_pairs",
        nargs="*",
        metavar="SRC_DATASET DST_DATASET",
        help="one or more pairs of [[user@]host:]dataset; an argument +FILE reads tab-separated pairs "
        "from FILE, one per line (# starts a comment); so does the value of any --*-regex option: one "
        "pattern per line",
    )
    parser.add_argument("--version", action="version", version=f"zferry {__version__}")
    _selection(parser)
    _replication(parser)
    _conflicts(parser)
    add_lifecycle_options(parser)
    add_remote_options(parser)
    _retries(parser)
    _execution(parser)
    _logging(parser)
    add_audit_option(parser)
    add_observe_options(parser)
    add_daemon_options(parser)
    return parser


def _selection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("which datasets and snapshots")
    group.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="also replicate every descendant of each source dataset, each on its own "
        "(not zfs send -R), so the filters apply per dataset",
    )
    group.add_argument(
        "--include-dataset",
        action="append",
        default=[],
        metavar="DATASET",
        help="replicate only this dataset and its descendants (name relative to the source "
        "root, or absolute); repeatable",
    )
    group.add_argument(
        "--exclude-dataset",
        action="append",
        default=[],
        metavar="DATASET",
        help="skip this dataset and its descendants; repeatable; wins over includes",
    )
    group.add_argument(
        "--include-dataset-regex",
        action="append",
        default=[],
        metavar="REGEX",
        help="replicate only datasets whose name relative to the source root fully matches "
        "REGEX (the root itself is ''); a leading ! negates; repeatable",
    )
    group.add_argument(
        "--exclude-dataset-regex",
        action="append",
        default=[],
        metavar="REGEX",
        help="skip datasets (and their descendants) whose relative name fully matches REGEX, "
        "e.g. '(.*/)?tmp'; a leading ! negates; repeatable; wins over includes",
    )
    group.add_argument(
        "--exclude-dataset-property",
        metavar="PROPERTY",
        help="skip a dataset and its descendants when this user property (e.g. "
        "com.corp:no_backup) is true/on/yes/1 on it, set or inherited",
    )
    group.add_argument(
        "--include-snapshot-regex",
        action=SnapshotFilterStep,
        default=[],
        metavar="REGEX",
        help="replicate only snapshots whose name (after @) fully matches REGEX; repeatable",
    )
    group.add_argument(
        "--exclude-snapshot-regex",
        action=SnapshotFilterStep,
        default=[],
        metavar="REGEX",
        help="never replicate snapshots whose name fully matches REGEX; repeatable; wins",
    )


def _replication(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("how to send")
    group.add_argument(
        "--no-stream",
        action="store_true",
        help="send only the latest selected snapshot (zfs send -i), not every one in between (zfs send -I)",
    )
    group.add_argument(
        "--no-use-bookmark",
        action="store_true",
        help="do not use source bookmarks as the base of incremental sends",
    )
    group.add_argument(
        "--no-resume-recv",
        action="store_true",
        help="receive without -s: an interrupted transfer starts over next time instead of resuming "
        "(a partial receive already on the destination is discarded with 'zfs receive -A')",
    )
    group.add_argument(
        "--zfs-send-program-opts",
        default="",
        metavar="OPTS",
        help="extra options for zfs send, e.g. '--raw --compressed'; only -w/--raw, -c/--compressed, "
        "-L/--large-block, -e/--embed, -p/--props, -b/--backup, -v, -P, -D, -V (default: none)",
    )
    group.add_argument(
        "--zfs-send-default-flags",
        default="Lce",
        metavar="FLAGS",
        help="record flags of a new chain's full send and every send after it, unless "
        "--zfs-send-program-opts names -L, -c, -e or -w (default: Lce; 'none': plain sends, e.g. "
        "--zfs-send-default-flags=Lc). What the destination gets: with c, blocks stay compressed as on the "
        "source, with its algorithm (the destination's compression property applies to new writes only); "
        "with L, records above 128 KiB stay large (the destination pool needs large_blocks); with e, "
        "embedded blocks stay embedded (needs embedded_data). Decided at the full send and recorded "
        "on the destination (zferry:send-flags): existing chains keep theirs",
    )
    group.add_argument(
        "--zfs-recv-program-opts",
        default="",
        metavar="OPTS",
        help="extra options for zfs receive, e.g. '-o compression=zstd'; only -o PROP=VALUE, -x PROP, "
        "-u, -v, -s, -h (-F is --force, -n is --dryrun=recv)",
    )


def _conflicts(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("when the destination has diverged (destructive, off by default)")
    group.add_argument(
        "--force-rollback-to-latest-snapshot",
        action="store_true",
        help="may destroy: changes written to the destination since its latest snapshot (zfs rollback "
        "to it, before receiving); no snapshot",
    )
    group.add_argument(
        "--force-rollback-to-latest-common-snapshot",
        action="store_true",
        help="may destroy: the destination's snapshots newer than the latest common one, and changes "
        "since (zfs rollback -r to the common one)",
    )
    group.add_argument(
        "--force",
        action="store_true",
        help="may destroy: what the previous option may; when nothing is in common, every snapshot of "
        "the destination dataset and its data (full resync, zfs receive -F), also a destination without "
        "snapshots that is not empty; a same-named destination snapshot of another GUID below the common "
        "one. Never a snapshot still on the source, the latest common one, or one held by another tool",
    )


def _execution(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("running")
    group.add_argument(
        "--dryrun",
        nargs="?",
        const="send",
        choices=["send", "recv"],
        metavar="send|recv",
        help="print what would run and change nothing; --dryrun=recv also streams the data "
        "into 'zfs receive -n' to check it (the first stream per dataset; later ones are shown)",
    )
    group.add_argument(
        "--threads",
        type=whole_number(1),
        default=os.cpu_count() or 1,
        metavar="N",
        help="datasets replicated at once (default: number of cores)",
    )
    group.add_argument(
        "--skip-on-error",
        choices=["fail", "dataset", "tree"],
        default="fail",
        help="after a dataset fails: stop (fail, default), go on with the others (dataset), "
        "or go on but skip its descendants (tree)",
    )
    group.add_argument(
        "--timeout",
        type=seconds(allow_zero=False),
        default=None,
        metavar="SECONDS",
        help="kill any single command or transfer that runs longer than this",
    )
    group.add_argument(
        "--stall-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="stop a transfer whose byte count (pv's) has not moved for this long and retry it, resuming "
        "(default: 300; 0: never)",
    )
    group.add_argument(
        "--job-name",
        metavar="NAME",
        help="name this job in logs, audit records, metric labels (default: 'job-' and a short hash of the "
        "dataset pairs), e.g. --job-name db-to-backup",
    )
    group.add_argument(
        "--lock-dir",
        metavar="DIR",
        help="where lock files live, a folder writable by us alone (default: /run/zferry for root, "
        "else $XDG_RUNTIME_DIR/zferry)",
    )
    group.add_argument(
        "--lock-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="when another run writing to the same destination holds its lock, wait this long for it, "
        "then exit with status 75 (default: 0)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more output: -v each dataset, -v -v every command, copy-pasteable",
    )
    group.add_argument("-q", "--quiet", action="store_true", help="print errors and warnings only")


def _logging(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "logging (stderr shows what -v/-q choose; the log file gets everything; secrets are masked everywhere)"
    )
    group.add_argument(
        "--log-dir",
        metavar="DIR",
        help="write one log file per run here, named by UTC time and job, e.g. 2026-12-07T10-41-03Z_db.log, and "
        "point DIR/current at it; DIR is created 0700 and must be ours, writable by no one else "
        "(default: ~/zferry-logs), e.g. --log-dir /var/log/zferry",
    )
    group.add_argument(
        "--no-log-file",
        action="store_true",
        help="write no log file (read-only systems, tests), e.g. zferry --no-log-file tank/a backup/a",
    )
    group.add_argument(
        "--log-file-keep",
        type=whole_number(1),
        default=100,
        metavar="N",
        help="keep the latest N log files of this job; older ones are deleted when a run starts "
        "(default: 100), e.g. --log-file-keep 30",
    )
    group.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="text (default), or json: one JSON object per line (time, level, logger, job, pid, message) "
        "on stderr and in the log file, for log shippers, e.g. --log-format json",
    )
    group.add_argument(
        "--log-syslog",
        nargs="?",
        const="/dev/log",
        metavar="ADDRESS",
        help="also log to syslog as zferry[PID] with the job name: at /dev/log, or --log-syslog=PATH of a unix "
        "socket, or --log-syslog=HOST[:PORT] over UDP (port 514), e.g. --log-syslog=loghost:514",
    )
    group.add_argument(
        "--log-syslog-facility",
        choices=["user", "daemon", *(f"local{n}" for n in range(8))],
        default="user",
        help="the syslog facility (default: user), e.g. --log-syslog-facility local3",
    )
    group.add_argument(
        "--log-syslog-level",
        choices=["debug", "verbose", "info", "warning", "error"],
        default="info",
        help="send records of this level and above to syslog (default: info), e.g. --log-syslog-level warning",
    )


def _retries(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("retries (only for transient errors: a dropped connection, a broken stream)")
    group.add_argument(
        "--retries",
        type=whole_number(0),
        default=2,
        metavar="N",
        help="retry a dataset's replication up to N times; an interrupted transfer resumes "
        "where it stopped; listings, the probe, snapshot creation, bookmarking and pruning "
        "are retried too (default: 2)",
    )
    group.add_argument(
        "--retry-min-sleep-secs",
        type=seconds(allow_zero=True),
        default=0.125,
        metavar="S",
        help="sleep before the first retry; each further one sleeps up to twice as long (default: 0.125)",
    )
    group.add_argument(
        "--retry-max-sleep-secs",
        type=seconds(allow_zero=True),
        default=300,
        metavar="S",
        help="the longest sleep between two retries (default: 300)",
    )
    group.add_argument(
        "--retry-max-elapsed-secs",
        type=seconds(allow_zero=True),
        default=3600,
        metavar="S",
        help="no new retry after this long (default: 3600)",
    )


# The start of a RANKRANGE ('latest 10', 'oldest 5%', 'all except latest 3'): a following word
# that begins otherwise ends the values of --include-snapshot-times-and-ranks.
_RANK_START = re.compile(r"\s*(all\s*except\s*)?(oldest|latest)\s*[0-9]")


def normalize_arguments(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """Rewrite `argv` so that no option takes a following dataset name as its value.

    An option with an optional value (`--dryrun`, `--delete-dst-snapshots`, ...) takes one only
    as `--option=VALUE`: a bare `--option` becomes `--option=DEFAULT`. A bare one followed by one
    of its values is refused as ambiguous. `--include-snapshot-times-and-ranks` takes its
    TIMERANGE and then only words that begin like a RANKRANGE; dataset names after them are
    moved to the other dataset names at the front.
    """
    actions = [a for a in parser._actions if a.option_strings]
    optional = {s: a for a in actions if a.nargs == "?" for s in a.option_strings}
    variable = {s for a in actions if a.nargs == "+" for s in a.option_strings}
    longs = [s for a in actions for s in a.option_strings if s.startswith("--")]
    out: list[str] = []
    moved: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        index += 1
        if word == "--":
            out += argv[index - 1 :]
            break
        name, equals, value = word.partition("=")
        option = _long_option(name, longs, parser.allow_abbrev) if word.startswith("--") else None
        if option in optional and not equals:
            _refuse_ambiguous(option, optional[option], argv[index] if index < len(argv) else None)
            out.append(f"{option}={optional[option].const}")
        elif option in variable:
            values = [value] if equals else list(argv[index : index + 1])
            index += 0 if equals else len(values)
            while index < len(argv) and _RANK_START.match(argv[index]):
                values.append(argv[index])
                index += 1
            out += [option, *values]
            while index < len(argv) and not argv[index].startswith("-"):
                moved.append(argv[index])
                index += 1
        else:
            out.append(word)
    front = next((i for i, w in enumerate(out) if w.startswith("-")), len(out))
    return [*out[:front], *moved, *out[front:]]


def _long_option(name: str, longs: Sequence[str], allow_abbrev: bool) -> Optional[str]:
    """The long option `name` stands for, as argparse resolves it (an unambiguous prefix counts)."""
    if name in longs:
        return name
    matches = [s for s in longs if s.startswith(name)] if allow_abbrev else []
    return matches[0] if len(matches) == 1 else None


def _refuse_ambiguous(option: str, action: argparse.Action, following: Optional[str]) -> None:
    if following is not None and action.choices is not None and following in action.choices:
        raise UsageError(
            f"{option} takes a value only after '=': write {option}={following}; if {following!r} is a "
            f"dataset, write {option}={action.const} or put {option} after the datasets"
        )
