"""The `zferry` command line: options grouped by concern, help text with examples."""

from __future__ import annotations

import argparse
import os

from zferry import __version__
from zferry.cli.lifecycle_options import SnapshotFilterStep, add_lifecycle_options
from zferry.cli.ssh_options import add_remote_options

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

  Many pairs from a file (one "SRC<TAB>DST" pair per line):
    zferry -r +pairs.tsv

exit status: 0 success (or another run of the same job holds the lock), 1 error, 2 bad usage,
130 interrupted.
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
        "from FILE, one per line (# starts a comment)",
    )
    parser.add_argument("--version", action="version", version=f"zferry {__version__}")
    _selection(parser)
    _replication(parser)
    _conflicts(parser)
    add_lifecycle_options(parser)
    add_remote_options(parser)
    _retries(parser)
    _execution(parser)
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
        help="extra options for zfs send, e.g. '--raw --compressed' (default: none)",
    )
    group.add_argument(
        "--zfs-recv-program-opts",
        default="",
        metavar="OPTS",
        help="extra options for zfs receive, e.g. '-o compression=zstd'",
    )


def _conflicts(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("when the destination has diverged (destructive, off by default)")
    group.add_argument(
        "--force-rollback-to-latest-snapshot",
        action="store_true",
        help="before receiving, roll the destination back to its latest snapshot, discarding "
        "changes made to it since (zfs rollback)",
    )
    group.add_argument(
        "--force-rollback-to-latest-common-snapshot",
        action="store_true",
        help="if the destination has snapshots newer than the latest common one, roll it back "
        "to the common one, destroying them (zfs rollback -r)",
    )
    group.add_argument(
        "--force",
        action="store_true",
        help="like the previous option, and if nothing is in common (or the destination has "
        "data but no snapshots), destroy the destination's snapshots and send everything again",
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
        type=_positive_int,
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
        type=float,
        default=None,
        metavar="SECONDS",
        help="kill any single command or transfer that runs longer than this",
    )
    group.add_argument("--lock-dir", metavar="DIR", help="where lock files live (default: a per-user temp folder)")
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more output: -v each dataset, -v -v every command, copy-pasteable",
    )
    group.add_argument("-q", "--quiet", action="store_true", help="print errors and warnings only")


def _retries(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("retries (only for transient errors: a dropped connection, a broken stream)")
    group.add_argument(
        "--retries",
        type=int,
        default=2,
        metavar="N",
        help="retry a dataset's replication up to N times; an interrupted transfer resumes "
        "where it stopped; listings, the probe, snapshot creation, bookmarking and pruning "
        "are retried too (default: 2)",
    )
    group.add_argument("--retry-min-sleep-secs", type=float, default=0.125, metavar="S", help="default: 0.125")
    group.add_argument("--retry-max-sleep-secs", type=float, default=300, metavar="S", help="default: 300")
    group.add_argument(
        "--retry-max-elapsed-secs",
        type=float,
        default=3600,
        metavar="S",
        help="no new retry after this long (default: 3600)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value
