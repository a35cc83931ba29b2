"""zferry-server's recursive send and receive, and live bytes of replicate tasks, over real HTTP
against a `zferry-server` process managing the VM's ZFS over ssh."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator

import pytest

from tests.integration.test_server import Bed, server_argv, start_server
from tests.integration.vm import Vm, unique_name
from tests.integration.zferry_holds import release_zferry_holds
from zferry.server.stream_header import parse_header

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def tree_bed(
    vm: Vm, pools: tuple[str, str], ssh_config: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bed]:
    name = unique_name("srvtree")
    src, dst = f"{pools[0]}/{name}", f"{pools[1]}/{name}"
    tmp = tmp_path_factory.mktemp("servertree")
    exports, imports = tmp / "exports", tmp / "imports"
    exports.mkdir()
    imports.mkdir()
    argv = server_argv(tmp, ssh_config, "--export-dir", str(exports), "--import-dir", str(imports))
    vm.sh(f"zfs create {src}; zfs create {dst}")
    server, api, _ = start_server(argv, tmp / "server.log")
    yield Bed(vm, api, src, dst, exports, imports, tmp / "no-audit-log", server, argv)
    server.terminate()
    server.wait(timeout=30)


ZVOL_DEVICE = """zvdev() {  # the VM has no udev: find a zvol's device by its name
  for i in $(seq 50); do
    for d in /dev/zd*; do [ "$(/lib/udev/zvol_id "$d" 2>/dev/null)" = "$1" ] && { echo "$d"; return; }; done
    sleep 0.2
  done; return 1; }"""


def _checksums(vm: Vm, tree: str) -> str:
    """md5 of the child filesystem's file and of the zvol's first 4 MiB (the filesystem mounted for it)."""
    return vm.sh(f"""{ZVOL_DEVICE}
        zfs mount {tree}/c 2>/dev/null || true
        md5sum < /{tree}/c/f
        head -c 4194304 "$(zvdev {tree}/vol)" | md5sum
    """)


def test_a_tree_with_a_zvol_goes_to_a_directory_and_back(tree_bed: Bed) -> None:
    vm, api, src, dst = tree_bed.vm, tree_bed.api, f"{tree_bed.src}/tree", tree_bed.dst
    vm.sh(f"""{ZVOL_DEVICE}
        zfs create {src}; zfs create {src}/c; zfs create -V 8M {src}/vol
        head -c 32 /dev/urandom > /root/{src.replace("/", "-")}.key
        zfs create -o encryption=on -o keyformat=raw -o keylocation=file:///root/{src.replace("/", "-")}.key {src}/enc
        head -c 3000000 /dev/urandom > /{src}/c/f; echo secret > /{src}/enc/f
        head -c 4194304 /dev/urandom > "$(zvdev {src}/vol)"; sync
        zfs snapshot -r {src}@s1
        zfs create {src}/new; head -c 100000 /dev/urandom >> /{src}/c/f; zfs snapshot -r {src}@s2
    """)
    expected = _checksums(vm, src)
    # a zvol in the tree: no single -R stream, one file per dataset instead
    streamed = api.call("POST", f"/v1/snapshots/{src}/s1/send", {"recursive": True})
    assert streamed.status == 422 and "output_path" in streamed.json()["hint"], streamed.body
    sent = api.wait(api.ok("POST", f"/v1/snapshots/{src}/s1/send", {"recursive": True, "output_path": "t1"})["id"])
    assert sent["state"] == "succeeded", sent
    manifest = json.loads((tree_bed.exports / "t1" / "manifest.json").read_text())
    members = manifest["datasets"]
    assert [(m["name"], m["kind"], m["raw"], m["from_snapshot"]) for m in members] == [
        ("", "filesystem", False, None),
        ("c", "filesystem", False, None),
        ("enc", "filesystem", True, None),  # encrypted: raw, though not asked
        ("vol", "volume", False, None),
    ]
    assert manifest["source"] == src and manifest["snapshot"] == "s1"
    sizes = [(tree_bed.exports / "t1" / m["file"]).stat().st_size for m in members]
    assert sizes == [m["bytes"] for m in members] and sizes[1] > 3_000_000 and sizes[3] > 4_000_000
    assert sent["bytes_done"] == sum(sizes) and sent["bytes_total"] is not None
    # the incremental: per dataset, the new child in full; its dry run estimates each dataset
    dry = api.wait(
        api.ok("POST", f"/v1/snapshots/{src}/s2/send", {"recursive": True, "from_snapshot": "s1", "dry_run": True})[
            "id"
        ]
    )
    shown = {d["name"]: d for d in dry["result"]["datasets"]}
    assert shown["new"]["from_snapshot"] is None and shown["c"]["from_snapshot"] == "@s1", dry
    assert 100_000 < shown["c"]["size"] < 1_000_000 and dry["result"]["size"] == sum(d["size"] for d in shown.values())
    body = {"recursive": True, "from_snapshot": "s1", "output_path": "t2"}
    assert api.wait(api.ok("POST", f"/v1/snapshots/{src}/s2/send", body)["id"])["state"] == "succeeded"
    for name in ("t1", "t2"):
        shutil.copytree(tree_bed.exports / name, tree_bed.imports / name)
    # a manifest that names a dataset outside the tree is refused before anything runs
    shutil.copytree(tree_bed.exports / "t1", tree_bed.imports / "evil")
    evil = json.loads((tree_bed.imports / "evil" / "manifest.json").read_text())
    evil["datasets"][1]["name"] = "../../escaped"
    (tree_bed.imports / "evil" / "manifest.json").write_text(json.dumps(evil))
    refused = api.call("POST", f"/v1/datasets/{dst}/evil/receive", {"input_path": "evil"})
    assert refused.status == 422 and "escaped" in refused.json()["error"], refused.body
    # force is refused for the encrypted member's raw stream; a dry run changes nothing
    forced = api.call("POST", f"/v1/datasets/{dst}/forced/receive", {"input_path": "t1", "force": True})
    assert forced.status == 422 and "encrypted" in forced.json()["error"], forced.body
    dry = api.wait(api.ok("POST", f"/v1/datasets/{dst}/dry/receive", {"input_path": "t1", "dry_run": True})["id"])
    assert dry["state"] == "succeeded" and dry["result"]["received"] == [f"{dst}/dry"], dry
    assert dry["result"]["not_checked"] == [f"{dst}/dry/{n}" for n in ("c", "enc", "vol")]
    assert not vm.exists(f"{dst}/dry") and not vm.exists(f"{dst}/forced")
    # a mid-tree failure (a cut stream): the root arrives, the child leaves nothing; a rerun goes on
    shutil.copytree(tree_bed.exports / "t1", tree_bed.imports / "cut")
    with open(tree_bed.imports / "cut" / members[1]["file"], "r+b") as cut:
        cut.truncate(sizes[1] // 2)
    failed = api.wait(api.ok("POST", f"/v1/datasets/{dst}/tree/receive", {"input_path": "cut"})["id"])
    assert failed["state"] == "failed" and "send the same request again" in failed["error"], failed
    assert vm.datasets(f"{dst}/tree") == [""] and not vm.exists(f"{dst}/evil") and not vm.exists(f"{dst}/escaped")
    rerun = api.wait(api.ok("POST", f"/v1/datasets/{dst}/tree/receive", {"input_path": "t1"})["id"])
    assert rerun["state"] == "succeeded", rerun
    assert rerun["result"]["skipped"] == [f"{dst}/tree"] and len(rerun["result"]["received"]) == 3
    assert rerun["bytes_done"] == rerun["bytes_total"] == sum(sizes)
    incremental = api.wait(api.ok("POST", f"/v1/datasets/{dst}/tree/receive", {"input_path": "t2"})["id"])
    assert incremental["state"] == "succeeded", incremental
    assert vm.snapshot_guids(f"{dst}/tree") == vm.snapshot_guids(src)
    assert _checksums(vm, f"{dst}/tree") == expected
    assert vm.sh(f"zfs get -H -o value encryption,keystatus {dst}/tree/enc").split() == ["aes-256-gcm", "unavailable"]


def test_a_tree_without_zvols_streams_as_one_replication_stream(tree_bed: Bed) -> None:
    vm, api, src, dst = tree_bed.vm, tree_bed.api, f"{tree_bed.src}/flat", f"{tree_bed.dst}/flat"
    vm.sh(f"zfs create {src}; zfs create {src}/x; echo a > /{src}/x/f; zfs snapshot -r {src}@r1")
    stream = api.call("POST", f"/v1/snapshots/{src}/r1/send", {"recursive": True})
    header = parse_header(stream.body[:4096])
    assert stream.status == 200 and header is not None and header.compound, stream.headers
    received = api.call(
        "POST", f"/v1/datasets/{dst}/receive", data=stream.body, content_type="application/octet-stream"
    )
    assert received.status == 202 and api.wait(received.json()["id"])["state"] == "succeeded"
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src) and "/x@r1" in vm.snapshot_guids(dst)


def test_a_replicate_task_shows_its_bytes_while_it_runs(tree_bed: Bed) -> None:
    vm, api, src, dst = tree_bed.vm, tree_bed.api, f"{tree_bed.src}/big", f"{tree_bed.dst}/big"
    # 256 MiB that compression cannot shrink (compression off, so zeros stay blocks): quick to make,
    # and a few seconds to receive even on a fast host, so several of the half-second progress reports.
    size = 256 * 2**20
    vm.sh(
        f"zfs create -o compression=off {src}; dd if=/dev/zero of=/{src}/a bs=1M count=256 status=none; "
        f"zfs snapshot {src}@b1"
    )
    try:
        task = api.ok("POST", f"/v1/snapshots/{src}/b1/replicate", {"target": dst})
        seen: list[tuple[int, object]] = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            now = api.ok("GET", f"/v1/tasks/{task['id']}", status=200)
            if now["state"] not in ("queued", "running"):
                break
            if now["bytes_done"]:
                seen.append((now["bytes_done"], now["bytes_total"]))
            time.sleep(0.2)
        assert now["state"] == "succeeded", now
        growing = sorted({done for done, _ in seen})
        assert len(growing) >= 2 and growing[0] < size, f"no bytes seen growing while it ran: {seen}"
        assert all(total is not None and total > size for _, total in seen), seen
        assert now["bytes_done"] >= size and vm.snapshot_guids(dst) == vm.snapshot_guids(src)
    finally:
        cleanup = release_zferry_holds(src) + release_zferry_holds(dst) + f"zfs destroy -r {src}; zfs destroy -r {dst}"
        vm.sh(cleanup, check=False)  # free the pools' space for the tests after


def test_a_cancelled_tree_send_leaves_no_directory(tree_bed: Bed) -> None:
    vm, api, src = tree_bed.vm, tree_bed.api, f"{tree_bed.src}/cut"
    vm.sh(f"zfs create {src}; zfs create {src}/a; head -c 67108864 /dev/urandom > /{src}/a/f; zfs snapshot -r {src}@c1")
    task = api.ok("POST", f"/v1/snapshots/{src}/c1/send", {"recursive": True, "output_path": "cancelled"})
    api.moving(task["id"])
    assert api.ok("DELETE", f"/v1/tasks/{task['id']}", status=200)["state"] == "cancelled"
    assert not (tree_bed.exports / "cancelled").exists() and tree_bed.zfs_processes() == ""
