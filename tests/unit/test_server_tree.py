"""zferry-server's recursive send and receive (pure parts: the tree's order, file names, manifest
checks) and the live bytes of replicate tasks (progress events summed, the remote meter)."""

from __future__ import annotations

import json

import pytest

from zferry.exec.host import LOCAL, Host
from zferry.exec.probe import Capabilities
from zferry.exec.runner import Stage, _progress_callbacks, group_by_host
from zferry.model import Dataset, Version
from zferry.observe.progress import Progress, TransferProgress
from zferry.server import tree
from zferry.server.errors import ApiError
from zferry.server.replication import LiveBytes, build_job, with_live_progress
from zferry.server.requests import SendRequest, send_request
from zferry.server.stream_header import StreamHeader
from zferry.server.tree_service import replication_argv, tree_argv
from zferry.transfer import StreamOptions, transfer_stages

ROOT = "tank/data"


def listing(*rows: tuple[str, str, bool, tuple[str, ...]]) -> tuple[dict[str, Dataset], dict[str, list[Version]]]:
    """(relative name, kind, encrypted, snapshot names) rows as a tree's datasets and versions."""
    datasets, versions = {}, {}
    for index, (name, kind, encrypted, snaps) in enumerate(rows):
        full = tree.child_name(ROOT, name)
        datasets[full] = Dataset(full, kind, encryption="aes-256-gcm" if encrypted else None)
        versions[full] = [Version(full, s, 1000 * index + n, n + 1, 0) for n, s in enumerate(snaps)]
    return datasets, versions


def test_a_tree_is_planned_parents_first_each_zvol_on_its_own_encrypted_raw() -> None:
    datasets, versions = listing(
        ("b", "filesystem", False, ("s1", "s2")),
        ("", "filesystem", False, ("s1", "s2")),
        ("a/vol", "volume", False, ("s2",)),  # created after s1: sent in full
        ("a", "filesystem", True, ("s1", "s2")),
        ("a b", "filesystem", False, ("s1",)),  # no @s2, no child: not sent
    )
    datasets["tank/database"] = Dataset("tank/database")  # beside the tree, not in it
    planned = tree.plan_tree(ROOT, "s2", datasets, versions, "@s1", raw=False)
    members = [p.member for p in planned]
    assert [m.name for m in members] == ["", "a", "a/vol", "b"]
    assert [m.file for m in members] == ["0000-data.zfs", "0001-data+a.zfs", "0002-data+a+vol.zfs", "0003-data+b.zfs"]
    assert [m.raw for m in members] == [False, True, False, False]
    assert [m.from_snapshot for m in members] == ["@s1", "@s1", None, "@s1"]
    assert [m.kind for m in members] == ["filesystem", "filesystem", "volume", "filesystem"]
    request = SendRequest(compressed=True, recursive=True)
    assert tree_argv(planned[1], request) == ["zfs", "send", "-w", "-c", "-i", f"{ROOT}/a@s1", f"{ROOT}/a@s2"]
    assert tree_argv(planned[2], request) == ["zfs", "send", "-c", f"{ROOT}/a/vol@s2"]
    assert replication_argv(planned, request) == ["zfs", "send", "-R", "-w", "-c", "-i", f"{ROOT}@s1", f"{ROOT}@s2"]
    assert tree.file_name(12, "p/my data", "x y/z") == "0012-my_data+x_y+z.zfs"


def test_a_dataset_without_the_snapshot_above_one_with_it_is_refused() -> None:
    datasets, versions = listing(("", "filesystem", False, ("s1",)), ("a", "filesystem", False, ()))
    datasets[f"{ROOT}/a/b"] = Dataset(f"{ROOT}/a/b")
    versions[f"{ROOT}/a/b"] = [Version(f"{ROOT}/a/b", "s1", 7, 1, 0)]
    with pytest.raises(ApiError) as refused:
        tree.plan_tree(ROOT, "s1", datasets, versions, None, raw=False)
    assert refused.value.status == 422 and "zfs snapshot -r" in refused.value.hint


def manifest_json(**changes: object) -> dict[str, object]:
    datasets, versions = listing(("", "filesystem", False, ("s1",)), ("a", "volume", False, ("s1",)))
    planned = tree.plan_tree(ROOT, "s1", datasets, versions, None, raw=False)
    manifest = tree.Manifest(ROOT, "s1", None, tuple(p.member for p in planned))
    return {**manifest.to_json(), **changes}


def test_a_manifest_reads_back_as_written() -> None:
    written = manifest_json()
    manifest = tree.parse_manifest(json.dumps(written).encode())
    assert manifest.to_json() == written
    assert [m.name for m in manifest.members] == ["", "a"] and manifest.members[1].kind == "volume"


def entry(name: str, file: str, **changes: object) -> dict[str, object]:
    return {
        "name": name,
        "kind": "filesystem",
        "file": file,
        "raw": False,
        "from_snapshot": None,
        "bytes": 1,
        **changes,
    }


ROOT_ENTRY = entry("", "0000-data.zfs")


@pytest.mark.parametrize(
    "datasets",
    [
        [ROOT_ENTRY, entry("../etc", "0001-x.zfs")],
        [ROOT_ENTRY, entry("a/../../x", "0001-x.zfs")],
        [ROOT_ENTRY, entry("/abs", "0001-x.zfs")],
        [ROOT_ENTRY, entry("a@b", "0001-x.zfs")],
        [ROOT_ENTRY, entry("a", "../0001-x.zfs")],
        [ROOT_ENTRY, entry("a", "sub/0001-x.zfs")],
        [ROOT_ENTRY, entry("a", "manifest.json")],
        [ROOT_ENTRY, entry("a", "0001-x.zfs", kind="pipe")],
        [ROOT_ENTRY, entry("a", "0001-x.zfs", bytes=-1)],
        [ROOT_ENTRY, entry("a", "0001-x.zfs", extra=1)],
        [ROOT_ENTRY, entry("a", "0001-x.zfs", from_snapshot="s0")],
        [ROOT_ENTRY, entry("a/b", "0001-x.zfs"), entry("a", "0002-y.zfs")],  # child before parent
        [ROOT_ENTRY, entry("a", "0001-x.zfs"), entry("a", "0002-y.zfs")],  # twice
        [ROOT_ENTRY, entry("a", "0000-data.zfs")],  # one file twice
        [entry("a", "0000-data.zfs")],  # no root first
        [],
    ],
)
def test_a_manifest_naming_anything_outside_the_tree_is_refused(datasets: list[dict[str, object]]) -> None:
    with pytest.raises(ApiError) as refused:
        tree.parse_manifest(json.dumps(manifest_json(datasets=datasets)).encode())
    assert refused.value.status == 422


@pytest.mark.parametrize(
    "changes",
    [{"format": "other"}, {"version": 2}, {"source": "../x"}, {"snapshot": "a/b"}, {"from_snapshot": "x"}],
)
def test_a_manifest_of_another_kind_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ApiError):
        tree.parse_manifest(json.dumps(manifest_json(**changes)).encode())
    with pytest.raises(ApiError):
        tree.parse_manifest(b"{not json")


def test_each_file_must_hold_the_stream_the_manifest_names() -> None:
    manifest = tree.parse_manifest(json.dumps(manifest_json()).encode())
    child = manifest.members[1]
    tree.check_stream(manifest, child, StreamHeader(False, f"{ROOT}/a@s1", 5, 0, False))
    for wrong in (
        StreamHeader(False, f"{ROOT}/b@s1", 5, 0, False),
        StreamHeader(False, f"{ROOT}/a@s2", 5, 0, False),
        StreamHeader(False, f"{ROOT}/a@s1", 5, 0, True),  # a -R stream is not one dataset's
        None,
    ):
        with pytest.raises(ApiError):
            tree.check_stream(manifest, child, wrong)
    have = [Version(f"{ROOT}/a", "s1", 5, 1, 0)]
    assert tree.received(have, StreamHeader(False, f"{ROOT}/a@s1", 5, 0, False))
    assert not tree.received(have, StreamHeader(False, f"{ROOT}/a@s1", 6, 0, False))


def test_recursive_is_a_send_field() -> None:
    assert send_request({"recursive": True, "output_path": "t1"}, ROOT).recursive
    with pytest.raises(ApiError):
        send_request({"recursive": "yes"}, ROOT)


def test_replicate_progress_events_are_summed_over_the_transfers() -> None:
    live = LiveBytes()
    assert live.add(TransferProgress("b/x", 0, 100, None)) == (100, None)
    assert live.add(TransferProgress("b/x", 0, 300, 1000)) == (300, 1000)
    assert live.add(TransferProgress("b/x/c", 1, 50, 500)) == (350, 1500)
    heard: list[int] = []
    progress = Progress("b/x", None, listener=heard.append)
    progress.update(7)
    assert heard == [7] and progress.last == 7
    job = with_live_progress(build_job(["src/a", "dst/a"]))
    stream = job.replication.stream
    assert (stream.progress_interval, stream.estimate_size, stream.remote_meter) == (0.5, True, True)


A, B = Host("hosta", "root"), Host("hostb")
PV = Capabilities(True, frozenset({"pv"}))
NONE = Capabilities(True, frozenset())
SEND, RECV = ["zfs", "send", "tank/a@s1"], ["zfs", "receive", "-u", "backup/a"]


def test_without_pv_here_the_meter_runs_on_the_zfs_host_and_its_counts_are_followed() -> None:
    counts: list[int] = []
    live = StreamOptions(mbuffer=None, compression=None, progress_interval=1, remote_meter=True)
    meter = ("pv", "-f", "-n", "-b", "-i", "1")
    same = transfer_stages(SEND, RECV, A, A, PV, PV, NONE, live, on_progress=counts.append)
    assert [s.argv for s in same] == [tuple(SEND), meter, tuple(RECV)] and same[1].host == A
    groups = group_by_host(same)
    assert len(groups) == 1 and _progress_callbacks(same, groups) == [counts.append]
    to_dst = transfer_stages(SEND, RECV, LOCAL, B, NONE, PV, NONE, live, on_progress=counts.append)
    assert [(s.host, s.argv) for s in to_dst] == [(LOCAL, tuple(SEND)), (B, meter), (B, tuple(RECV))]
    for options, caps in ((StreamOptions(progress_interval=1), PV), (live, NONE)):  # not asked, or no pv there
        plain = transfer_stages(SEND, RECV, A, A, caps, caps, NONE, options, on_progress=counts.append)
        assert [s.argv for s in plain] == [tuple(SEND), tuple(RECV)]
    unmetered = [Stage(A, tuple(SEND)), Stage(A, tuple(RECV))]
    assert _progress_callbacks(unmetered, group_by_host(unmetered)) == [None]
