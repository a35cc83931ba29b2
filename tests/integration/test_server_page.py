"""The status page in headless Chromium during a running transfer, logged in through the real login flow.

A `zferry-server` process on this machine manages the VM's ZFS over ssh (`--zfs-host zfvm-a`).

How the page is caught mid-transfer, without racing the transfer:
- The transfer is a streamed send (`POST .../send` without `output_path`): the test reads the
  first bytes of the response and then stops reading. TCP back-pressure stalls `zfs send` in the
  VM, so the task stays `running` with `bytes_done > 0` for as long as Chromium needs; afterwards
  the test reads the rest and the task succeeds with exactly the bytes the test received.
- The login is the page's own: Chromium opens a local HTML file (mode 600, in the test's tmp dir)
  holding a form that posts the token to `/login` and submits itself on load, as a person would
  submit the login form. The token travels in the POST body, never in a URL. The server answers
  with the HttpOnly cookie and a 303 to `/`, which Chromium follows with the cookie (SameSite=Lax:
  a redirect after a cross-site POST is a top-level GET navigation, which Lax allows).
- `--virtual-time-budget=8000` lets the redirect, the server-rendered page and several of the
  script's 2-s polls of /v1/status complete before Chromium writes the DOM (`--dump-dom`) and the
  screenshot (`--screenshot`, one run does both) at 412x900, a phone's viewport.

The DOM must show the running task's progress (its card with `data-task-id`, `data-state=running`,
`data-bytes-done > 0`, a progress bar), the script's successful poll ("Live"), the pools and the
pair replicated before (latest snapshot on both sides, in sync), and never the token.
"""

from __future__ import annotations

import http.client
import re
import secrets
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.test_server import Api, start_server
from tests.integration.vm import Vm, unique_name

pytest.importorskip("fastapi")

CHROMIUM = shutil.which("chromium")
PNG = b"\x89PNG\r\n\x1a\n"


@dataclass
class Server:
    api: Api
    src: str
    dst: str


@pytest.fixture(scope="module")
def server(
    vm: Vm, pools: tuple[str, str], ssh_config: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    name = unique_name("page")
    src, dst = f"{pools[0]}/{name}", f"{pools[1]}/{name}"
    vm.sh(f"""
        zfs create {src}; zfs create {dst}
        zfs create {src}/small; head -c 1000000 /dev/urandom > /{src}/small/a; zfs snapshot {src}/small@s1
        zfs create {src}/big; head -c 40000000 /dev/urandom > /{src}/big/a; zfs snapshot {src}/big@b1
    """)
    tmp = tmp_path_factory.mktemp("page")
    token = tmp / "token"
    token.write_text(secrets.token_urlsafe(32) + "\n")
    token.chmod(0o600)
    argv = [
        str(Path(sys.executable).with_name("zferry-server")), "--token-file", str(token), "--zfs-host", "zfvm-a",
        "--ssh-config-file", ssh_config, "--audit-log", str(tmp / "audit.jsonl"),
    ]  # fmt: skip
    process, api, _ = start_server(argv, tmp / "server.log")
    try:
        yield Server(api, src, dst)
    finally:
        process.terminate()
        process.wait(timeout=30)


def login_file(folder: Path, server: Server) -> Path:
    """A page that posts the token to the server's login form on load (the token stays in the body)."""
    page = folder / "login.html"
    page.write_text(
        "<!DOCTYPE html><html><body>"
        f'<form id="login" method="post" action="http://127.0.0.1:{server.api.port}/login">'
        f'<input type="hidden" name="token" value="{server.api.token}"></form>'
        '<script>document.getElementById("login").submit();</script></body></html>'
    )
    page.chmod(0o600)
    return page


def chromium(folder: Path, page: Path, screenshot: Path) -> str:
    """Headless Chromium at a phone's size: the DOM after the budget of virtual time, and a screenshot."""
    assert CHROMIUM is not None
    argv = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={folder / 'profile'}",
        "--window-size=412,900", "--virtual-time-budget=8000", f"--screenshot={screenshot}", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (testbed/run-tests installs it)")
def test_status_page_in_chromium_during_a_running_send(server: Server, tmp_path: Path) -> None:
    api, src, dst = server.api, server.src, server.dst
    replicate = api.ok("POST", f"/v1/snapshots/{src}/small/s1/replicate", {"target": f"{dst}/small"})
    assert api.wait(replicate["id"])["state"] == "succeeded"
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=120)
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
    connection.request("POST", f"/v1/snapshots/{src}/big/b1/send", body=b"{}", headers=headers)
    stream = connection.getresponse()
    try:
        assert stream.status == 200
        task_id = stream.getheader("X-Zferry-Task-Id")
        assert task_id
        first = stream.read(65536)  # then the test stops reading: the send stalls, still running
        api.moving(task_id)
        screenshot = tmp_path / "status-page.png"
        dom = chromium(tmp_path, login_file(tmp_path, server), screenshot)
        assert api.ok("GET", f"/v1/tasks/{task_id}", status=200)["state"] == "running"
        received = len(first) + len(stream.read())
    finally:
        connection.close()
    print(f"status page screenshot: {screenshot}")
    card = re.search(
        rf'<article class="task" data-task-id="{task_id}" data-state="running"[^>]*>.*?</article>', dom, re.S
    )
    assert card is not None, dom[-5000:]
    done = re.search(r'data-bytes-done="(\d+)" data-bytes-total="(\d+)"', card.group(0))
    assert done is not None and 0 < int(done.group(1)) < int(done.group(2)), card.group(0)
    assert "<progress" in card.group(0) and f"{src}/big@b1 \u2192 HTTP stream" in card.group(0)
    assert re.search(r'id="updated"[^>]*>Live \u00b7 updated', dom), "the script's poll of /v1/status did not run"
    assert '<tr class="pool" data-pool="src">' in dom and '<tr class="pool" data-pool="dst">' in dom and "ONLINE" in dom
    pair = re.search(rf'<tr data-source="[^"]*{src}/small" data-target="[^"]*{dst}/small".*?</tr>', dom, re.S)
    assert pair is not None and pair.group(0).count("<code>s1</code>") == 2 and "in sync" in pair.group(0)
    assert api.token not in dom
    image = screenshot.read_bytes()
    assert image.startswith(PNG) and struct.unpack(">II", image[16:24]) == (412, 900)
    finished = api.wait(task_id)
    assert finished["state"] == "succeeded" and finished["bytes_done"] == received > 38_000_000
