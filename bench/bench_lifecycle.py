"""The cached "is a snapshot due?" check on a dataset with 5,000 snapshots, in the OpenZFS test VM.

Prints, for --cache-snapshots (hit) and without the cache: wall time per check inside one
Python process (what a daemon or a run over many datasets pays per dataset), the number of zfs
processes per check, and the wall time of a whole `zferry` command (Python start included).
No pass/fail. The VM is emulated, so absolute times are slower than on real hardware.

Run: ZFERRY_KEEP_VM=1 PYTHONPATH=. python bench/bench_lifecycle.py  (BENCH_SNAPSHOTS=N for another size;
building the 5,000 snapshots takes ~15 min in the emulated VM, once)
"""

from __future__ import annotations

import os
import subprocess
import time

from tests.integration.vm import VM_SCRIPT, Vm

DATASET = f"src/bench_lifecycle_{os.environ.get('BENCH_SNAPSHOTS', '5000')}"
SNAPSHOTS = int(os.environ.get("BENCH_SNAPSHOTS", "5000"))
PLAN = '{"prod": {"onsite": {"daily": 31}}}'
CACHE_DIR = "/tmp/zferry-bench-cache"

MAKE = f"""
have=$( (zfs list -H -t snapshot -d 1 -o name {DATASET} 2>/dev/null || true) | wc -l)
[ "$have" -ge {SNAPSHOTS} ] && exit 0
zfs create -p {DATASET}
# One snapshot of a dataset per transaction group: run many zfs snapshot calls side by side.
seq -f '%05g' 1 {SNAPSHOTS - 1} | xargs -P 8 -I N \
  sh -c 'zfs snapshot {DATASET}@prod_onsite_N_hourly 2>/dev/null || true'
zfs snapshot {DATASET}@prod_onsite_99999_daily 2>/dev/null || true
"""

IN_PROCESS = f"""
import time
from zferry.exec.host import LOCAL
from zferry.exec.runner import Runner
from zferry.lifecycle.config import CreateConfig
from zferry.lifecycle.create_job import create_snapshots
from zferry.lifecycle.plan import parse_plan
from zferry.observe.snapshot_cache import SnapshotCache
from zferry.inventory import Side, list_inventory
from zferry.select.datasets import DatasetFilter

class Counting(Runner):
    calls = 0
    def run(self, host, argv, **kw):
        Counting.calls += 1
        return super().run(host, argv, **kw)

runner, side = Counting(), Side(LOCAL, "{DATASET}")
create = CreateConfig(parse_plan('{PLAN}', for_creation=True))
for label, cached in (("cached (hit)", True), ("uncached", False)):
    times = []
    Counting.calls = 0
    for _ in range(10):
        start = time.perf_counter()
        cache = SnapshotCache("{CACHE_DIR}", LOCAL.label, side.root) if cached else None
        inventory = None if cached else list_inventory(runner, side, detail=True)
        result = create_snapshots(runner, side, create, DatasetFilter(), False, inventory, cache)
        times.append(time.perf_counter() - start)
        assert not result.created, result.created
    times.sort()
    print(f"{{label:14}} median {{times[5] * 1000:8.1f}} ms  min {{times[0] * 1000:8.1f}} ms  "
          f"zfs processes per check {{Counting.calls / 10:.0f}}")
"""


def main() -> None:
    env = dict(os.environ)
    subprocess.run([str(VM_SCRIPT), "up"], env=env, check=True)
    vm = Vm(env)
    started = time.perf_counter()
    vm.sh(MAKE, timeout=1800)
    count = vm.sh(f"zfs list -H -t snapshot -d 1 -o name {DATASET} | wc -l").strip()
    print(f"dataset {DATASET}: {count} snapshots (setup {time.perf_counter() - started:.1f} s)")
    args = (
        "--skip-replication",
        "--create-src-snapshots",
        "--create-src-snapshots-plan",
        PLAN,
        "--cache-snapshots",
        "--cache-dir",
        CACHE_DIR,
        DATASET,
        "dummy",
    )
    vm.zferry(*args)
    time.sleep(2.1)  # entries are stored only when the last change is at least 2 s older than the listing
    vm.zferry(*args)  # fills the cache
    print(vm.sh(f"cd /opt/zferry && PYTHONPATH=src python3 - <<'PY'\n{IN_PROCESS}\nPY"), end="")
    for label, extra in (("cached", ()), ("uncached", ("--cache-snapshots=false",))):
        walls = []
        for _ in range(3):
            start = time.perf_counter()
            vm.zferry(*args, *extra)
            walls.append(time.perf_counter() - start)
        print(f"whole command, {label:8}: {min(walls):.2f} s (min of 3; Python start and ssh into the VM included)")


if __name__ == "__main__":
    main()
