"""The one place that knows `zfs` syntax: argument lists to run and parsers for `-Hp` output.

Nothing here runs a process. Callers pass the argv to an executor (`zferry.exec`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Optional

from zferry.errors import CommandError, DatasetNotFound
from zferry.model import Dataset, Inventory, Version

ZFS = "zfs"
LIST_COLUMNS = (
    "name",
    "type",
    "guid",
    "createtxg",
    "creation",
    "referenced",
    "receive_resume_token",
    "encryption",
)


def list_tree(root: str, user_props: Sequence[str] = (), recursive: bool = True) -> list[str]:
    """One `zfs list` for a whole tree: every dataset, snapshot and bookmark with the columns we use."""
    columns = ",".join(LIST_COLUMNS + tuple(user_props))
    argv = [ZFS, "list", "-H", "-p", "-t", "filesystem,volume,snapshot,bookmark", "-o", columns]
    if recursive:
        argv.append("-r")
    else:
        argv += ["-d", "1"]  # the dataset itself and its own snapshots/bookmarks
    return [*argv, root]


def parse_tree(
    output: str, user_props: Sequence[str] = (), recursive: bool = True, root: str = ""
) -> Inventory:
    """Parse `list_tree` output into an Inventory. Versions are sorted oldest first by createtxg.

    Without `recursive`, `-d 1` also lists the root's children; they are dropped here.
    """
    datasets: dict[str, Dataset] = {}
    versions: dict[str, list[Version]] = {}
    width = len(LIST_COLUMNS) + len(user_props)
    for line in output.splitlines():
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != width:
            raise CommandError(f"unexpected zfs list output line: {line!r}")
        name, kind, guid, createtxg, creation, referenced, token, encryption = fields[: len(LIST_COLUMNS)]
        if kind in ("snapshot", "bookmark"):
            sigil = "@" if kind == "snapshot" else "#"
            dataset, _, short = name.partition(sigil)
            if not recursive and dataset != root:
                continue
            version = Version(dataset, short, int(guid), int(createtxg), int(creation), kind == "bookmark")
            versions.setdefault(dataset, []).append(version)
        else:
            if not recursive and name != root:
                continue
            props = dict(zip(user_props, fields[len(LIST_COLUMNS) :]))
            datasets[name] = Dataset(
                name=name,
                kind=kind,
                guid=int(guid),
                referenced=_int_or_zero(referenced),
                resume_token=None if token in ("-", "") else token,
                encryption=None if encryption in ("-", "") else encryption,
                user_props=props,
            )
    ordered = {
        ds: tuple(sorted(vs, key=lambda v: (v.createtxg, v.is_bookmark))) for ds, vs in versions.items()
    }
    return Inventory(datasets, ordered)


def _int_or_zero(text: str) -> int:
    return int(text) if text.isdigit() else 0


@dataclass(frozen=True)
class SendOptions:
    """Flags for `zfs send` beyond the snapshots: user options, raw, resume."""

    extra: tuple[str, ...] = ()


def send_full(snapshot: Version, extra: Sequence[str] = ()) -> list[str]:
    return [ZFS, "send", *extra, snapshot.full_name]


def send_incremental(
    base: Version, target: Version, intermediates: bool, extra: Sequence[str] = ()
) -> list[str]:
    """`-I base target` sends every snapshot between; `-i` only target. A bookmark base takes `-i`."""
    flag = "-I" if intermediates and not base.is_bookmark else "-i"
    # The base may be given relative to the target's dataset; we always give it in full.
    return [ZFS, "send", *extra, flag, base.full_name, target.full_name]


def send_resume(token: str, extra: Sequence[str] = ()) -> list[str]:
    # Only a few flags combine with -t (e.g. -v, -n, -P, -e, -L, -c, -w are in the token).
    return [ZFS, "send", *[o for o in extra if o in ("-v", "-P")], "-t", token]


def send_size_estimate(argv: Sequence[str]) -> list[str]:
    """The dry-run of a send argv that prints its size (`-n -P`)."""
    return [argv[0], argv[1], "-n", "-P", *argv[2:]]


def receive(
    dataset: str,
    force: bool = False,
    resumable: bool = True,
    extra: Sequence[str] = (),
    dry_run: bool = False,
) -> list[str]:
    """`zfs receive -u` never mounts what it receives: a backup is not a live filesystem."""
    argv = [ZFS, "receive", "-u"]
    if resumable:
        argv.append("-s")
    if force:
        argv.append("-F")
    if dry_run:
        argv.append("-n")
    return [*argv, *extra, dataset]


def receive_abort(dataset: str) -> list[str]:
    """Discard a partially received stream (and its resume token)."""
    return [ZFS, "receive", "-A", dataset]


def rollback(snapshot: Version, destroy_newer: bool) -> list[str]:
    return [ZFS, "rollback", *(["-r"] if destroy_newer else []), snapshot.full_name]


def destroy_snapshots(dataset: str, names: Iterable[str]) -> list[str]:
    """One `zfs destroy pool/ds@a,b,c` for many snapshots of one dataset."""
    return [ZFS, "destroy", f"{dataset}@{','.join(names)}"]


def create_parents(dataset: str) -> list[str]:
    """Create a dataset and any missing parents (no -u: OpenZFS 2.1 lacks it)."""
    return [ZFS, "create", "-p", dataset]


def get_property(dataset: str, prop: str) -> list[str]:
    return [ZFS, "get", "-H", "-p", "-o", "value", prop, dataset]


def version() -> list[str]:
    return [ZFS, "version"]


_NOT_FOUND = re.compile(r"dataset does not exist|could not find any snapshots to destroy|no such pool")


_HINTS = (
    (re.compile(r"has been modified\s+since most recent snapshot"),
     "someone changed the destination after its latest snapshot; to discard those changes, "
     "rerun with --force-rollback-to-latest-snapshot"),
    (re.compile(r"destination has snapshots|must destroy them to overwrite"),
     "the destination has snapshots the source does not know; see --force"),
    (re.compile(r"permission denied", re.IGNORECASE),
     "run as root, or grant the user rights with 'zfs allow' (send/receive/create/mount/...)"),
    (re.compile(r"out of space|no space left", re.IGNORECASE),
     "the destination pool is full; nothing was lost, free space and rerun (the transfer resumes)"),
)


def classify_error(argv: list[str], returncode: int, stderr: str) -> CommandError:
    """Turn a failed zfs command into a typed error whose message says what to do."""
    text = " ".join(stderr.split()) or f"exit status {returncode}"
    message = f"{' '.join(argv[:2])} failed: {text}"
    for pattern, hint in _HINTS:
        if pattern.search(stderr):
            message += f" -- {hint}"
            break
    if _NOT_FOUND.search(stderr):
        return DatasetNotFound(message, argv, returncode, stderr)
    return CommandError(message, argv, returncode, stderr)


def parent_of(dataset: str) -> Optional[str]:
    head, sep, _ = dataset.rpartition("/")
    return head if sep else None
