"""zferry-server's pure parts: the task store (busy pools, expiry by an injected clock, pairs kept),
path confinement, request checks, the stream header, the token, the metrics, argv building."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from zferry.model import Endpoint, Version
from zferry.server import auth, paths, requests
from zferry.server.errors import ApiError
from zferry.server.metrics import render
from zferry.server.replication import build_job, job_arguments, selected_snapshots
from zferry.server.settings import ServerSettings
from zferry.server.stream_header import DMU_BACKUP_MAGIC, FEATURE_RAW, parse_header
from zferry.server.tasks import CANCELLED, FAILED, RUNNING, SUCCEEDED, Busy, PairRecord, TaskStore
from zferry.server.transfers import refuse_forced_encrypted, send_argv
from zferry.server.zfshost import parse_pools


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_task_per_pool_and_a_replicate_holds_both() -> None:
    store = TaskStore(Clock())
    replicate = store.create("replicate", ("src", "nas2:dst"), {"target": "nas2:dst/a"})
    for pool in ("src", "nas2:dst"):
        with pytest.raises(Busy) as busy:
            store.create("send", (pool,), {})
        assert busy.value.task is replicate and replicate.id in str(busy.value)
    assert store.create("send", ("other",), {}).state == "queued"
    store.start(replicate)
    store.finish(replicate, SUCCEEDED, {"snapshots_sent": 1})
    assert store.busy_task("src") is None and store.create("send", ("src",), {}).pools == ("src",)


def test_finished_tasks_expire_an_hour_after_their_end_and_pairs_stay() -> None:
    clock = Clock()
    store = TaskStore(clock)
    task = store.create("replicate", ("a", "b"), {}, pair=("a/x", "b/x"))
    store.start(task)
    clock.now += 7200  # running tasks never expire
    assert store.get(task.id) is task and task.state == RUNNING
    store.progress(task, 500, 1000)
    assert task.to_json(clock.now)["rate_bytes_per_s"] == round(500 / 7200, 1)
    store.finish(task, FAILED, error="boom")
    store.record_pair(PairRecord("a/x", "b/x", FAILED, clock.now, "s2", "s1", clock.now - 60))
    clock.now += 3599
    assert [t.id for t in store.recent()] == [task.id]
    clock.now += 2
    assert store.get(task.id) is None and store.recent() == []
    (pair,) = store.pairs()
    assert pair.to_json(clock.now)["lag_seconds"] == 3661 and pair.last_result == FAILED


def test_a_cancel_makes_the_end_cancelled_and_an_ended_task_stays_ended() -> None:
    store = TaskStore(Clock())
    task = store.create("send", ("p",), {})
    task.cancel.set()
    store.finish(task, FAILED, error="killed")
    assert task.state == CANCELLED and task.started == task.ended
    store.finish(task, SUCCEEDED)
    assert task.state == CANCELLED


def test_paths_stay_inside_their_folder(tmp_path: Path) -> None:
    base = tmp_path / "export"
    (base / "daily").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (base / "escape").symlink_to(outside)
    assert paths.confine(str(base), "daily/a.zfs", "--export-dir") == base / "daily" / "a.zfs"
    assert paths.confine(str(base), "./daily//b.zfs", "--export-dir") == base / "daily" / "b.zfs"
    for bad, status in [
        ("../a", 400),
        ("daily/../../a", 400),
        ("/etc/passwd", 400),
        ("escape/a.zfs", 400),
        ("", 400),
        ("a\0b", 400),
        ("missing/a.zfs", 404),
    ]:
        with pytest.raises(ApiError) as error:
            paths.confine(str(base), bad, "--export-dir")
        assert error.value.status == status, bad
    with pytest.raises(ApiError) as error:
        paths.confine(None, "a.zfs", "--import-dir")
    assert error.value.status == 422 and "--import-dir" in error.value.hint


def test_files_are_created_new_and_read_without_following_symlinks(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"x")
    with pytest.raises(ApiError) as error:
        paths.open_new(tmp_path / "old")
    assert error.value.status == 409
    (tmp_path / "link").symlink_to(tmp_path / "old")
    with pytest.raises(ApiError):
        paths.open_new(tmp_path / "link")
    with pytest.raises(ApiError):
        paths.open_existing(tmp_path / "link")
    with pytest.raises(ApiError) as error:
        paths.open_existing(tmp_path)
    assert error.value.status == 400
    os.close(paths.open_existing(tmp_path / "old"))


def test_requests_are_checked_field_by_field() -> None:
    assert requests.send_request({"from_snapshot": "s1", "raw": True}, "p/d").from_snapshot == "@s1"
    assert requests.send_request({"from_snapshot": "p/d#b1"}, "p/d").from_snapshot == "#b1"
    replicate = requests.replicate_request({"target": "root@nas2:backup/d", "force": True}, "p/d")
    assert replicate.target == Endpoint("backup/d", "nas2", "root") and replicate.force
    bad = [
        lambda: requests.send_request({"raw": "yes"}, "p/d"),
        lambda: requests.send_request({"forse": True}, "p/d"),
        lambda: requests.send_request({"from_snapshot": "other/d@s1"}, "p/d"),
        lambda: requests.send_request({"from_snapshot": "s1;rm"}, "p/d"),
        lambda: requests.receive_request({"input_path": 3}),
        lambda: requests.replicate_request({}, "p/d"),
        lambda: requests.replicate_request({"target": "-oProxyCommand=x:p/d"}, "p/d"),
        lambda: requests.dataset("p/../d"),
        lambda: requests.dataset("p/d;reboot"),
        lambda: requests.snapshot("-s"),
        lambda: requests.parse_json(b"{not json"),
        lambda: requests.parse_json(b"[1]"),
        lambda: requests.flag("maybe", "force"),
    ]
    for call in bad:
        with pytest.raises(ApiError) as error:
            call()
        assert error.value.status == 400 and error.value.hint
    with pytest.raises(ApiError) as error:
        requests.parse_json(b" " * (requests.MAX_JSON_BYTES + 1))
    assert error.value.status == 413
    assert requests.parse_json(b"") == {} and requests.dataset("/p/d/") == "p/d"


def _begin(raw: bool, order: str = "<") -> bytes:
    versioninfo = 1 | ((FEATURE_RAW if raw else 4) << 2)
    header = struct.pack(order + "IIQQQIIQQ", 0, 0, DMU_BACKUP_MAGIC, versioninfo, 1, 2, 0, 77, 0)
    return header + b"pool/ds@snap".ljust(256, b"\0") + b"rest"


def test_stream_header_tells_a_raw_stream() -> None:
    for order in "<>":
        plain, raw = parse_header(_begin(False, order)), parse_header(_begin(True, order))
        assert plain is not None and raw is not None
        assert not plain.raw and raw.raw and raw.toname == "pool/ds@snap" and raw.toguid == 77
    assert parse_header(b"garbage" * 100) is None and parse_header(b"") is None
    with pytest.raises(ApiError) as error:
        refuse_forced_encrypted(False, parse_header(_begin(True)))
    assert error.value.status == 422
    with pytest.raises(ApiError):
        refuse_forced_encrypted(True, None)
    refuse_forced_encrypted(False, parse_header(_begin(False)))


def test_token_from_header_or_cookie_compared_whole(tmp_path: Path) -> None:
    assert auth.presented_token([(b"authorization", b"Bearer abc")]) == "abc"
    assert auth.presented_token([(b"cookie", b"a=b; zferry_token=xyz")]) == "xyz"
    assert auth.presented_token([(b"cookie", b"other=1")]) is None
    assert auth.token_matches("secret", "secret") and not auth.token_matches("secret", "secreT")
    assert not auth.token_matches("secret", None) and not auth.token_matches("secret", "secret2")
    token = tmp_path / "token"
    token.write_text("0123456789abcdef-long\n")
    token.chmod(0o644)
    with pytest.raises(Exception, match="chmod 600"):
        auth.read_token(str(token))
    token.chmod(0o600)
    assert auth.read_token(str(token)) == "0123456789abcdef-long"
    token.write_text("short\n")
    with pytest.raises(Exception, match="at least 16"):
        auth.read_token(str(token))


def test_send_argv_is_raw_for_encrypted_datasets() -> None:
    s1, s2 = Version("p/d", "s1", 1, 10, 0), Version("p/d", "s2", 2, 20, 0)
    plain = requests.SendRequest()
    assert send_argv(s2, None, plain, False) == ["zfs", "send", "p/d@s2"]
    assert send_argv(s2, None, plain, True) == ["zfs", "send", "-w", "p/d@s2"]
    wanted = requests.SendRequest(compressed=True, large_blocks=True)
    assert send_argv(s2, s1, wanted, False) == ["zfs", "send", "-c", "-L", "-i", "p/d@s1", "p/d@s2"]


def test_replicate_becomes_a_checked_zferry_job(tmp_path: Path) -> None:
    versions = [Version("p/d", n, i, i * 10, 0) for i, n in enumerate(["a", "b.1", "c", "d"], 1)]
    assert selected_snapshots(versions, versions[2], None) == ["a", "b.1", "c"]
    assert selected_snapshots(versions, versions[2], versions[1]) == ["b.1", "c"]
    settings = ServerSettings(token="x" * 16, zfs_host="nas1", audit_log=str(tmp_path / "audit.jsonl"))
    request = requests.replicate_request({"target": "backup/d", "force": True, "raw": True, "recursive": True}, "p/d")
    argv = job_arguments(settings, settings.endpoint("p/d"), settings.endpoint("backup/d"), request, ["a", "b.1"])
    assert argv[:4] == ["nas1:p/d", "nas1:backup/d", "--include-snapshot-regex", r"(?:a|b\.1)"]
    job = build_job(argv)
    assert job.replication.policy.rollback_to_latest_common and job.replication.recursive
    assert job.replication.send_options == ("-w",) and job.execution.audit_log == str(tmp_path / "audit.jsonl")
    assert (
        settings.pool_key(Endpoint("backup/d", "nas2")) == "nas2:backup" and settings.pool_key(Endpoint("p/d")) == "p"
    )


def test_pools_and_metrics_text() -> None:
    (pool,) = parse_pools("tank\tONLINE\t1000\t400\t600\n")
    assert pool == {"name": "tank", "health": "ONLINE", "size": 1000, "allocated": 400, "free": 600}
    clock = Clock()
    store = TaskStore(clock)
    task = store.create("send", ("tank",), {})
    store.progress(task, 1234)
    text = render(store.recent(), [PairRecord('a"x', "b", SUCCEEDED, 1.0, None, "s", 940.0)], clock.now)
    assert 'zferry_server_tasks{state="queued"} 1' in text
    assert f'zferry_server_task_bytes_done{{task="{task.id}",kind="send"}} 1234' in text
    assert 'zferry_server_pair_lag_seconds{source="a\\"x",target="b"} 60' in text
