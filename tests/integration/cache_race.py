"""Race snapshot changes against zferry's cached listings on real ZFS, and report every miss.

Test-side only, run inside the VM: `python3 tests/integration/cache_race.py ROOT CACHE_DIR SECONDS`
(`--unsafe` trusts every listing: the rule switched off, to show the race finds misses). While
shell loops create and destroy snapshots in ROOT's datasets as fast as ZFS lets them (two loops
per dataset, so changes land close together), this process calls zferry's own cached listing
(`inventory.list_inventory_cached`) again and again. Each list it takes from the cache is checked:
a fresh listing taken while `snapshots_changed` still reads the same value must show the same
snapshots, else the cache missed a change. At the end the loops stop and one more cached listing
must equal a fresh one. Prints one JSON line of counts.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

from zferry import zfs
from zferry.exec.host import LOCAL
from zferry.exec.runner import Runner
from zferry.inventory import CHANGED, Side, list_inventory, list_inventory_cached
from zferry.observe import host_clock

# Create a snapshot and destroy the one before, then pause: none, or long enough for the cache to fill.
LOOP = """i=0; while [ ! -e "$1" ]; do i=$((i+1)); zfs snapshot "$2@$3$i" 2>/dev/null || true
zfs destroy "$2@$3$((i-1))" 2>/dev/null || true
case $(( (i + $4) % 4 )) in 0) sleep 3;; 1) sleep 0.2;; 2) ;; 3) sleep 2.5;; esac; done"""


def snapshots(runner: Runner, dataset: str) -> list[int]:
    """The GUIDs of a dataset's snapshots, read fresh."""
    out = runner.run(LOCAL, zfs.list_versions_of([dataset]), classify=zfs.classify_error)
    return sorted(v.guid for v in zfs.parse_versions(out).get(dataset, ()))


def changed(runner: Runner, dataset: str) -> str:
    return runner.run(LOCAL, ["zfs", "get", "-Hp", "-o", "value", CHANGED, dataset]).strip()


def main() -> None:
    root, cache_dir, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if "--unsafe" in sys.argv:
        host_clock.SAFETY_SECONDS = -math.inf
    runner, side = Runner(), Side(LOCAL, root)
    datasets = [d for d in list_inventory(runner, side).datasets if d != root]  # type: ignore[union-attr]
    stop = f"{cache_dir}.stop"
    loops = [
        subprocess.Popen(["sh", "-c", LOOP, "sh", stop, ds, tag, str(phase)])
        for phase, ds in enumerate(datasets)
        for tag in ("a", "b")
    ]
    counts = {"listings": 0, "checked": 0, "same_second": 0, "missed": 0}
    try:
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            started = math.floor(time.clock_gettime(time.CLOCK_REALTIME))
            inventory = list_inventory_cached(runner, side, cache_dir)
            assert inventory is not None
            counts["listings"] += 1
            for name in datasets:
                value = inventory.datasets[name].user_props.get(CHANGED, "")
                counts["same_second"] += value == str(started)
                if name not in inventory.cached:
                    continue
                fresh = snapshots(runner, name)
                if changed(runner, name) != value:
                    continue  # changed since: the fresh list is of a later state
                counts["checked"] += 1
                cached = sorted(v.guid for v in inventory.versions.get(name, ()) if not v.is_bookmark)
                counts["missed"] += cached != fresh
    finally:
        open(stop, "w").close()
        for loop in loops:
            loop.wait()
    inventory = list_inventory_cached(runner, side, cache_dir)
    assert inventory is not None
    final = {n: sorted(v.guid for v in inventory.versions.get(n, ()) if not v.is_bookmark) for n in datasets}
    counts["missed"] += sum(final[n] != snapshots(runner, n) for n in datasets)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
