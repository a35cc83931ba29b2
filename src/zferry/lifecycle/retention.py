"""Which destination snapshots to delete (`--delete-dst-snapshots`), and how to batch `zfs destroy`.

The filter selects the snapshots to delete, or with `except_selected`
(`--delete-dst-snapshots-except`, `--delete-dst-snapshots-except-plan`) the snapshots to keep.
Two safeguards then apply: with a real source (not `dummy`), nothing whose GUID still exists
on the source is deleted; and the latest snapshot that source and destination have in common,
which the next incremental send starts from, is never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set
from typing import Optional

from zferry.model import Version
from zferry.select.snapshots import SnapshotFilter

MAX_DESTROY_ARGUMENT = 100_000
"""Keep each `zfs destroy pool/ds@a,b,c` argument below this many characters."""


def snapshots_to_delete(
    dst: Sequence[Version],
    selection: SnapshotFilter,
    now: float,
    *,
    except_selected: bool = False,
    source_guids: Optional[Set[int]] = None,
    latest_common_guid: Optional[int] = None,
) -> list[Version]:
    """The versions of one destination dataset to delete, oldest first.

    `dst` are its snapshots (or its bookmarks, when pruning bookmarks), oldest first by
    createtxg. `source_guids` are the GUIDs present on the source (snapshots, plus bookmarks
    unless `--delete-dst-snapshots-no-crosscheck`); None means the `dummy` source, i.e. no
    cross-check. `latest_common_guid` is never deleted.
    """
    selected = selection.select(dst, now)
    if except_selected:
        keep = set(map(id, selected))
        candidates = [v for v in dst if id(v) not in keep]
    else:
        candidates = selected
    protected: set[int] = set(source_guids) if source_guids is not None else set()
    if latest_common_guid is not None:
        protected.add(latest_common_guid)
    if not protected:
        return candidates
    return [v for v in candidates if v.guid not in protected]


def destroy_arguments(versions: Iterable[Version], max_chars: int = MAX_DESTROY_ARGUMENT) -> list[str]:
    """`zfs destroy` arguments for `versions`: `pool/ds@a,b,c` for snapshots of one dataset,
    each under `max_chars` characters where names allow; one `pool/ds#b` per bookmark (zfs
    destroys bookmarks one at a time). Order follows the input, grouped by dataset.
    """
    snapshots: dict[str, list[str]] = {}
    bookmarks: list[str] = []
    for version in versions:
        if version.is_bookmark:
            bookmarks.append(version.full_name)
        else:
            snapshots.setdefault(version.dataset, []).append(version.name)
    arguments: list[str] = []
    for dataset, names in snapshots.items():
        current = ""
        for name in names:
            if current and len(current) + 1 + len(name) <= max_chars:
                current += "," + name
            else:
                if current:
                    arguments.append(current)
                current = f"{dataset}@{name}"
        if current:
            arguments.append(current)
    return arguments + bookmarks
