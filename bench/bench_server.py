#!/usr/bin/env python3
"""zferry-server benchmarks, against a server on this machine managing the VM's ZFS over ssh:

- requests per second of `GET /v1/tasks/{id}` while a send runs (threads with keep-alive connections);
- send-size latency: `zfs send -nvP` in the VM, over a fresh ssh, over the server (its ControlMaster),
  and libzfs_core's `lzc_send_space` when the VM has python3-pyzfs;
- throughput of a send streamed through HTTP versus `ssh zfvm-a zfs send > file` (the same network hop).

Run: python3 bench/bench_server.py [--size-mib 64] [--seconds 10] [--threads 8]
(the server extra must be installed: pip install -e '.[dev]').
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VM = str(ROOT / "testbed" / "vm")
DS = "src/benchsrv"


def sh(script: str) -> str:
    return subprocess.run(
        [VM, "ssh", "bash -euo pipefail -s"], input=script, text=True, check=True, capture_output=True
    ).stdout


def ssh_config(folder: str) -> str:
    key = subprocess.run([VM, "key"], capture_output=True, text=True, check=True).stdout.strip()
    port = subprocess.run([VM, "port"], capture_output=True, text=True, check=True).stdout.strip()
    path = os.path.join(folder, "ssh_config")
    with open(path, "w") as cfg:
        cfg.write(
            f"Host zfvm-a\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {key}\n"
            "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
        )
    return path


class Client:
    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        try:
            self.connection.request(method, path, body=data, headers=headers)
            answer = self.connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError):  # uvicorn closed an idle keep-alive connection
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            self.connection.request(method, path, body=data, headers=headers)
            answer = self.connection.getresponse()
        return answer.status, answer.read(), answer.headers

    def json(self, method: str, path: str, body: Any = None) -> Any:
        return json.loads(self.call(method, path, body)[1])

    def wait(self, task_id: str) -> dict[str, Any]:
        while True:
            task: dict[str, Any] = self.json("GET", f"/v1/tasks/{task_id}")
            if task["state"] in ("succeeded", "failed", "cancelled"):
                return task
            time.sleep(0.2)


def start_server(folder: str, config: str) -> tuple[subprocess.Popen[bytes], Client]:
    token = os.path.join(folder, "token")
    with open(token, "w") as handle:
        handle.write(secrets.token_urlsafe(32))
    os.chmod(token, 0o600)
    exports = os.path.join(folder, "exports")
    os.mkdir(exports)
    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("zferry-server")), "--port", str(port), "--token-file", token,
         "--zfs-host", "zfvm-a", "--ssh-config-file", config, "--export-dir", exports,
         "--audit-log", os.path.join(folder, "audit.jsonl")],
    )  # fmt: skip
    client = Client(port, Path(token).read_text())
    for _ in range(100):
        try:
            if client.call("GET", "/v1/healthz")[0] == 200:
                return server, client
        except OSError:
            client.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            time.sleep(0.3)
    raise SystemExit("zferry-server did not start")


def requests_per_second(client: Client, seconds: float, threads: int) -> None:
    task = client.json("POST", f"/v1/snapshots/{DS}/s1/send", {"output_path": "rps.zfs"})
    deadline = time.monotonic() + seconds
    counts: list[int] = []
    latencies: list[float] = []

    def hammer() -> None:
        own = Client(client.port, client.token)
        count = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            assert own.call("GET", f"/v1/tasks/{task['id']}")[0] == 200
            latencies.append(time.monotonic() - started)
            count += 1
        counts.append(count)

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    state = client.json("GET", f"/v1/tasks/{task['id']}")
    print(
        f"  GET /v1/tasks/{{id}} during a send ({threads} threads, {seconds:g} s): {sum(counts) / seconds:.0f} req/s, "
        f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.0f} ms; "
        f"task {state['state']} at {state['bytes_done'] / 2**20:.1f} MiB"
    )
    client.call("DELETE", f"/v1/tasks/{task['id']}")


def send_size_latency(client: Client, config: str, runs: int = 5) -> None:
    script = f"for i in $(seq {runs}); do s=$(date +%s%N); zfs send -nvP {DS}@s1 >/dev/null; e=$(date +%s%N); echo $((e - s)); done"
    in_vm = statistics.median(int(x) / 1e9 for x in sh(script).split())
    fresh = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run(["ssh", "-F", config, "zfvm-a", f"zfs send -nvP {DS}@s1"], check=True, capture_output=True)
        fresh.append(time.monotonic() - started)
    served, zfs_part = [], []
    for _ in range(runs):
        started = time.monotonic()
        answer = client.json("GET", f"/v1/snapshots/{DS}/s1/send-size")
        served.append(time.monotonic() - started)
        zfs_part.append(answer["seconds"])
    print(
        f"  send-size (median of {runs}): zfs send -nvP in the VM {in_vm * 1000:.0f} ms; over a fresh ssh "
        f"{statistics.median(fresh) * 1000:.0f} ms; GET send-size {statistics.median(served) * 1000:.0f} ms "
        f"(of which zfs over the ControlMaster {statistics.median(zfs_part) * 1000:.0f} ms)"
    )
    lzc = "import libzfs_core, time; s=time.time(); libzfs_core.lzc_send_space(b'" + DS + "@s1'); print(time.time()-s)"
    probe = subprocess.run([VM, "ssh", f'python3 -c "{lzc}"'], capture_output=True, text=True)
    if probe.returncode == 0:
        print(f"  libzfs_core lzc_send_space in the VM: {float(probe.stdout) * 1000:.1f} ms")
    else:
        print("  libzfs_core: not importable in the VM (python3-pyzfs is not installed); CLI only")


def throughput(client: Client, config: str, size_mib: int, folder: str) -> None:
    target = os.path.join(folder, "raw.zfs")
    started = time.monotonic()
    with open(target, "wb") as out:
        subprocess.run(["ssh", "-F", config, "zfvm-a", f"zfs send {DS}@s1"], stdout=out, check=True)
    raw = time.monotonic() - started
    size = os.path.getsize(target)
    os.unlink(target)
    stream = Client(client.port, client.token)
    started = time.monotonic()
    data = json.dumps({}).encode()
    stream.connection.request(
        "POST", f"/v1/snapshots/{DS}/s1/send", body=data, headers={"Authorization": f"Bearer {client.token}"}
    )
    answer = stream.connection.getresponse()
    got = 0
    while chunk := answer.read(1 << 20):
        got += len(chunk)
    served = time.monotonic() - started
    assert got == size, (got, size)
    task = client.wait(answer.headers["x-zferry-task-id"])
    started = time.monotonic()
    to_file = client.wait(client.json("POST", f"/v1/snapshots/{DS}/s1/send", {"output_path": "tp.zfs"})["id"])
    filed = time.monotonic() - started
    mib = size / 2**20
    print(
        f"  send of {mib:.0f} MiB ({size_mib} MiB written): ssh zfs send > file {raw:.1f} s ({mib / raw:.1f} MiB/s); "
        f"streamed through HTTP {served:.1f} s ({mib / served:.1f} MiB/s, ratio {served / raw:.2f}, task {task['state']}); "
        f"server to --export-dir {filed:.1f} s (ratio {filed / raw:.2f}, task {to_file['state']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    subprocess.run([VM, "up"], check=True)
    sh(f"""
        zfs list -H src >/dev/null
        zfs destroy -r {DS} 2>/dev/null || true
        zfs create -o compression=off {DS}
        dd if=/dev/urandom of=/{DS}/f bs=1M count={args.size_mib} status=none
        zfs snapshot {DS}@s1; zpool sync
    """)
    with tempfile.TemporaryDirectory() as folder:
        config = ssh_config(folder)
        server, client = start_server(folder, config)
        try:
            print("zferry-server:")
            requests_per_second(client, args.seconds, args.threads)
            send_size_latency(client, config)
            throughput(client, config, args.size_mib, folder)
        finally:
            server.terminate()
            server.wait()
    sh(f"zfs destroy -r {DS}")


if __name__ == "__main__":
    main()
