"""A dataset tree as a directory: one stream file per dataset and a manifest. Pure.

    out/manifest.json          the tree's source, snapshot, and its datasets in receive order
    out/0000-data.zfs          the root's stream
    out/0001-data+child.zfs    one file per dataset below it, parents first (zvols each on their own)

A send writes the manifest last: a directory without one is not a complete tree. A receive
checks the whole manifest before anything runs: every name stays inside the tree (relative,
valid ZFS components, no `..`), every file is a plain name in the directory, every parent comes
before its children.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Optional

from zferry import validate
from zferry.errors import UsageError
from zferry.model import Dataset, Version
from zferry.server.errors import ApiError, unprocessable
from zferry.server.stream_header import StreamHeader

FORMAT = "zferry-tree"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_DATASETS = 10_000
KINDS = ("filesystem", "volume")
_FILE = re.compile(r"[0-9]{4,}-[A-Za-z0-9_.:+-]{1,200}\.zfs")
_TAG = re.compile(r"[@#](.+)")


@dataclass(frozen=True)
class Member:
    """One dataset of a tree as the manifest records it."""

    name: str  # relative to the tree's root: "" for the root, "child/vol" below it
    kind: str  # filesystem | volume
    file: str  # its stream's file name in the directory
    raw: bool  # sent with -w (always for an encrypted dataset)
    from_snapshot: Optional[str]  # "@base" or "#base" for an incremental stream, None for a full one
    bytes: int = 0


@dataclass(frozen=True)
class Manifest:
    source: str  # the sent tree's root dataset
    snapshot: str
    from_snapshot: Optional[str]  # asked for ("@base"/"#base"); a member without that base was sent full
    members: tuple[Member, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "source": self.source,
            "snapshot": self.snapshot,
            "from_snapshot": self.from_snapshot,
            "datasets": [asdict(m) for m in self.members],
        }


@dataclass(frozen=True)
class Planned:
    """A member to send: what the manifest will say, and the versions its `zfs send` names."""

    member: Member
    target: Version
    base: Optional[Version]


def child_name(root: str, name: str) -> str:
    """The dataset `name` (relative, "" for the root) below `root`."""
    return f"{root}/{name}" if name else root


def relative_name(root: str, dataset: str) -> str:
    return "" if dataset == root else dataset[len(root) + 1 :]


def _parent(name: str) -> Optional[str]:
    return None if not name else name.rpartition("/")[0]


def file_name(index: int, root: str, name: str) -> str:
    """`0003-data+child+vol.zfs`: the index keeps names unique, `+` (never in a ZFS name) stands for `/`."""
    shown = child_name(root.rpartition("/")[2], name).replace("/", "+").replace(" ", "_")
    return f"{index:04d}-{shown}.zfs"


def plan_tree(
    root: str,
    snap: str,
    datasets: Mapping[str, Dataset],
    versions: Mapping[str, Sequence[Version]],
    base_tag: Optional[str],
    raw: bool,
) -> list[Planned]:
    """The datasets of the tree under `root` that have `@snap`, parents first.

    With `base_tag`, a member that has that base is sent incrementally, one that lacks it (created
    since) in full. A dataset without `@snap` whose descendant has it is refused (its children could
    not be received without it)."""
    names = sorted(
        (relative_name(root, d) for d in datasets if d == root or d.startswith(root + "/")),
        key=lambda n: n.split("/") if n else [],
    )
    found = {n: _version(versions.get(child_name(root, n), ()), "@" + snap) for n in names}
    missing = {n for n, v in found.items() if v is None}
    planned: list[Planned] = []
    for name in names:
        target = found[name]
        if target is None:
            continue
        parent = _parent(name)
        if parent is not None and parent in missing:
            raise unprocessable(
                f"{child_name(root, parent)} has no @{snap} but {child_name(root, name)} has",
                f"snapshot the whole tree at once: zfs snapshot -r {root}@{snap}",
            )
        dataset = datasets[child_name(root, name)]
        base = _version(versions.get(dataset.name, ()), base_tag) if base_tag else None
        member = Member(
            name,
            dataset.kind,
            file_name(len(planned), root, name),
            raw or dataset.is_encrypted,
            base.tag if base else None,
        )
        planned.append(Planned(member, target, base))
    return planned


def _version(versions: Sequence[Version], tag: str) -> Optional[Version]:
    return next((v for v in versions if v.tag == tag), None)


def parse_manifest(data: bytes) -> Manifest:
    """The manifest of a tree directory, every field checked; a 422 saying what is wrong otherwise."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise _refused(f"{MANIFEST} is over {MAX_MANIFEST_BYTES} bytes")
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise _refused(f"{MANIFEST} is not JSON: {error}") from None
    if not isinstance(value, dict) or value.get("format") != FORMAT or value.get("version") != FORMAT_VERSION:
        raise _refused(f"{MANIFEST} is not a {FORMAT} version {FORMAT_VERSION} manifest")
    source, snapshot, base = value.get("source"), value.get("snapshot"), value.get("from_snapshot")
    entries = value.get("datasets")
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_DATASETS:
        raise _refused(f"{MANIFEST}: datasets must be a list of 1 to {MAX_DATASETS} entries")
    try:
        root = validate.dataset_name(_text(source, "source"))
        snap = validate.snapshot_name(_text(snapshot, "snapshot"))
        members = tuple(_member(entry) for entry in entries)
        base = None if base is None else _tag(base, "from_snapshot")
    except UsageError as error:
        raise _refused(f"{MANIFEST}: {error}") from None
    _check_order(members)
    return Manifest(root, snap, base, members)


def _refused(message: str) -> ApiError:
    return unprocessable(message, f"give a directory written by a recursive send ({MANIFEST} and its stream files)")


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{field} must be a string")
    return value


def _tag(value: Any, field: str) -> str:
    match = _TAG.fullmatch(_text(value, field))
    if match is None:
        raise UsageError(f"{field} {value!r} must be '@name' or '#name'")
    validate.snapshot_name(match.group(1))
    return str(value)


def _member(entry: Any) -> Member:
    """One manifest entry; its name must stay inside the tree and its file inside the directory."""
    if not isinstance(entry, dict) or set(entry) != {"name", "kind", "file", "raw", "from_snapshot", "bytes"}:
        raise UsageError("each dataset needs exactly name, kind, file, raw, from_snapshot and bytes")
    name, file = _text(entry["name"], "name"), _text(entry["file"], "file")
    if name:
        validate.dataset_name(f"root/{name}")  # relative: no leading '/', no '..', no '@'
    if not _FILE.fullmatch(file):
        raise UsageError(f"file {file!r} must be a plain stream file name such as '0001-data+child.zfs'")
    if entry["kind"] not in KINDS or not isinstance(entry["raw"], bool):
        raise UsageError(f"dataset {name!r}: kind must be one of {', '.join(KINDS)} and raw a boolean")
    count = entry["bytes"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise UsageError(f"dataset {name!r}: bytes must be a count")
    base = None if entry["from_snapshot"] is None else _tag(entry["from_snapshot"], "from_snapshot")
    return Member(name, entry["kind"], file, entry["raw"], base, count)


def _check_order(members: Sequence[Member]) -> None:
    """The root first, every parent before its children, no name or file twice."""
    if members[0].name != "":
        raise _refused(f'{MANIFEST}: the first dataset must be the tree\'s root (name "")')
    seen: set[str] = set()
    files: set[str] = set()
    for member in members:
        parent = _parent(member.name)
        if member.name in seen or member.file in files:
            raise _refused(f"{MANIFEST}: dataset {member.name!r} or file {member.file!r} is listed twice")
        if parent is not None and parent not in seen:
            raise _refused(f"{MANIFEST}: dataset {member.name!r} comes before its parent {parent!r}")
        seen.add(member.name)
        files.add(member.file)


def check_stream(manifest: Manifest, member: Member, header: Optional[StreamHeader]) -> None:
    """The file holds the stream the manifest says: of that dataset of the source, at the snapshot."""
    expected = f"{child_name(manifest.source, member.name)}@{manifest.snapshot}"
    if header is None or header.toname != expected or header.compound:
        found = "no send stream" if header is None else f"a stream of {header.toname}"
        raise _refused(f"{member.file} holds {found}, not of {expected} as {MANIFEST} says")


def received(versions: Sequence[Version], header: StreamHeader) -> bool:
    """Does the destination already have the stream's snapshot (same GUID)? Then a rerun skips it."""
    return any(v.guid == header.toguid and not v.is_bookmark for v in versions)
