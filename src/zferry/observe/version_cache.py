"""`--cache-snapshots` for replication: each dataset's snapshot list, valid while its
`snapshots_changed` property (OpenZFS >= 2.2) keeps the value it had when we listed it.

Bookmarks are kept with the snapshots they were listed with. Creating one does not change
`snapshots_changed`, so a cached list may lack newer bookmarks; that costs nothing, as a bookmark
stands in for a snapshot only once the snapshot is destroyed, and that changes the property.

Listing the snapshots of received, unmounted datasets is the slow part of a run where nothing
is due (ZFS loads each dataset to walk its snapshots); the dataset listing that carries
`snapshots_changed` is cheap. `snapshots_changed` counts whole seconds, so a snapshot taken in
the same second as our listing would leave it unchanged: an entry is kept only if the listing
started safely after that second on the host's own clock (`observe/host_clock.py` has the rule and
its proof). Entries are also keyed on the dataset's GUID: a dataset renamed into the place of
another keeps its own `snapshots_changed`, which may read the same second as the other's.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Optional

from zferry.model import Version
from zferry.observe.atomic_json import write_json_atomically
from zferry.observe.host_clock import listed_after_change

log = logging.getLogger("zferry")


class VersionCache:
    """The cached snapshot lists of one host and root dataset, in one JSON file."""

    def __init__(self, directory: str, host: str, root: str) -> None:
        key = f"{host}:{root}".replace("/", "%2F")
        self.path = os.path.join(directory, f"versions-{key}.json")
        self._entries: dict[str, tuple[int, list[list[object]], str]] = {}
        self._dirty = False
        try:
            with open(self.path, encoding="utf-8") as handle:
                raw = json.load(handle)
            self._entries = {k: (int(v[0]), list(v[1]), str(v[2]) if len(v) > 2 else "") for k, v in raw.items()}
        except (OSError, ValueError, TypeError, IndexError):
            self._entries = {}  # no cache yet, or unreadable: it only costs speed

    @property
    def empty(self) -> bool:
        """Whether the cache knows nothing of the tree (its first run, or an unreadable file)."""
        return not self._entries

    def lookup(self, dataset: str, changed: Optional[int], guid: str = "") -> Optional[tuple[Version, ...]]:
        """The cached snapshots of `dataset` if its snapshots_changed is still `changed` (and its GUID `guid`)."""
        entry = self._entries.get(dataset)
        if entry is None or changed is None or entry[0] != changed or entry[2] != guid:
            return None
        versions = []
        for row in entry[1]:  # name, guid, createtxg, bookmark flag (missing in files of older versions)
            bookmark = len(row) > 3 and bool(row[3])
            versions.append(Version(dataset, str(row[0]), int(row[1]), int(row[2]), 0, bookmark))  # type: ignore[call-overload]
        return tuple(versions)

    def store(
        self, dataset: str, changed: Optional[int], versions: Sequence[Version], listed_at: float, guid: str = ""
    ) -> None:
        """Remember `versions` if the listing started safely after the change (`listed_at`: a time the
        host's clock had certainly reached when it started, `host_clock.host_time_floor`)."""
        if changed is None or not listed_after_change(changed, listed_at):
            self.forget(dataset)
            return
        rows: list[list[object]] = [[v.name, v.guid, v.createtxg, int(v.is_bookmark)] for v in versions]
        self._entries[dataset] = (changed, rows, guid)
        self._dirty = True

    def forget(self, dataset: str) -> None:
        if self._entries.pop(dataset, None) is not None:
            self._dirty = True

    def save(self) -> None:
        """Write the file atomically; a failure is logged and only costs speed next time."""
        if not self._dirty:
            return
        try:
            write_json_atomically(self.path, self._entries)
            self._dirty = False
        except OSError as error:
            log.warning("cannot write the snapshot cache %s: %s", self.path, error)
