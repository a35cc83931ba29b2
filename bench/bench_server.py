#!/usr/bin/env python3
"""zferry-server benchmarks, against a server on this machine managing the VM's ZFS over ssh:

- requests per second of `GET /v1/tasks/{id}` while a send runs (threads with keep-alive connections);
- send-size latency through the server's own ZfsHost (its ControlMaster), interleaved rounds, full and
  incremental: `zfs send -nP`, a one-shot `python3 -c` calling libzfs_core's `lzc_send_space`, and the
  server's long-lived lzc helper (python3-pyzfs is installed into the VM from the network when missing;
  the next VM restore drops it); then `zfs send -nvP` in the VM and over a fresh ssh, and GET send-size;
- throughput of a send streamed through HTTP versus `ssh zfvm-a zfs send > file` (the same network hop).

Run: python3 bench/bench_server.py [--size-mib 64] [--seconds 10] [--threads 8] [--rounds 10]
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

from zferry import zfs
from zferry.model import Version
from zferry.server.sendspace import HELPER, parse_answer, space_request
from zferry.server.settings import ServerSettings
from zferry.server.zfshost import ZfsHost

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


def ensure_pyzfs() -> bool:
    """python3-pyzfs in the VM (installed from the network when missing; gone at the VM's next restore)."""
    check = "python3 -c 'import libzfs_core' 2>/dev/null && echo yes || echo no"
    if sh(check).strip() == "yes":
        return True
    print("  installing python3-pyzfs in the VM (apt-get) ...")
    subprocess.run(
        [VM, "ssh", "DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pyzfs"], capture_output=True
    )
    return sh(check).strip() == "yes"


def send_size_methods(config: str, rounds: int) -> None:
    """The three ways of estimating, interleaved, through the server's own ZfsHost (one ControlMaster)."""
    zfs_host = ZfsHost(ServerSettings(token="-" * 24, zfs_host="zfvm-a", ssh_config_file=config))
    host = zfs_host.host
    space = zfs_host.send_space
    started = time.monotonic()
    space.estimate(zfs.send_full(Version(DS, "s1", 0, 0, 0)))
    helper_start = time.monotonic() - started
    if not space.available:
        print("  libzfs_core: not importable in the VM; zfs send -nP only")
        zfs_host.close()
        return
    s1, s2 = Version(DS, "s1", 0, 0, 0), Version(DS, "s2", 0, 0, 0)
    kinds = {"full": zfs.send_full(s2), "incremental": zfs.send_incremental(s1, s2, False)}

    def cli(send: list[str]) -> object:
        return zfs.parse_size_estimate(zfs_host.query(zfs.send_size_estimate(send)))

    def one_shot(send: list[str]) -> object:
        request = space_request(send)
        assert request is not None
        answer = zfs_host.runner.run(host, ["python3", "-c", HELPER], stdin_data=request.line())
        return parse_answer(answer.splitlines()[1].encode())

    methods = {"zfs send -nP": cli, "python3 -c lzc (one-shot)": one_shot, "lzc helper": space.estimate}
    times: dict[tuple[str, str], list[float]] = {}
    sizes: dict[tuple[str, str], set[object]] = {}
    for _ in range(rounds):
        for kind, send in kinds.items():
            for name, method in methods.items():
                started = time.monotonic()
                size = method(send)
                times.setdefault((kind, name), []).append(time.monotonic() - started)
                sizes.setdefault((kind, name), set()).add(size)
    zfs_host.close()
    print(f"  send-size through the server's ZfsHost, {rounds} interleaved rounds (median, min-max):")
    for kind in kinds:
        cells = [
            f"{name} {statistics.median(t) * 1000:.0f} ms ({min(t) * 1000:.0f}-{max(t) * 1000:.0f})"
            for name in methods
            for t in [times[(kind, name)]]
        ]
        agree = len({frozenset(sizes[(kind, name)]) for name in methods}) == 1 and len(sizes[(kind, "lzc helper")]) == 1
        shown = next(iter(sizes[(kind, "zfs send -nP")]))
        print(f"    {kind}: {'; '.join(cells)}; sizes {'agree' if agree else 'DIFFER'} ({shown} bytes)")
    print(f"    (the helper's start, once per server: {helper_start * 1000:.0f} ms)")


def send_size_latency(client: Client, config: str, runs: int = 5) -> None:
    script = f"for i in $(seq {runs}); do s=$(date +%s%N); zfs send -nvP {DS}@s1 >/dev/null; e=$(date +%s%N); echo $((e - s)); done"
    in_vm = statistics.median(int(x) / 1e9 for x in sh(script).split())
    fresh = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run(["ssh", "-F", config, "zfvm-a", f"zfs send -nvP {DS}@s1"], check=True, capture_output=True)
        fresh.append(time.monotonic() - started)
    served, zfs_part = [], []
    client.json("GET", f"/v1/snapshots/{DS}/s2/send-size?from_snapshot=s1")  # the server starts its helper
    for _ in range(runs):
        started = time.monotonic()
        answer = client.json("GET", f"/v1/snapshots/{DS}/s2/send-size?from_snapshot=s1")
        served.append(time.monotonic() - started)
        zfs_part.append(answer["seconds"])
    print(
        f"  send-size (median of {runs}): zfs send -nvP in the VM {in_vm * 1000:.0f} ms; over a fresh ssh "
        f"{statistics.median(fresh) * 1000:.0f} ms; GET send-size {statistics.median(served) * 1000:.0f} ms "
        f"(of which the estimate {statistics.median(zfs_part) * 1000:.0f} ms; the rest is the dataset lookup)"
    )


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
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds of the send-size methods")
    args = parser.parse_args()
    subprocess.run([VM, "up"], check=True)
    sh(f"""
        zpool list -H src >/dev/null 2>&1 || {{
          truncate -s 3G /pools/src.img; zpool create -O compression=lz4 -O atime=off src /pools/src.img; }}
        zfs destroy -r {DS} 2>/dev/null || true
        zfs create -o compression=off {DS}
        dd if=/dev/urandom of=/{DS}/f bs=1M count={args.size_mib} status=none
        zfs snapshot {DS}@s1
        dd if=/dev/urandom of=/{DS}/g bs=1M count={max(1, args.size_mib // 8)} status=none
        zfs snapshot {DS}@s2; zpool sync
    """)
    pyzfs = ensure_pyzfs()
    with tempfile.TemporaryDirectory() as folder:
        config = ssh_config(folder)
        server, client = start_server(folder, config)
        try:
            print("zferry-server:")
            requests_per_second(client, args.seconds, args.threads)
            if pyzfs:
                send_size_methods(config, args.rounds)
            send_size_latency(client, config)
            throughput(client, config, args.size_mib, folder)
        finally:
            server.terminate()
            server.wait()
    sh(f"zfs destroy -r {DS}")


if __name__ == "__main__":
    main()
