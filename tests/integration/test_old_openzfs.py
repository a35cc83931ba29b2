"""Options that lean on newer OpenZFS features still work, only slower, on older OpenZFS (2.1).

Runs on every VM (`every_zfs`); on OpenZFS >= 2.2 these are plain regression tests.
"""

from __future__ import annotations

import pytest

from tests.integration.vm import Vm

pytestmark = pytest.mark.every_zfs

DAILY_PLAN = '{"prod": {"onsite": {"daily": 3}}}'


def test_cache_snapshots_replicates_without_snapshots_changed(vm: Vm, roots: tuple[str, str]) -> None:
    """--cache-snapshots on OpenZFS < 2.2 (no snapshots_changed): replication lists without the cache."""
    src, dst = roots
    cache = f"/tmp/cache-{src.replace('/', '_')}"
    vm.sh(f"zfs create {src}/a; zfs snapshot -r {src}@s1")
    vm.zferry("-r", "--cache-snapshots", "--cache-dir", cache, src, dst)
    vm.sh(f"zfs snapshot -r {src}@s2")
    vm.zferry("-r", "--cache-snapshots", "--cache-dir", cache, src, dst)
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
    assert set(vm.snapshot_guids(dst)) == {"@s1", "@s2", "/a@s1", "/a@s2"}


def test_cache_snapshots_creates_without_snapshots_changed(vm: Vm, roots: tuple[str, str]) -> None:
    """--create-src-snapshots --cache-snapshots on OpenZFS < 2.2: snapshots are still created when due."""
    src, _ = roots
    args = ["--skip-replication", "--create-src-snapshots", "--create-src-snapshots-plan", DAILY_PLAN]
    cache = ["--cache-snapshots", "--cache-dir", f"/tmp/zcache-{src.replace('/', '_')}"]
    vm.zferry(*args, *cache, src, "dummy")
    vm.zferry(*args, *cache, src, "dummy")  # nothing due the second time
    assert len(vm.snapshot_guids(src)) == 1
