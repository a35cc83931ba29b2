"""zferry-server over real HTTP: a `zferry-server` process on this machine managing the VM's ZFS over ssh.

One server and one set of datasets serve the module's tests (they run in file order): refusals
first (nothing may run), then every endpoint's happy path and busy pools, then cancels and 200
concurrent status requests during a transfer, then SIGTERM of a second server.
"""

from __future__ import annotations

import http.client
import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from tests.integration.vm import VM_SCRIPT, Vm, unique_name
from zferry.server.stream_header import parse_header

pytest.importorskip("fastapi")


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class Api:
    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: Optional[str] = "",
        data: Optional[bytes] = None,
        content_type: str = "application/json",
        timeout: float = 120,
    ) -> Answer:
        raw = data if data is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token or self.token}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=raw, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return Answer(answer.status, answer.read(), dict(answer.headers))
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read(), dict(error.headers))

    def ok(self, method: str, path: str, body: Any = None, status: int = 202) -> Any:
        answer = self.call(method, path, body)
        assert answer.status == status, answer.body
        return answer.json()

    def wait(self, task_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task: dict[str, Any] = self.ok("GET", f"/v1/tasks/{task_id}", status=200)
            if task["state"] in ("succeeded", "failed", "cancelled"):
                return task
            time.sleep(0.3)
        raise AssertionError(f"task {task_id} did not end in {timeout} s")

    def moving(self, task_id: str, timeout: float = 60) -> None:
        """Wait until the task has moved some bytes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.ok("GET", f"/v1/tasks/{task_id}", status=200)
            assert task["state"] in ("queued", "running"), task
            if task["bytes_done"] > 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"task {task_id} moved no byte in {timeout} s")


@dataclass
class Bed:
    vm: Vm
    api: Api
    src: str
    dst: str
    exports: Path
    imports: Path
    audit: Path
    server: subprocess.Popen[bytes]
    argv: list[str]

    def zfs_processes(self) -> str:
        """zfs send/receive processes in the VM that touch this module's datasets, after up to 30 s.

        A killed ssh ends the remote zfs by closing its pipes; a receive saves its partial state first."""
        name = self.src.split("/")[1]
        left = f"pgrep -af 'zfs (send|recv|receive)' | grep -F {name}"
        return self.vm.sh(f"for i in $(seq 60); do {left} >/dev/null || break; sleep 0.5; done; {left} || true")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_argv(tmp: Path, ssh_config: str, *extra: str) -> list[str]:
    """A zferry-server command line managing the VM's ZFS (as zfvm-a), with a new token file in `tmp`."""
    token = tmp / "token"
    token.write_text(secrets.token_urlsafe(32) + "\n")
    token.chmod(0o600)
    server = Path(sys.executable).with_name("zferry-server")
    return [str(server), "--token-file", str(token), "--zfs-host", "zfvm-a", "--ssh-config-file", ssh_config, *extra]


def start_server(argv: list[str], log: Path) -> tuple[subprocess.Popen[bytes], Api, int]:
    port = _free_port()
    server = subprocess.Popen([*argv, "--port", str(port)], stdout=log.open("ab"), stderr=subprocess.STDOUT)
    token = Path(argv[argv.index("--token-file") + 1]).read_text().strip()
    api = Api(port, token)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            if api.call("GET", "/v1/healthz", timeout=5).status == 200:
                return server, api, port
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"zferry-server did not come up:\n{log.read_text()}")


@pytest.fixture(scope="module")
def bed(vm: Vm, pools: tuple[str, str], ssh_config: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    name = unique_name("srv")
    src, dst = f"{pools[0]}/{name}", f"{pools[1]}/{name}"
    vm.sh(f"""
        zfs create {src}; zfs create {dst}
        zfs create {src}/small; head -c 1000000 /dev/urandom > /{src}/small/a; zfs snapshot {src}/small@s1
        head -c 400000 /dev/urandom > /{src}/small/b; zfs snapshot {src}/small@s2
        zfs create {src}/big; head -c 24000000 /dev/urandom > /{src}/big/a; zfs snapshot {src}/big@b1
        head -c 32 /dev/urandom > /root/{name}.key
        for ds in {src}/enc {dst}/encdst; do
          zfs create -o encryption=on -o keyformat=raw -o keylocation=file:///root/{name}.key $ds
        done
        head -c 500000 /dev/urandom > /{src}/enc/a; zfs snapshot {src}/enc@e1
    """)
    tmp = tmp_path_factory.mktemp("server")
    exports, imports = tmp / "exports", tmp / "imports"
    exports.mkdir()
    imports.mkdir()
    token = tmp / "token"
    token.write_text(secrets.token_urlsafe(32) + "\n")
    token.chmod(0o600)
    audit = tmp / "audit.jsonl"
    argv = [
        str(Path(sys.executable).with_name("zferry-server")), "--token-file", str(token), "--zfs-host", "zfvm-a",
        "--ssh-config-file", ssh_config, "--export-dir", str(exports), "--import-dir", str(imports),
        "--audit-log", str(audit),
    ]  # fmt: skip
    server, api, _ = start_server(argv, tmp / "server.log")
    yield Bed(vm, api, src, dst, exports, imports, audit, server, argv)
    server.terminate()
    server.wait(timeout=30)


def test_bad_requests_are_refused_and_run_nothing(bed: Bed) -> None:
    api, src = bed.api, bed.src
    (bed.exports / "out").symlink_to("/tmp")
    (bed.imports / "etc").symlink_to("/etc")
    (bed.imports / "junk.zfs").write_bytes(b"not a stream")
    before = api.ok("GET", "/v1/tasks", status=200)["tasks"]
    refused = [
        (api.call("GET", "/v1/tasks", token=None), 401),
        (api.call("GET", "/v1/status", token="wrong-token-of-some-length"), 401),
        (api.call("POST", f"/v1/snapshots/{src}/small/s1/send", token=None, data=b"{}"), 401),
        (api.call("POST", f"/v1/snapshots/{src}/small/s1/send", data=b'{"raw": tru'), 400),
        (api.call("POST", f"/v1/snapshots/{src}/small/s1/send", data=b"[]"), 400),
        (api.call("POST", f"/v1/snapshots/{src}/small;reboot/s1/send", {}), 400),
        (api.call("POST", f"/v1/snapshots/{src}/small/s1$(id)/send", {}), 400),
        (api.call("POST", f"/v1/snapshots/{src}/small/s1/send", {"output_path": "../x.zfs"}), 400),
        (api.call("POST", f"/v1/snapshots/{src}/small/s1/send", {"output_path": "out/x.zfs"}), 400),
        (api.call("POST", f"/v1/snapshots/{src}/small/s1/send", {"from_snapshot": "s0; rm -rf /"}), 400),
        (api.call("POST", f"/v1/snapshots/{src}/small/s1/send", {"output_path": "x" * 70000}), 413),
        (api.call("POST", f"/v1/datasets/{bed.dst}/small/receive", {"input_path": "etc/passwd"}), 400),
        (api.call("POST", f"/v1/datasets/{bed.dst}/../x/receive", {"input_path": "junk.zfs"}), 400),
        (api.call("POST", f"/v1/datasets/{bed.dst}/encdst/receive", {"input_path": "junk.zfs", "force": True}), 422),
        (api.call("POST", f"/v1/snapshots/{src}/small/s1/replicate", {"target": "-oProxyCommand=x:a/b"}), 400),
        (api.call("POST", f"/v1/snapshots/{src}/small/s1/replicate", {"target": "dst/x", "forse": True}), 400),
        (api.call("POST", f"/v1/snapshots/{src}/small/nosuch/send", {}), 404),
        (api.call("GET", f"/v1/snapshots/{src}%2Fnosuch/s1/send-size"), 404),
        (api.call("GET", f"/v1/snapshots/{src}/small/nosuch/send-size"), 404),
        (api.call("GET", "/v1/tasks/0123456789abcdef"), 404),
    ]
    for answer, status in refused:
        assert answer.status == status, answer.body
        assert set(answer.json()) >= {"error", "hint"}, answer.body
    assert api.ok("GET", "/v1/tasks", status=200)["tasks"] == before
    assert not list(bed.exports.glob("*.zfs")) and not bed.audit.exists()
    assert not bed.vm.exists(f"{bed.dst}/small") and bed.zfs_processes() == ""


def test_send_receive_replicate_and_busy_pools(bed: Bed) -> None:
    api, src, dst, vm = bed.api, bed.src, bed.dst, bed.vm
    full = api.ok("GET", f"/v1/snapshots/{src}/small/s2/send-size", status=200)["size"]
    incremental = api.ok("GET", f"/v1/snapshots/{src}%2Fsmall/s2/send-size?from_snapshot=s1", status=200)["size"]
    assert full > 1_300_000 and 350_000 < incremental < full
    # a send to a file, a streamed incremental send (the dataset %2F-encoded), a dry run
    task = api.ok("POST", f"/v1/snapshots/{src}/small/s1/send", {"output_path": "small-s1.zfs"})
    done = api.wait(task["id"])
    assert done["state"] == "succeeded", done
    assert done["bytes_done"] == (bed.exports / "small-s1.zfs").stat().st_size > 1_000_000
    stream = api.call("POST", f"/v1/snapshots/{src.replace('/', '%2F')}%2Fsmall/s2/send", {"from_snapshot": "s1"})
    assert stream.status == 200 and api.wait(stream.headers["x-zferry-task-id"])["bytes_done"] == len(stream.body)
    backwards = api.call("POST", f"/v1/snapshots/{src}/small/s1/send", {"from_snapshot": "s2"})
    assert backwards.status == 500 and "send failed" in backwards.json()["error"], backwards.body
    dry = api.wait(api.ok("POST", f"/v1/snapshots/{src}/small/s2/send", {"dry_run": True})["id"])
    assert dry["result"] == {"dry_run": True, "size": full}
    # receive the file, then the streamed increment as the request body: the same snapshots arrive
    shutil.copy(bed.exports / "small-s1.zfs", bed.imports / "small-s1.zfs")
    received = api.wait(api.ok("POST", f"/v1/datasets/{dst}/small/receive", {"input_path": "small-s1.zfs"})["id"])
    assert received["state"] == "succeeded", received
    body = api.call(
        "POST", f"/v1/datasets/{dst}/small/receive", data=stream.body, content_type="application/octet-stream"
    )
    assert body.status == 202 and api.wait(body.json()["id"])["state"] == "succeeded"
    assert vm.snapshot_guids(f"{dst}/small") == vm.snapshot_guids(f"{src}/small")
    forced = api.wait(
        api.ok("POST", f"/v1/datasets/{dst}/forced/receive", {"input_path": "small-s1.zfs", "force": True})["id"]
    )
    assert forced["state"] == "succeeded" and forced["result"]["forced"], forced
    (record,) = [json.loads(line) for line in bed.audit.read_text().splitlines() if f"{dst}/forced" in line][-1:]
    assert "receive" in json.dumps(record) and "-F" in json.dumps(record), record
    # an encrypted dataset is sent raw even when not asked; its stream is not received with force
    api.wait(api.ok("POST", f"/v1/snapshots/{src}/enc/e1/send", {"output_path": "enc.zfs"})["id"])
    header = parse_header((bed.exports / "enc.zfs").read_bytes()[:4096])
    assert header is not None and header.raw and header.toname == f"{src}/enc@e1"
    shutil.copy(bed.exports / "enc.zfs", bed.imports / "enc.zfs")
    forced = api.call("POST", f"/v1/datasets/{dst}/enc/receive", {"input_path": "enc.zfs", "force": True})
    assert forced.status == 422 and "encrypted" in forced.json()["error"]
    # replicate up to s1, then on to s2 from s1 (zferry's engine, an incremental the second time)
    first = api.wait(api.ok("POST", f"/v1/snapshots/{src}/small/s1/replicate", {"target": f"{dst}/rep"})["id"])
    assert first["state"] == "succeeded" and list(vm.snapshot_guids(f"{dst}/rep")) == ["@s1"], first
    body = {"target": f"zfvm-a:{dst}/rep", "from_snapshot": "s1", "compressed": True}
    second = api.wait(api.ok("POST", f"/v1/snapshots/{src}/small/s2/replicate", body)["id"])
    assert second["result"]["snapshots_sent"] == 1, second
    assert vm.snapshot_guids(f"{dst}/rep") == vm.snapshot_guids(f"{src}/small")
    encrypted = api.wait(api.ok("POST", f"/v1/snapshots/{src}/enc/e1/replicate", {"target": f"{dst}/encrep"})["id"])
    assert encrypted["state"] == "succeeded", encrypted
    assert vm.sh(f"zfs get -H -o value encryption,keystatus {dst}/encrep").split() == ["aes-256-gcm", "unavailable"]
    (pair,) = [p for p in api.ok("GET", "/v1/status", status=200)["pairs"] if p["target"].endswith(f"{dst}/rep")]
    assert pair["target_latest"] == "s2" and pair["last_result"] == "succeeded" and pair["lag_seconds"] >= 0
    # a running replicate keeps both pools busy: 409 naming it, for a send (source) and a receive (target)
    busy = api.ok("POST", f"/v1/snapshots/{src}/big/b1/replicate", {"target": f"{dst}/bigrep"})
    for answer in (
        api.call("POST", f"/v1/snapshots/{src}/small/s2/send", {"dry_run": True}),
        api.call("POST", f"/v1/datasets/{dst}/other/receive", {"input_path": "small-s1.zfs"}),
    ):
        assert answer.status == 409 and answer.json()["task_id"] == busy["id"], answer.body
    pools = {p["name"]: p for p in api.ok("GET", "/v1/pools", status=200)["pools"]}
    assert pools["src"]["busy_task"] == pools["dst"]["busy_task"] == busy["id"] and pools["src"]["health"] == "ONLINE"
    assert 'zferry_server_tasks{state="running"} 1' in api.call("GET", "/v1/metrics").body.decode()
    cancelled = api.ok("DELETE", f"/v1/tasks/{busy['id']}", status=200)
    assert cancelled["state"] == "cancelled" and bed.zfs_processes() == ""
    assert api.ok("GET", "/v1/healthz", status=200)["tasks_running"] == 0
    state = vm.sh(f"zfs get -H -o value receive_resume_token {dst}/bigrep 2>/dev/null || echo absent").strip()
    assert state != "-", "a cancelled receive leaves a resumable partial state or nothing"


def _upload(api: Api, path: str, stream: Any, into: list[Any]) -> None:
    """POST `stream` as a chunked request body (like `zfs send | curl -T -`)."""
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=120)
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/octet-stream"}
    try:
        connection.request("POST", path, body=stream, headers=headers, encode_chunked=True)
        into.append(connection.getresponse().status)
    except OSError as error:  # the server answered and closed while we were still sending
        into.append(error)
    finally:
        connection.close()


def test_cancel_mid_receive_and_200_concurrent_status_requests(bed: Bed) -> None:
    api, src, dst = bed.api, bed.src, bed.dst
    sender = subprocess.Popen([str(VM_SCRIPT), "ssh", f"zfs send {src}/big@b1"], stdout=subprocess.PIPE, env=bed.vm.env)
    outcome: list[Any] = []
    upload = threading.Thread(target=_upload, args=(api, f"/v1/datasets/{dst}/bigrecv/receive", sender.stdout, outcome))
    upload.start()
    try:
        deadline = time.monotonic() + 60
        task = None
        while task is None and time.monotonic() < deadline:
            tasks = api.ok("GET", "/v1/tasks", status=200)["tasks"]
            task = next((t for t in tasks if t["request"].get("dataset") == f"{dst}/bigrecv"), None)
        assert task is not None
        api.moving(task["id"])

        def status(_: int) -> int:
            return api.call("GET", f"/v1/tasks/{task['id']}", timeout=30).status

        with ThreadPoolExecutor(max_workers=200) as pool:
            answers = list(pool.map(status, range(200)))
        assert answers == [200] * 200
        assert api.ok("GET", f"/v1/tasks/{task['id']}", status=200)["state"] == "running"
        assert api.ok("DELETE", f"/v1/tasks/{task['id']}", status=200)["state"] == "cancelled"
    finally:
        sender.kill()
        sender.wait()
        upload.join(timeout=60)
    assert outcome and bed.zfs_processes() == ""
    token = bed.vm.sh(f"zfs get -H -o value receive_resume_token {dst}/bigrecv 2>/dev/null || echo absent").strip()
    assert token != "-", "resumable (a token) or clean (absent)"
    assert api.ok("GET", "/v1/pools", status=200)["pools"]  # the server goes on


def test_finished_tasks_expire_after_task_expiry(bed: Bed, tmp_path: Path) -> None:
    """A second server with a 3 s expiry: a finished task answers until then, and 404 after."""
    server, api, _ = start_server([*bed.argv, "--task-expiry", "3"], tmp_path / "server.log")
    try:
        done = api.wait(api.ok("POST", f"/v1/snapshots/{bed.src}/small/s1/send", {"dry_run": True})["id"])
        assert done["state"] == "succeeded" and done["result"]["size"] > 1_000_000, done
        assert api.ok("GET", f"/v1/tasks/{done['id']}", status=200)["id"] == done["id"]
        assert done["id"] in [t["id"] for t in api.ok("GET", "/v1/tasks", status=200)["tasks"]]
        time.sleep(3.5)
        gone = api.call("GET", f"/v1/tasks/{done['id']}")
        assert gone.status == 404 and "error" in gone.json(), gone.body
        assert done["id"] not in [t["id"] for t in api.ok("GET", "/v1/tasks", status=200)["tasks"]]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_sigterm_cancels_the_tasks_and_stops_the_server(bed: Bed, tmp_path: Path) -> None:
    bed.server.terminate()  # the module's server, in the middle of nothing: stops cleanly
    assert bed.server.wait(timeout=30) == 143
    server, api, _ = start_server(bed.argv, tmp_path / "server.log")
    try:
        task = api.ok("POST", f"/v1/snapshots/{bed.src}/big/b1/send", {"output_path": "big.zfs"})
        api.moving(task["id"])
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 143
        assert time.monotonic() - started < 15
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert bed.zfs_processes() == ""
    assert not (bed.exports / "big.zfs").exists(), "a cancelled send leaves no partial file"
    bed.server = server
