"""Clones: send a clone's first snapshot as an incremental from its origin, as bzfs and syncoid do. Pure.

`zfs send -i pool/origin@snap pool/clone@s1` carries only what the clone changed; received with
`-o origin=` naming the destination's copy of the origin snapshot, the destination dataset is a
clone too and shares the origin's blocks. That needs the origin snapshot (same GUID) on the
destination first: the origin dataset is scheduled before its clones (`clone_waves`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Optional

from zferry.model import Version
from zferry.plan.replication import DatasetPlan
from zferry.plan.steps import SendStep


def find_version(full_name: Optional[str], versions: Mapping[str, Sequence[Version]]) -> Optional[Version]:
    """The listed snapshot called `full_name` (`pool/ds@snap`), if any."""
    if not full_name or "@" not in full_name:
        return None
    dataset, _, name = full_name.partition("@")
    return next((v for v in versions.get(dataset, ()) if v.name == name and not v.is_bookmark), None)


def same_snapshot(version: Version, snapshots: Sequence[Version]) -> Optional[Version]:
    """The snapshot among `snapshots` with the GUID of `version`."""
    return next((s for s in snapshots if s.guid == version.guid and not s.is_bookmark), None)


def as_clone(plan: DatasetPlan, origin: Version) -> DatasetPlan:
    """The plan with its first, full send replaced by an incremental from the clone's origin snapshot."""
    if not plan.steps or plan.steps[0].base is not None:
        return plan
    first = SendStep(origin, plan.steps[0].target)
    return dataclasses.replace(plan, steps=(first, *plan.steps[1:]))


def within(name: str, root: str) -> bool:
    return name == root or name.startswith(root + "/")


def clone_waves(names: Sequence[str], origins: Mapping[str, str]) -> list[list[str]]:
    """Split `names` into rounds so that a clone (and its subtree) runs after its origin's dataset.

    `origins` maps a clone to its origin snapshot's dataset. Names keep their order; a name goes in
    its ancestors' round or later, and after its origin's round. Without clones: one round.
    """
    present = set(names)
    deps = {n: [(o, 1)] if (o := origins.get(n)) in present and o != n else [] for n in names}
    if not any(deps.values()):
        return [list(names)] if names else []
    for name in names:
        head = name
        while "/" in head:
            head = head.rsplit("/", 1)[0]
            if head in present:
                deps[name].append((head, 0))
    wave = dict.fromkeys(names, 0)
    for _ in range(len(names)):  # longest chain of clones of clones; ZFS has no cycles
        changed = False
        for name in names:
            level = max((wave[d] + step for d, step in deps[name]), default=0)
            if level != wave[name]:
                wave[name], changed = level, True
        if not changed:
            break
    rounds = max(wave.values()) + 1
    return [w for w in ([n for n in names if wave[n] == i] for i in range(rounds)) if w]


def blocked(names: Sequence[str], bad: Collection[str], origins: Mapping[str, str]) -> list[str]:
    """Those of `names` below (or a clone of) a dataset in `bad` (failed or skipped): `--skip-on-error tree`."""
    return [n for n in names if origins.get(n) in bad or any(n.startswith(b + "/") for b in bad)]
