"""Send flags on real OpenZFS: a new chain gets the default -L -c -e (recorded on the destination), an
existing chain keeps what it was sent with, and progress counts the stream without pv."""

from __future__ import annotations

import re

import pytest

from tests.integration.vm import Vm

pytestmark = pytest.mark.every_zfs


def sends(output: str) -> list[str]:
    """The `zfs send` commands a -v -v run logged (every command, copy-pasteable)."""
    return [s.strip() for s in re.findall(r"zfs send [^|\n]*", output)]


def test_new_chains_get_the_default_flags_and_existing_chains_keep_theirs(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    vm.sh(f"""
        zfs create -o compression=lz4 -o recordsize=1M {src}/new
        zfs create -o compression=lz4 {src}/old
        for d in new old; do {{ yes 'zferry keeps records compressed' || true; }} | head -c 4M > /{src}/$d/f; done
        zfs snapshot -r {src}@s1
        zfs create -o compression=off {dst}
        zfs send {src}/old@s1 | zfs receive -u {dst}/old   # a chain from before zferry recorded flags
        zfs snapshot -r {src}@s2
    """)
    out = vm.zferry("-v", "-v", f"{src}/new", f"{dst}/new", f"{src}/old", f"{dst}/old").output
    assert sends(out) == [
        f"zfs send -L -c -e {src}/new@s1",
        f"zfs send -L -c -e -i {src}/new@s1 {src}/new@s2",
        f"zfs send -i {src}/old@s1 {src}/old@s2",
    ], out
    flags = vm.sh(f"zfs get -H -o value,source zferry:send-flags {dst}/new {dst}/old").split("\n")
    assert flags[:2] == ["Lce\tlocal", "-\t-"]
    # -c: the blocks stay lz4-compressed although the destination has compression=off
    ratios = vm.sh(f"zfs get -H -p -o value compressratio {dst}/new {dst}/old").split()
    assert float(ratios[0]) > 2 and float(ratios[1]) == 1, ratios
    # local progress came from the sender's write counter: bytes counted, no pv in the pipeline
    assert "| pv " not in out and "pv -" not in out, out

    vm.sh(f"zfs snapshot -r {src}@s3")
    out = vm.zferry("-v", "-v", "--zfs-send-default-flags=none", f"{src}/new", f"{dst}/new", f"{src}/old", f"{dst}/old")
    assert sends(out.output) == [
        f"zfs send -L -c -e -i {src}/new@s2 {src}/new@s3",  # the chain's recorded flags, not the new default
        f"zfs send -i {src}/old@s2 {src}/old@s3",
    ], out.output
    for name in ("new", "old"):
        assert vm.snapshot_guids(f"{dst}/{name}") == vm.snapshot_guids(f"{src}/{name}")


def test_a_resumed_full_send_records_the_flags_its_token_carries(vm: Vm, roots: tuple[str, str]) -> None:
    """The record is set by the receive that completes the chain's full stream, also when it resumed."""
    src, dst = roots
    vm.sh(f"""
        zfs set compression=lz4 recordsize=1M {src}
        {{ yes 'a partial stream, then a resumed one' || true; }} | head -c 8M > /{src}/f
        head -c 4M /dev/urandom >> /{src}/f
        zfs snapshot {src}@s1
        zfs send -L -c -e {src}@s1 | head -c 2000000 | zfs receive -s -u {dst} || true
    """)
    assert vm.sh(f"zfs get -H -o value receive_resume_token {dst}").strip() not in ("", "-")
    out = vm.zferry("-v", "-v", "--zfs-send-default-flags=none", src, dst).output
    assert "zfs send -t" in out, out
    assert vm.sh(f"zfs get -H -o value,source zferry:send-flags {dst}").split() == ["Lce", "local"]
    vm.sh(f"zfs snapshot {src}@s2")
    out = vm.zferry("-v", "-v", "--zfs-send-default-flags=none", src, dst).output
    assert sends(out) == [f"zfs send -L -c -e -i {src}@s1 {src}@s2"], out
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
