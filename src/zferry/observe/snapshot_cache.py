"""`--cache-snapshots`: what the latest snapshots of each dataset were, valid while nothing changed.

OpenZFS >= 2.2 keeps a `snapshots_changed` property per dataset: the time (in seconds) of the
last snapshot created, destroyed or renamed in it. The cache remembers, per host and dataset,
that value together with the latest snapshot (name and creation time) of each plan entry. While
the property still reads the same, the cached snapshots are still the latest ones, and "is a
snapshot due?" needs no `zfs list -t snapshot`.

An entry is stored only when the listing started safely after the second of the last change on
the zfs host's own clock (`observe/host_clock.py`, the rule the replication cache uses too): a
change in the same second as the listing would leave the property unchanged and the entry stale.
Entries are keyed on the dataset's GUID too (a dataset renamed into another's place).
Files are JSON, one per host and root dataset, replaced atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from zferry.lifecycle.plan import PlanEntry
from zferry.model import Version
from zferry.observe.atomic_json import write_json_atomically
from zferry.observe.host_clock import listed_after_change

log = logging.getLogger("zferry")
_FORMAT = 1

Latest = dict[str, Optional[tuple[str, int]]]
"""Per plan-entry key: the name and creation time of its latest snapshot, or None if it has none."""


class SnapshotCache:
    """The cache file of one host and root dataset."""

    def __init__(self, directory: str, host: str, root: str) -> None:
        digest = hashlib.sha256(f"{host}\0{root}".encode()).hexdigest()[:32]
        self.path = os.path.join(directory, f"snapshots-{digest}.json")
        self.host = host
        self.root = root
        self.entries: dict[str, dict[str, Any]] = {}
        self.dirty = False
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as error:
            log.warning("ignoring unreadable snapshot cache %s: %s", self.path, error)
            return
        if isinstance(data, dict) and data.get("format") == _FORMAT and isinstance(data.get("datasets"), dict):
            self.entries = data["datasets"]

    def lookup(self, dataset: str, changed: Optional[int], keys: Sequence[str], guid: str = "") -> Optional[Latest]:
        """The cached latest snapshots of `dataset` if `changed` (its snapshots_changed) and its GUID
        still match and every key is known; else None (a miss)."""
        entry = self.entries.get(dataset)
        if changed is None or entry is None or entry.get("changed") != changed or entry.get("guid", "") != guid:
            return None
        latest = entry.get("latest", {})
        if not all(k in latest for k in keys):
            return None
        return {k: (latest[k][0], int(latest[k][1])) if latest[k] else None for k in keys}

    def store(
        self,
        dataset: str,
        changed: Optional[int],
        latest: Mapping[str, Optional[tuple[str, int]]],
        listed_at: float,
        guid: str = "",
    ) -> None:
        """Remember `latest` for `dataset`, if the listing started safely after the last change
        (`listed_at`: a time the host's clock had certainly reached then, `host_time_floor`)."""
        if changed is None or not listed_after_change(changed, listed_at):
            self.forget(dataset)
            return
        cached = {k: list(v) if v else None for k, v in latest.items()}
        self.entries[dataset] = {"changed": changed, "latest": cached, "guid": guid}
        self.dirty = True

    def forget(self, dataset: str) -> None:
        """Drop the entry of a dataset whose snapshots changed."""
        if self.entries.pop(dataset, None) is not None:
            self.dirty = True

    def save(self) -> None:
        """Write the file (atomically) if anything changed; a failure only costs speed next time."""
        if not self.dirty:
            return
        data = {"format": _FORMAT, "host": self.host, "root": self.root, "datasets": self.entries}
        try:
            write_json_atomically(self.path, data)
            self.dirty = False
        except OSError as error:
            log.warning("cannot write snapshot cache %s: %s", self.path, error)


def latest_by_key(snapshots: Sequence[Version], keys: Mapping[str, PlanEntry]) -> Latest:
    """For each key's plan entry, the latest of `snapshots` (oldest first) it matches."""
    latest: Latest = {}
    for key, entry in keys.items():
        found = next((s for s in reversed(snapshots) if entry.matches(s.name)), None)
        latest[key] = (found.name, found.creation) if found is not None else None
    return latest
