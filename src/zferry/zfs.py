"""The one place that knows `zfs` syntax: argument lists to run and parsers for `-Hp` output.

Nothing here runs a process. Callers pass the argv to an executor (`zferry.exec`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Optional

from zferry.errors import CommandError, DatasetNotFound
from zferry.fencing import DR_PROPERTIES
from zferry.model import Dataset, Version

ZFS = "zfs"
DATASET_COLUMNS = (
    "name",
    "type",
    "guid",
    "referenced",
    "receive_resume_token",
    "encryption",
    "usedbydataset",
    "zferry:placeholder",
    "origin",
    "zferry:send-flags",
)
PLACEHOLDER_PROPERTY = "zferry:placeholder"
"""Marks a parent zferry created (empty, canmount=off) so that a later full receive may use it. Its
value is the dataset's own name: children inherit user properties, and an inherited marker names
another dataset."""
# Asking only for these lets `zfs list` skip loading each snapshot's properties: about 3-4x faster
# on trees with thousands of snapshots. `creation` and `userrefs` are read only when needed.
VERSION_COLUMNS = ("name", "guid", "createtxg")
VERSION_DETAIL_COLUMNS = ("creation", "userrefs")


def list_datasets(root: str, user_props: Sequence[str] = (), recursive: bool = True) -> list[str]:
    """The filesystems and volumes of a tree (or just `root`) with the properties replication uses."""
    columns = ",".join(DATASET_COLUMNS + tuple(user_props))
    depth = ["-r"] if recursive else ["-d", "0"]
    return [ZFS, "list", "-H", "-p", "-t", "filesystem,volume", "-o", columns, *depth, root]


def list_versions(root: str, detail: bool = False, recursive: bool = True) -> list[str]:
    """Every snapshot and bookmark of a tree (or of `root` alone) in one call."""
    columns = ",".join(VERSION_COLUMNS + (VERSION_DETAIL_COLUMNS if detail else ()))
    depth = ["-r"] if recursive else ["-d", "1"]
    return [ZFS, "list", "-H", "-p", "-t", "snapshot,bookmark", "-o", columns, *depth, root]


def argument_batches(words: Sequence[str], limit: int = 100_000) -> list[list[str]]:
    """Split words into groups whose joined length stays under `limit` (argv size limits)."""
    batches: list[list[str]] = [[]]
    size = 0
    for word in words:
        if batches[-1] and size + len(word) + 1 > limit:
            batches.append([])
            size = 0
        batches[-1].append(word)
        size += len(word) + 1
    return [b for b in batches if b]


def list_versions_of(datasets: Sequence[str], detail: bool = False, bookmarks: bool = False) -> list[str]:
    """The snapshots (and bookmarks, if asked) of some datasets (not of their children) in one call."""
    columns = ",".join(VERSION_COLUMNS + (VERSION_DETAIL_COLUMNS if detail else ()))
    kinds = "snapshot,bookmark" if bookmarks else "snapshot"
    return [ZFS, "list", "-H", "-p", "-t", kinds, "-o", columns, "-d", "1", *datasets]


def list_creation(snapshots: Sequence[str]) -> list[str]:
    """The GUID and creation time of some snapshots (full names) in one call."""
    return [ZFS, "list", "-H", "-p", "-t", "snapshot", "-o", "guid,creation", *snapshots]


def parse_creation(output: str) -> dict[int, int]:
    """`list_creation` output: GUID -> creation time (unix seconds)."""
    return {int(guid): _int_or_zero(creation) for guid, creation in _rows(output, 2)}


COMPARE_COLUMNS = ("name", "guid", "createtxg", "creation", "written")


def list_versions_by_txg(dataset: str, bookmarks: bool = True) -> list[str]:
    """The snapshots (and bookmarks) of one dataset, oldest first by createtxg, with creation and
    written (`-` for a bookmark): for reading line by line (`parse_version_line`)."""
    kinds = "snapshot,bookmark" if bookmarks else "snapshot"
    columns = ",".join(COMPARE_COLUMNS)
    return [ZFS, "list", "-H", "-p", "-t", kinds, "-s", "createtxg", "-o", columns, "-d", "1", dataset]


def parse_version_line(line: str) -> tuple[Version, Optional[int]]:
    """One line of `list_versions_by_txg`: the version and its written bytes (None for a bookmark)."""
    fields = line.split("\t")
    if len(fields) != len(COMPARE_COLUMNS):
        raise CommandError(f"unexpected zfs list output line: {line!r}")
    name, guid, createtxg, creation, written = fields
    bookmark = "#" in name
    dataset, _, short = name.partition("#" if bookmark else "@")
    version = Version(dataset, short, int(guid), int(createtxg), _int_or_zero(creation), bookmark)
    return version, int(written) if written.isdigit() else None


def _rows(output: str, width: int) -> Iterator[list[str]]:
    """The tab-separated fields of each non-empty line; any other width means we misread zfs."""
    for line in output.splitlines():
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != width:
            raise CommandError(f"unexpected zfs list output line: {line!r}")
        yield fields


def parse_datasets(output: str, user_props: Sequence[str] = ()) -> dict[str, Dataset]:
    datasets: dict[str, Dataset] = {}
    for fields in _rows(output, len(DATASET_COLUMNS) + len(user_props)):
        name, kind, guid, referenced, token, encryption, used, placeholder, origin, flags = fields[
            : len(DATASET_COLUMNS)
        ]
        datasets[name] = Dataset(
            name=name,
            kind=kind,
            guid=int(guid),
            referenced=_int_or_zero(referenced),
            resume_token=None if token in ("-", "") else token,
            encryption=None if encryption in ("-", "") else encryption,
            used_by_dataset=int(used) if used.isdigit() else None,
            is_placeholder=placeholder == name,
            origin=None if origin in ("-", "") else origin,
            send_flags=None if flags in ("-", "") else flags,
            user_props=dict(zip(user_props, fields[len(DATASET_COLUMNS) :])),
        )
    return datasets


def parse_versions(output: str, detail: bool = False) -> dict[str, tuple[Version, ...]]:
    """`list_versions` output: dataset -> its snapshots and bookmarks, oldest first by createtxg."""
    width = len(VERSION_COLUMNS) + (len(VERSION_DETAIL_COLUMNS) if detail else 0)
    versions: dict[str, list[Version]] = {}
    for fields in _rows(output, width):
        name, guid, createtxg = fields[:3]
        creation, refs = (fields[3], fields[4]) if detail else ("0", "0")
        bookmark = "#" in name
        dataset, _, short = name.partition("#" if bookmark else "@")
        version = Version(
            dataset, short, int(guid), int(createtxg), _int_or_zero(creation), bookmark, _int_or_zero(refs)
        )
        versions.setdefault(dataset, []).append(version)
    return {ds: tuple(sorted(vs, key=lambda v: (v.createtxg, v.is_bookmark))) for ds, vs in versions.items()}


def _int_or_zero(text: str) -> int:
    return int(text) if text.isdigit() else 0


@dataclass(frozen=True)
class SendOptions:
    """Flags for `zfs send` beyond the snapshots: user options, raw, resume."""

    extra: tuple[str, ...] = ()


def send_full(snapshot: Version, extra: Sequence[str] = ()) -> list[str]:
    return [ZFS, "send", *extra, snapshot.full_name]


def send_incremental(base: Version, target: Version, intermediates: bool, extra: Sequence[str] = ()) -> list[str]:
    """`-I base target` sends every snapshot between; `-i` only target. A bookmark base takes `-i`."""
    flag = "-I" if intermediates and not base.is_bookmark else "-i"
    # The base may be given relative to the target's dataset; we always give it in full.
    return [ZFS, "send", *extra, flag, base.full_name, target.full_name]


def send_parts(argv: Sequence[str]) -> Optional[tuple[str, Optional[str], tuple[str, ...]]]:
    """(target, `-i` base or None, the other words) of a send built by `send_full` or
    `send_incremental`; None for any other form (a resume, a word that is not an option). Pure."""
    if len(argv) < 3 or argv[0] != ZFS or argv[1] != "send" or "@" not in argv[-1]:
        return None
    words, base = list(argv[2:-1]), None
    if "-i" in words:
        at = words.index("-i")
        if at + 1 == len(words):
            return None
        base = words.pop(at + 1)
        words.pop(at)
    if any(not w.startswith("-") for w in words):
        return None
    return argv[-1], base, tuple(words)


def send_resume(token: str, extra: Sequence[str] = ()) -> list[str]:
    # Only a few flags combine with -t (e.g. -v, -n, -P, -e, -L, -c, -w are in the token).
    return [ZFS, "send", *[o for o in extra if o in ("-v", "-P")], "-t", token]


def send_resume_describe(token: str) -> list[str]:
    """`zfs send -nvt TOKEN`: sends nothing; prints what the token names (see `parse_resume_token`)."""
    return [ZFS, "send", "-n", "-v", "-t", token]


@dataclass(frozen=True)
class ResumeToken:
    """What a resume token asks the source to send: `toname` (ds@snap), its GUID, the base's GUID (0: full)."""

    toname: str
    toguid: int
    fromguid: int = 0
    raw: bool = False
    flags: str = ""  # the record flags it carries: L (largeblockok), c (compressok), e (embedok)

    @property
    def dataset(self) -> str:
        return self.toname.partition("@")[0]


def parse_resume_token(output: str) -> Optional[ResumeToken]:
    """The token contents `zfs send -nvt` prints (OpenZFS 2.1-2.3: indented `name = value` lines); None if absent."""
    fields: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.strip().partition(" = ")
        if sep and key.isidentifier():
            fields.setdefault(key, value.strip())
    try:
        return ResumeToken(
            toname=fields["toname"],
            toguid=int(fields["toguid"], 0),
            fromguid=int(fields.get("fromguid", "0"), 0),
            raw="rawok" in fields,
            flags="".join(
                c for key, c in (("largeblockok", "L"), ("compressok", "c"), ("embedok", "e")) if key in fields
            ),
        )
    except (KeyError, ValueError):
        return None


# What `zfs send -t` / `zfs receive -s` say when a resume token can never be used again (OpenZFS 2.1-2.3,
# lib/libzfs/libzfs_sendrecv.c); anything else (a kill, a full pool, a broken pipe) keeps the partial state.
_TOKEN_UNUSABLE = re.compile(
    r"resume token is corrupt|is no longer the same snapshot used in the initial send|"
    r"used in the initial send no longer exists|incremental source \S+ no longer exists|"
    r"dataset to be sent no longer exists|resume token does not match dataset|"
    r"Resuming recv on existing dataset without force|"
    r"cannot receive resume stream: kernel modules must be upgraded to receive this stream"
)


def is_unusable_token_error(error: CommandError) -> bool:
    """Does this failure say the resume token itself can no longer be used?"""
    return bool(_TOKEN_UNUSABLE.search(" ".join(f"{error.stderr} {error}".split())))


_ALREADY_EXISTS = re.compile(r"dataset already exists|bookmark exists|already exists")


def already_exists(error: CommandError) -> bool:
    """zfs said what it was asked to create is there (a retried `zfs snapshot` or `zfs bookmark`)."""
    return bool(_ALREADY_EXISTS.search(error.stderr))


def does_not_exist(error: CommandError) -> bool:
    """zfs said what it was asked to destroy is gone (a retried `zfs destroy`)."""
    return isinstance(error, DatasetNotFound) or "does not exist" in error.stderr


def send_size_estimate(argv: Sequence[str]) -> list[str]:
    """The dry-run of a send argv that prints its size (`-n -P`)."""
    return [argv[0], argv[1], "-n", "-P", *argv[2:]]


def parse_size_estimate(output: str) -> Optional[int]:
    """The `size` line of `zfs send -nP` output, in bytes."""
    for line in reversed(output.splitlines()):
        fields = line.split("\t")
        if fields[0] == "size" and len(fields) > 1 and fields[-1].isdigit():
            return int(fields[-1])
    return None


def get_properties(root: str) -> list[str]:
    """Every property of every dataset under `root` with its source, in one call."""
    return get_values(root, ["all"])


def parse_properties(output: str) -> dict[str, dict[str, tuple[str, str]]]:
    """`get_properties` output as {dataset: {property: (value, source)}}."""
    result: dict[str, dict[str, tuple[str, str]]] = {}
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) == 4:
            result.setdefault(fields[0], {})[fields[1]] = (fields[2], fields[3])
    return result


RAW_SEND_FLAGS = ("-w", "--raw")


def is_raw_send(options: Sequence[str]) -> bool:
    """Do these `zfs send` options include raw mode (also inside combined short flags like -wc)?"""
    return any(o in RAW_SEND_FLAGS or (o.startswith("-") and not o.startswith("--") and "w" in o[1:]) for o in options)


def receive(
    dataset: str,
    force: bool = False,
    resumable: bool = True,
    extra: Sequence[str] = (),
    dry_run: bool = False,
) -> list[str]:
    """`zfs receive -u` never mounts what it receives: a backup is not a live filesystem.

    The DR state properties never travel with a stream (`-x` each): a replica must not inherit its
    sender's role or fencing token. `extra` may name them too (once only, or zfs refuses).
    """
    argv = [ZFS, "receive", "-u"]
    if resumable:
        argv.append("-s")
    if force:
        argv.append("-F")
    if dry_run:
        argv.append("-n")
    argv += [word for name in DR_PROPERTIES for word in ("-x", name)]
    return [*argv, *_without_dr_properties(extra), dataset]


def _without_dr_properties(options: Sequence[str]) -> list[str]:
    """`options` less any `-o`/`-x` pair that names a DR state property (receive excludes those itself)."""
    kept: list[str] = []
    index = 0
    while index < len(options):
        word = options[index]
        value = options[index + 1] if index + 1 < len(options) else ""
        if word in ("-o", "-x") and value.split("=", 1)[0] in DR_PROPERTIES:
            index += 2
            continue
        kept.append(word)
        index += 1
    return kept


def receive_origin(snapshot: str) -> list[str]:
    """`zfs receive` options that make the received dataset a clone of `snapshot` (of the destination)."""
    return ["-o", f"origin={snapshot}"]


def receive_abort(dataset: str) -> list[str]:
    """Discard a partially received stream (and its resume token)."""
    return [ZFS, "receive", "-A", dataset]


def rollback(snapshot: Version, destroy_newer: bool) -> list[str]:
    return [ZFS, "rollback", *(["-r"] if destroy_newer else []), snapshot.full_name]


def destroy(argument: str) -> list[str]:
    """`zfs destroy` of one argument: `pool/ds@a,b,c` (several snapshots) or `pool/ds#b` (a bookmark)."""
    return [ZFS, "destroy", argument]


def destroy_recursive(dataset: str) -> list[str]:
    """`zfs destroy -r`: a dataset with all its descendants, snapshots and bookmarks."""
    return [ZFS, "destroy", "-r", dataset]


def snapshot(full_names: Sequence[str]) -> list[str]:
    """One `zfs snapshot a@n b@n ...`: ZFS takes them all in one transaction (one pool)."""
    return [ZFS, "snapshot", *full_names]


def bookmark(snapshot: Version, name: str) -> list[str]:
    """`zfs bookmark ds@s ds#name` (the zfs command line takes one pair per call)."""
    return [ZFS, "bookmark", snapshot.full_name, f"{snapshot.dataset}#{name}"]


def list_snapshots_changed(root: str, user_props: Sequence[str] = (), recursive: bool = True) -> list[str]:
    """Datasets with their `snapshots_changed` time (OpenZFS >= 2.2) and GUID: a cheap "did anything change?"."""
    columns = ",".join(("name", "snapshots_changed", "guid", *user_props))
    argv = [ZFS, "list", "-H", "-p", "-t", "filesystem,volume", "-o", columns]
    return [*argv, *(["-r"] if recursive else []), root]


def parse_snapshots_changed(
    output: str, user_props: Sequence[str] = ()
) -> dict[str, tuple[Optional[int], dict[str, str]]]:
    """`list_snapshots_changed` output: name -> (snapshots_changed or None if unknown, user props and
    the dataset's `guid`)."""
    result: dict[str, tuple[Optional[int], dict[str, str]]] = {}
    for fields in _rows(output, 3 + len(user_props)):
        changed = int(fields[1]) if fields[1].isdigit() else None
        result[fields[0]] = (changed, dict(zip(("guid", *user_props), fields[2:])))
    return result


def create_parents(dataset: str) -> list[str]:
    """Create a dataset and any missing parents (no -u: OpenZFS 2.1 lacks it)."""
    return [ZFS, "create", "-p", dataset]


def create_placeholder(dataset: str) -> list[str]:
    """Create one empty parent, marked as zferry's placeholder, never mounted (`canmount=off`)."""
    return [ZFS, "create", "-o", f"{PLACEHOLDER_PROPERTY}={dataset}", "-o", "canmount=off", dataset]


def clear_placeholder(dataset: str) -> list[str]:
    """Drop the placeholder marker from a dataset that now holds a replica (`canmount=off` stays:
    zferry receives with -u, a replica is not a live filesystem)."""
    return [ZFS, "inherit", PLACEHOLDER_PROPERTY, dataset]


def list_holds(snapshots: Sequence[str]) -> list[str]:
    """The holds (tags) on some snapshots, one call: `NAME<TAB>TAG<TAB>TIMESTAMP` lines (no `-p`:
    OpenZFS 2.1 does not know it for `holds`, and only the names and tags are read)."""
    return [ZFS, "holds", "-H", *snapshots]


def parse_holds(output: str) -> dict[str, set[str]]:
    """`list_holds` output as {snapshot: tags}."""
    holds: dict[str, set[str]] = {}
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) >= 2:
            holds.setdefault(fields[0], set()).add(fields[1])
    return holds


def hold(tag: str, snapshots: Sequence[str]) -> list[str]:
    """One `zfs hold TAG a@x b@y ...` for many snapshots."""
    return [ZFS, "hold", tag, *snapshots]


def release(tag: str, snapshots: Sequence[str]) -> list[str]:
    """One `zfs release TAG a@x b@y ...` for many snapshots."""
    return [ZFS, "release", tag, *snapshots]


def get_property(dataset: str, prop: str) -> list[str]:
    return [ZFS, "get", "-H", "-p", "-o", "value", prop, dataset]


def version() -> list[str]:
    return [ZFS, "version"]


_NOT_FOUND = re.compile(r"dataset does not exist|could not find any snapshots to destroy|no such pool")


_HINTS = (
    (
        re.compile(r"has been modified\s+since most recent snapshot"),
        "someone changed the destination after its latest snapshot; to discard those changes, "
        "rerun with --force-rollback-to-latest-snapshot",
    ),
    (
        re.compile(r"destination has snapshots|must destroy them to overwrite"),
        "the destination has snapshots the source does not know; see --force",
    ),
    (
        re.compile(r"permission denied", re.IGNORECASE),
        "run as root, or grant the user rights with 'zfs allow' (send/receive/create/mount/...)",
    ),
    (
        re.compile(r"partially-complete state|dataset is busy|destination .* is busy", re.IGNORECASE),
        "a receive of an earlier run that was interrupted or is still ending holds it; zferry waits for it and "
        "resumes it (rerun if this persists); to throw the partial receive away instead: zfs receive -A DATASET",
    ),
    (
        re.compile(r"out of space|no space left", re.IGNORECASE),
        "the destination pool is full; nothing was lost, free space and rerun (the transfer resumes)",
    ),
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


# -- multi-site DR (zferry.dr): state properties, and moving divergent data aside -------------


def get_values(root: str, properties: Sequence[str], depth: Optional[int] = None) -> list[str]:
    """Some properties of a tree's filesystems and volumes (all of it, or `depth` levels) in one call:
    `NAME PROP VALUE SOURCE` lines."""
    levels = ["-r"] if depth is None else ["-d", str(depth)]
    columns = ["-o", "name,property,value,source"]
    return [ZFS, "get", "-H", "-p", "-t", "filesystem,volume", *columns, *levels, ",".join(properties), root]


def set_values(dataset: str, values: Sequence[tuple[str, str]]) -> list[str]:
    """`zfs set a=1 b=2 dataset`: several properties in one call (one transaction)."""
    return [ZFS, "set", *(f"{name}={value}" for name, value in values), dataset]


def inherit(dataset: str, prop: str) -> list[str]:
    """`zfs inherit PROP dataset`: clear a local value."""
    return [ZFS, "inherit", prop, dataset]


def rename(dataset: str, new_name: str) -> list[str]:
    """`zfs rename` of a dataset (its descendants move with it)."""
    return [ZFS, "rename", dataset, new_name]


def clone(snapshot: str, dataset: str, values: Sequence[tuple[str, str]] = ()) -> list[str]:
    """`zfs clone [-o p=v ...] pool/ds@snap pool/new`."""
    options = [word for name, value in values for word in ("-o", f"{name}={value}")]
    return [ZFS, "clone", *options, snapshot, dataset]


def promote(dataset: str) -> list[str]:
    """`zfs promote`: the clone takes over its origin's snapshots up to the origin."""
    return [ZFS, "promote", dataset]


def mount(dataset: str) -> list[str]:
    """`zfs mount dataset`."""
    return [ZFS, "mount", dataset]


def pool_health(pool: str) -> list[str]:
    """`zpool list -H -o health POOL` (ONLINE, DEGRADED, ...)."""
    return ["zpool", "list", "-H", "-o", "health", pool]


def get_compression(root: str, recursive: bool = True) -> list[str]:
    """How a tree's datasets are stored (`compression`, `refcompressratio`), read like `get_properties`."""
    return get_values(root, ["compression", "refcompressratio"], None if recursive else 0)
