"""The test bed itself: a real OpenZFS send | receive in the VM (this tests the bed, not zferry)."""

from __future__ import annotations

from tests.integration.vm import Vm


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
    assert vm.sh("zfs version | head -1").startswith("zfs-2.")


def test_checkout_is_synced_into_the_vm(vm: Vm) -> None:
    assert "zferry" in vm.zferry("--version").output
