"""The test bed itself: a real OpenZFS send | receive in the VM (this tests the bed, not zferry)."""

from __future__ import annotations

import os

import pytest

from tests.integration.vm import Vm

pytestmark = pytest.mark.every_zfs


def test_openzfs_send_receive_preserves_guids(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    vm.sh(f"""
        zfs create {src}/a
        head -c 1M /dev/urandom > /{src}/a/file
        zfs snapshot {src}/a@s1
        zfs send {src}/a@s1 | zfs receive -u {dst}
    """)
    source, copy = vm.snapshot_guids(f"{src}/a"), vm.snapshot_guids(dst)
    assert list(source) == ["@s1"]
    assert copy == source


def test_vm_runs_the_selected_openzfs(vm: Vm) -> None:
    """ZFERRY_VM_ZFS picks the VM: 2.3 (bookworm-backports) by default, 2.1 (bookworm) on request."""
    wanted = tuple(int(part) for part in os.environ.get("ZFERRY_VM_ZFS", "2.3").split("."))
    assert vm.zfs_version[:2] == wanted
    assert vm.sh("cat /sys/module/zfs/version").startswith(".".join(map(str, vm.zfs_version)))


@pytest.mark.needs_zfs(9, 0, reason="no OpenZFS is this new: proves needs_zfs skips")
def test_needs_zfs_skips_on_older_openzfs() -> None:
    raise AssertionError("needs_zfs(9, 0) did not skip")


def test_checkout_is_synced_into_the_vm(vm: Vm) -> None:
    assert "zferry" in vm.zferry("--version").output
