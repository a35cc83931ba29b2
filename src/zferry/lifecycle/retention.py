"""Which destination snapshots to delete (`--delete-dst-snapshots`), and how to batch `zfs destroy`.

The filter selects the snapshots to delete, or with `except_selected`
(`--delete-dst-snapshots-except`, `--delete-dst-snapshots-except-plan`) the snapshots to keep.
Two safeguards then apply: with a real source (not `dummy`), nothing whose GUID still exists
on the source is deleted; and the latest snapshot that source and destination have in common,
which the next incremental send starts from, is never deleted.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from typing import Optional

from zferry.model import Version
from zferry.plan.guard import MAX_DESTROY_ARGUMENT, destroy_arguments
from zferry.select.snapshots import SnapshotFilter

__all__ = ["MAX_DESTROY_ARGUMENT", "destroy_arguments", "snapshots_to_delete"]


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
