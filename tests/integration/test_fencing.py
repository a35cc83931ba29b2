"""Fencing in the engine on real OpenZFS: plain zferry refuses to send from a fenced dataset and to
receive into one whose `zferry:dr-epoch` is higher than the sender's, whatever force options it gets;
the DR state properties never travel with a stream."""

from __future__ import annotations

import pytest

from tests.integration.test_replication import make
from tests.integration.vm import Vm

pytestmark = pytest.mark.every_zfs

ROLE, EPOCH = "zferry:dr-role", "zferry:dr-epoch"


def dr_props(vm: Vm, root: str) -> dict[str, tuple[str, str]]:
    """Every dataset's DR properties under `root` (relative names): {"/child zferry:dr-role": (value, source)}."""
    out = vm.sh(f"zfs get -r -H -o name,property,value,source {ROLE},{EPOCH},com.zferry:tag {root}")
    props = {}
    for line in out.splitlines():
        name, prop, value, source = line.split("\t")
        props[f"{name[len(root) :]} {prop}"] = (value, source)
    return props


def test_fencing_whatever_the_force_options(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    name = src.replace("/", "_")
    make(vm, src, ["child"], [])
    vm.sh(f"""
        zfs set {ROLE}=primary {EPOCH}=1 com.zferry:tag=kept {src}
        zfs set {ROLE}=standby {src}/child
        zfs snapshot -r {src}@s1
    """)
    # `-p` carries user properties, but never the DR state ones (a replica must not become "primary").
    vm.zferry("-r", "--zfs-send-program-opts=-p", src, dst)
    props = dr_props(vm, dst)
    assert props[" com.zferry:tag"] == ("kept", "received") and props["/child com.zferry:tag"][0] == "kept"
    assert {v for k, v in props.items() if "dr-" in k} == {("-", "-")}, props

    # The destination was promoted (epoch 2) and wrote d1; the old primary (epoch 1) comes back with s2.
    vm.sh(f"""
        zfs set {ROLE}=primary {EPOCH}=2 {dst}
        zfs snapshot -r {src}@s2; zfs snapshot {dst}@d1
    """)
    for options in (
        ["--force"],
        ["--force-rollback-to-latest-common-snapshot", "--cache-snapshots", "--cache-dir", f"/tmp/fence-{name}"],
        ["--skip-replication", "--delete-dst-snapshots"],
    ):
        result = vm.zferry("-r", "--zfs-send-program-opts=-p", *options, src, dst, check=False)
        assert result.returncode == 1, (options, result.output)
        assert f"{EPOCH} 2 is higher than the source's (1)" in result.output, result.output
    assert sorted(vm.snapshot_guids(dst)) == ["/child@s1", "@d1", "@s1"]

    # The same epoch on both sides may replicate: the force option now does what it says, and the
    # destination's own DR state stays (receive -x keeps local values).
    vm.sh(f"zfs set {EPOCH}=2 {src}")
    vm.zferry("-r", "--zfs-send-program-opts=-p", "--force-rollback-to-latest-common-snapshot", src, dst)
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
    props = dr_props(vm, dst)
    assert props[f" {ROLE}"] == ("primary", "local") and props[f" {EPOCH}"] == ("2", "local")
    assert props[f"/child {ROLE}"][1].startswith("inherited from") and props[f"/child {EPOCH}"][0] == "2"

    # A fenced source never sends, even to a destination without any DR state.
    vm.sh(f"zfs set {ROLE}=fenced {src}; zfs snapshot -r {src}@s3")
    result = vm.zferry("-r", "--force", src, f"{dst}x", check=False)
    assert result.returncode == 1 and "the source is fenced" in result.output, result.output
    assert "zferry-dr status" in result.output
    assert not vm.exists(f"{dst}x")


def test_fencing_over_ssh_keeps_a_partial_receive(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    """Pull from a fenced source, push into a newer destination: refused before resuming the
    interrupted transfer, which stays resumable; without the DR state the rerun resumes it."""
    vm, (src, dst) = vm_hosts, roots
    make(vm, src, [], ["s1"], mib=8)
    vm.sh(f"""
        zfs send {src}@s1 | head -c 3000000 | zfs receive -s -u {dst} || true
        zfs set {ROLE}=fenced {EPOCH}=1 {src}
    """)
    token = vm.sh(f"zfs get -H -o value receive_resume_token {dst}").strip()
    assert token != "-"
    pulled = vm.zferry("--force", f"root@hosta:{src}", dst, check=False)
    assert pulled.returncode == 1 and "the source is fenced" in pulled.output, pulled.output
    vm.sh(f"zfs inherit {ROLE} {src}; zfs set {EPOCH}=3 {dst}")
    pushed = vm.zferry("--force", src, f"hostb:{dst}", check=False)
    assert pushed.returncode == 1 and f"{EPOCH} 3 is higher than the source's (1)" in pushed.output, pushed.output
    assert vm.sh(f"zfs get -H -o value receive_resume_token {dst}").strip() == token
    vm.sh(f"zfs inherit {EPOCH} {dst}")
    resumed = vm.zferry(src, f"hostb:{dst}")
    assert "resuming an interrupted transfer" in resumed.output
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
