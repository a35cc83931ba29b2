"""The snapshot cache, on by default where OpenZFS has `snapshots_changed` (2.2+), never misses a
snapshot change, even one made in the same second as a cached listing. The rule and its proof
are in observe/host_clock.py; tests/unit/test_cache_clocks.py plays it against adversarial clocks.
Here, on real ZFS: the proof's premises, a race of changes against cached listings, and
replication with the default cache."""

from __future__ import annotations

import json

import pytest

from tests.integration.vm import GUEST_CHECKOUT, Vm

pytestmark = pytest.mark.needs_zfs(2, 2, reason="snapshots_changed (older OpenZFS lists without the cache)")


def test_snapshots_changed_is_the_hosts_second_of_a_snapshot_change(vm: Vm, roots: tuple[str, str]) -> None:
    """The premises: the property reads the host's clock second of the last snapshot created or
    destroyed, and bookmarks, holds and properties leave it alone (DESIGN: never trusted for them)."""
    src, _ = roots
    out = vm.sh(f"""
        get() {{ zfs get -Hp -o value snapshots_changed {src}; }}
        date +%s; zfs snapshot {src}@s1; date +%s; get
        sleep 1.1; zfs bookmark {src}@s1 {src}#b1; zfs hold keep {src}@s1; zfs set zferry:x=1 {src}; get
        zfs release keep {src}@s1; date +%s; zfs destroy {src}@s1; date +%s; get
    """)
    before, after, created, untouched, before_destroy, after_destroy, destroyed = map(int, out.split())
    assert before <= created <= after and untouched == created
    assert before_destroy <= destroyed <= after_destroy


def test_cached_listings_never_miss_a_change_made_in_the_same_second(vm: Vm, roots: tuple[str, str]) -> None:
    """Snapshots created and destroyed in a race with zferry's cached listings (15 s): every list
    taken from the cache is what ZFS lists; then replication with the default cache leaves the
    destination equal to the source after a change right behind a run."""
    src, dst = roots
    cache = f"/tmp/race-cache-{src.replace('/', '_')}"
    vm.sh(f"rm -rf {cache} {cache}.stop; for d in a b c; do zfs create {src}/$d; done")
    out = vm.sh(f"cd {GUEST_CHECKOUT} && PYTHONPATH=src python3 tests/integration/cache_race.py {src} {cache} 15")
    counts = json.loads(out.splitlines()[-1])
    assert counts["missed"] == 0 and counts["listings"] > 0, counts
    vm.zferry("-r", src, dst)
    vm.sh(f"zfs snapshot -r {src}@right_after")  # within the 2 s after that run's listings
    vm.zferry("-r", src, dst)
    vm.sh(f"zfs snapshot -r {src}@again")
    vm.zferry("-r", src, dst)
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
