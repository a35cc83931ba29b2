"""The audit trail on real OpenZFS: each destructive path writes a "started" record before its
command and the outcome after it, and the command recorded is the one `zpool history` shows ran;
a run whose audit log cannot be written destroys nothing. zferry runs inside the VM."""

from __future__ import annotations

import json
import shlex
from datetime import datetime

from tests.integration.test_safety import make
from tests.integration.vm import Vm
from tests.integration.zferry_holds import release_zferry_holds


def records(vm: Vm, path: str) -> list[dict[str, object]]:
    """The audit file's records; every line must be one JSON object (what jq needs)."""
    lines = vm.sh(f"cat {shlex.quote(path)}").splitlines()
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(r, dict) for r in parsed)
    return parsed


def actions(vm: Vm, path: str, action: str) -> list[tuple[dict[str, object], dict[str, object]]]:
    """The (started, outcome) record pairs of `action`, linked by id, in file order."""
    found = records(vm, path)
    started = [r for r in found if r["action"] == action and r["result"] == "started"]
    pairs = []
    for before in started:
        after = [r for r in found if r["id"] == before["id"] and r is not before]
        assert len(after) == 1, f"no single outcome for {before}"
        assert found.index(after[0]) > found.index(before)
        pairs.append((before, after[0]))
    return pairs


def check_fields(vm: Vm, before: dict[str, object], after: dict[str, object], reason: str) -> None:
    """Who, when and why (`reason` starts it), the same in both records; the outcome ok."""
    assert before["host"] == vm.sh("hostname").strip() and before["user"] == "root"
    assert isinstance(before["pid"], int) and str(before["job"]).startswith("job-")
    assert datetime.fromisoformat(str(before["time"]).replace("Z", "+00:00")).tzinfo is not None
    assert str(before["reason"]).startswith(reason) and before["target_host"] == "local"
    same = ("host", "user", "pid", "job", "action", "target", "reason", "argv")
    assert {k: after[k] for k in same} == {k: before[k] for k in same}
    assert after["result"] == "ok"


def ran(vm: Vm, pool: str, argv: object) -> bool:
    """Did `pool`'s history record exactly this command?"""
    assert isinstance(argv, list)
    return " " + " ".join(argv) in vm.sh(f"zpool history {pool}")


def test_pruning_destination_snapshots_is_recorded(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    log = f"/tmp/{dst.replace('/', '-')}.jsonl"
    make(vm, src, [], ["s1", "s2", "s3"])
    vm.zferry(src, dst)
    vm.sh(f"zfs destroy {src}@s1,s2")
    prune = ["--skip-replication", "--delete-dst-snapshots", "--delete-dst-snapshots-no-crosscheck"]
    vm.zferry(*prune, "--include-snapshot-regex", "s[12]", src, dst, "--audit-log", log)
    assert list(vm.snapshot_guids(dst)) == ["@s3"]
    ((before, after),) = actions(vm, log, "destroy")
    check_fields(vm, before, after, "--delete-dst-snapshots")
    assert before["argv"] == ["zfs", "destroy", f"{dst}@s1,s2"] and before["target"] == [f"{dst}@s1", f"{dst}@s2"]
    assert ran(vm, dst.split("/")[0], before["argv"])
    shown = vm.zferry("audit", "tail", "-n", "1", "--audit-log", log).stdout
    assert f"destroy  {dst}@s1 {dst}@s2  ok  [--delete-dst-snapshots]" in shown


def test_rollbacks_are_recorded(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    log = f"/tmp/{dst.replace('/', '-')}.jsonl"
    make(vm, src, [], ["s1"])
    vm.zferry(src, dst)
    vm.sh(f"zfs mount {dst}; echo changed > /{dst}/edit; zfs snapshot {src}@s2")
    vm.zferry("--force-rollback-to-latest-snapshot", src, dst, "--audit-log", log)
    ((before, after),) = actions(vm, log, "rollback")
    check_fields(vm, before, after, "--force-rollback-to-latest-snapshot")
    assert before["argv"] == ["zfs", "rollback", f"{dst}@s1"] and before["target"] == [f"{dst}@s1"]
    assert ran(vm, dst.split("/")[0], before["argv"])
    # a snapshot made on the destination goes with the rollback to the latest common one
    vm.sh(f"zfs snapshot {dst}@mine; zfs snapshot {src}@s3")
    vm.zferry("--force-rollback-to-latest-common-snapshot", src, dst, "--audit-log", log)
    (_, (before, after)) = actions(vm, log, "rollback")
    check_fields(vm, before, after, "--force-rollback-to-latest-common-snapshot")
    assert before["argv"] == ["zfs", "rollback", "-r", f"{dst}@s2"] and before["target"] == [f"{dst}@s2", f"{dst}@mine"]
    assert ran(vm, dst.split("/")[0], before["argv"]) and "@mine" not in vm.snapshot_guids(dst)


def test_force_resync_records_the_destroy_and_the_forced_receive(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    log = f"/tmp/{dst.replace('/', '-')}.jsonl"
    make(vm, src, [], ["s1"])
    vm.sh(f"zfs create {dst}; zfs snapshot {dst}@unrelated")
    vm.zferry("--force", src, dst, "--audit-log", log)
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
    ((before, after),) = actions(vm, log, "destroy")
    check_fields(vm, before, after, "--force")
    assert before["argv"] == ["zfs", "destroy", f"{dst}@unrelated"]
    ((before, after),) = actions(vm, log, "forced-receive")
    check_fields(vm, before, after, "--force")
    argv = before["argv"]
    assert isinstance(argv, list) and argv[:2] == ["zfs", "receive"] and "-F" in argv and argv[-1] == dst
    assert ran(vm, dst.split("/")[0], before["argv"])
    assert [r["action"] for r in records(vm, log)] == ["destroy", "destroy", "forced-receive", "forced-receive"]


def test_receiving_into_a_placeholder_records_the_receive_and_the_property_change(
    vm: Vm, roots: tuple[str, str]
) -> None:
    """The placeholder zferry made for a parent takes the parent's replica (receive -F into an
    empty dataset), then loses its marker (`zfs inherit`): both recorded."""
    src, dst = roots
    log = f"/tmp/{dst.replace('/', '-')}.jsonl"
    make(vm, src, ["child"], ["s1"])
    vm.zferry(f"{src}/child", f"{dst}/child")  # dst itself is created as a placeholder
    vm.zferry("-r", src, dst, "--audit-log", log)
    ((before, after),) = actions(vm, log, "forced-receive")
    check_fields(vm, before, after, "")
    assert "empty" in str(before["reason"]) and before["target"] == [dst]
    ((before, after),) = actions(vm, log, "property")
    assert before["argv"] == ["zfs", "inherit", "zferry:placeholder", dst]
    assert ran(vm, dst.split("/")[0], before["argv"])
    assert vm.sh(f"zfs get -H -o source zferry:placeholder {dst}").strip() != "local"


def test_deleting_an_orphan_dataset_records_the_hold_release_and_the_destroy(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    log = f"/tmp/{dst.replace('/', '-')}.jsonl"
    make(vm, src, ["keep", "gone"], ["s1"])
    vm.zferry("-r", src, dst)
    vm.sh(release_zferry_holds(f"{src}/gone") + f"zfs destroy -r {src}/gone")
    vm.zferry("-r", "--delete-dst-datasets", src, dst, "--audit-log", log)
    assert not vm.exists(f"{dst}/gone")
    why = "not on the source; --delete-dst-datasets"
    ((before, after),) = actions(vm, log, "destroy-tree")
    check_fields(vm, before, after, why)
    assert before["argv"] == ["zfs", "destroy", "-r", f"{dst}/gone"] and before["target"] == [f"{dst}/gone"]
    assert ran(vm, dst.split("/")[0], before["argv"])
    ((before, after),) = actions(vm, log, "release-holds")
    check_fields(vm, before, after, f"before destroying: {why}")
    argv = before["argv"]
    assert isinstance(argv, list) and argv[:2] == ["zfs", "release"] and argv[3:] == [f"{dst}/gone@s1"]
    assert [r["action"] for r in records(vm, log)] == ["release-holds"] * 2 + ["destroy-tree"] * 2


def test_unwritable_audit_log_destroys_nothing(vm: Vm, roots: tuple[str, str]) -> None:
    """The audit file is a directory: pruning and a forced resync are refused, exit 1, naming the
    file; a dataset whose transfer needs no destruction is still updated."""
    src, dst = roots
    make(vm, src, ["a"], ["s1", "s2"])
    vm.zferry("-r", src, dst)
    vm.sh(
        f"zfs destroy -r {src}@s1; zfs snapshot {src}/a@s3; zfs create {src}/c; zfs snapshot {src}/c@c1; "
        f"zfs create {dst}/c; zfs snapshot {dst}/c@unrelated"
    )
    before = vm.snapshot_guids(dst)
    unwritable = ["--audit-log", "/tmp"]
    pruning = vm.zferry(
        "-r", "--skip-replication", "--delete-dst-snapshots", "--delete-dst-snapshots-no-crosscheck",
        "--include-snapshot-regex", "s1", src, dst, *unwritable, check=False,
    )  # fmt: skip
    assert pruning.returncode == 1 and "cannot write the audit log '/tmp'" in pruning.output
    assert vm.snapshot_guids(dst) == before
    resync = vm.zferry("--force", f"{src}/a", f"{dst}/a", f"{src}/c", f"{dst}/c", *unwritable, check=False)
    assert resync.returncode == 1 and "cannot write the audit log '/tmp'" in resync.output
    after = vm.snapshot_guids(dst)
    assert after == {**before, "/a@s3": vm.snapshot_guids(src)["/a@s3"]}  # a updated, nothing destroyed
