"""The status page: the pure renderer (figures, escaping, CSP) and the login flow in-process."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from zferry.server.app import create_app
from zferry.server.page_assets import CSP
from zferry.server.page_render import (
    describe,
    human_bytes,
    human_duration,
    percent,
    render_login,
    render_page,
    summary,
    utc,
)
from zferry.server.settings import ServerSettings
from zferry.server.zfshost import ZfsHost

MiB = 1024 * 1024
TOKEN = "s" * 24


def running_task(**fields: Any) -> dict[str, Any]:
    task = {
        "id": "0123456789abcdef",
        "kind": "send",
        "state": "running",
        "pools": ["src"],
        "bytes_done": 70 * MiB,
        "bytes_total": 300 * MiB,
        "rate_bytes_per_s": 11.5 * MiB,
        "started": 1796652000.0,
        "ended": None,
        "result": None,
        "error": None,
        "request": {"dataset": "src/data", "snapshot": "s1", "output_path": "out/x.zfs"},
    }
    return {**task, **fields}


STATUS = {
    "pools": [
        {"name": "src", "health": "ONLINE", "size": 3 << 30, "allocated": 1 << 30, "free": 2 << 30, "busy_task": "0123456789abcdef"},
        {"name": "dst", "health": "DEGRADED", "size": 3 << 30, "allocated": 3 << 29, "free": 3 << 29, "busy_task": None},
    ],
    "tasks": [
        running_task(),
        running_task(id="feed", kind="replicate", state="succeeded", ended=1796652100.0, bytes_total=None,
                     result={"snapshots_sent": 3, "updated": ["a", "b"], "failed": {}},
                     request={"dataset": "src/a", "snapshot": "s9", "target": "hostb:dst/a"}),
        running_task(id="dead", kind="receive", state="failed", ended=1796652200.0, bytes_done=0,
                     error="cannot receive: destination has been modified", request={"dataset": "dst/r"}),
    ],
    "pairs": [
        {"source": "src/a", "target": "hostb:dst/a", "source_latest": "s9", "target_latest": "s9",
         "lag_seconds": 95.0, "last_result": "succeeded", "last_run_end": 1796652100.0},
        {"source": "src/b", "target": "dst/b", "source_latest": "s3", "target_latest": None,
         "lag_seconds": None, "last_result": "failed", "last_run_end": 1796652150.0},
    ],
}  # fmt: skip


class Tags(HTMLParser):
    """Every start tag with its attribute names, and all text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(name for name, _ in attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    tags.close()
    return tags


def test_formatting() -> None:
    assert [human_bytes(v) for v in (None, 0, 1023, 1536, 300 * MiB, 5 << 40, 5 << 50)] == [
        "\u2013", "0 B", "1023 B", "1.5 KiB", "300.0 MiB", "5.0 TiB", "5120.0 TiB"
    ]  # fmt: skip
    assert human_bytes(True) == "\u2013" and human_bytes("12") == "\u2013"
    assert [human_duration(v) for v in (None, -3, 44.6, 200, 7500, 3 * 86400 + 4 * 3600)] == [
        "\u2013", "0 s", "45 s", "3 min", "2.1 h", "3.2 days"
    ]  # fmt: skip
    assert [percent(*v) for v in ((1, None), (1, 0), (70, 300), (400, 300), (None, 5))] == [None, None, 23, 100, None]
    assert utc(0) == "1970-01-01 00:00:00 UTC" and utc(None) == "\u2013"
    assert summary({"snapshots_sent": 3, "updated": ["a", "b"], "failed": {}, "x": None}) == (
        "snapshots_sent: 3, updated: 2, failed: 0, x: none"
    )
    assert summary(None) == "" and summary("done") == "done"


def test_what_a_task_works_on() -> None:
    tasks = STATUS["tasks"]
    assert describe(tasks[0]) == "src/data@s1 \u2192 out/x.zfs"
    assert describe(tasks[1]) == "src/a@s9 \u2192 hostb:dst/a"
    assert describe(tasks[2]) == "HTTP stream \u2192 dst/r"
    stream = running_task(request={"dataset": "p/d", "snapshot": "s2", "from_snapshot": "@s1"})
    assert describe(stream) == "p/d@s2 (from @s1) \u2192 HTTP stream"
    assert describe({"kind": "other", "pools": ["a", "b"]}) == "a, b"


def test_the_page_shows_pools_progress_pairs_and_recent_tasks() -> None:
    page = render_page(STATUS)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    running = re.search(r"<article[^>]*>.*?</article>", page, re.S)
    assert running is not None
    card = running.group(0)
    for expected in (
        'data-task-id="0123456789abcdef"', 'data-state="running"', f'data-bytes-done="{70 * MiB}"',
        f'data-bytes-total="{300 * MiB}"', f'max="{300 * MiB}"', f'value="{70 * MiB}"',
        "70.0 MiB of 300.0 MiB (23%)", "11.5 MiB/s", "src/data@s1 \u2192 out/x.zfs",
    ):  # fmt: skip
        assert expected in card
    assert page.count("<article") == 1  # finished tasks are in the recent table only
    recent = page[page.index('id="recent"') :]
    assert 'data-task-id="feed"' in recent and 'data-task-id="dead"' in recent
    assert "snapshots_sent: 3, updated: 2, failed: 0" in recent and "destination has been modified" in recent
    assert '<tr class="pool" data-pool="src">' in page and "DEGRADED" in page and 'class="badge warn">DEGRADED' in page
    assert "1.0 GiB" in page and "33%" in page and 'data-task="0123456789abcdef"' in page
    pairs = page[page.index('id="pairs"') : page.index('id="recent"')]
    assert 'data-lag-seconds="95"' in pairs and "95 s" in pairs and "in sync" in pairs
    assert pairs.count("in sync") == 1  # src/b's target has no snapshot yet
    assert 'id="error"' in page and 'role="alert" hidden' in page


def test_an_empty_status_and_an_error() -> None:
    page = render_page({"pools": [], "tasks": [], "pairs": [], "error": "the ZFS host did not answer"})
    for note in ("No pool.", "No task is running.", "No replication since", "No finished task"):
        assert note in page
    assert '<p id="error" class="error" role="alert">the ZFS host did not answer</p>' in page
    assert render_page({})  # missing keys: empty sections, no exception


def test_only_the_inline_script_and_style_may_run() -> None:
    page = render_page(STATUS)
    script = re.findall(r"<script>(.*?)</script>", page, re.S)
    style = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert len(script) == 1 and len(style) == 1
    for block in (script[0], style[0]):
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in CSP
    assert "default-src 'none'" in CSP and "connect-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert 'fetch("v1/status"' in script[0] and "setInterval(poll, 2000)" in script[0]
    assert "innerHTML" not in script[0]  # text goes in through textContent/append only
    assert "http://" not in page and "https://" not in page  # no CDN, no external font


HOSTILE = st.text(alphabet=st.sampled_from(list("<>&\"'=/ ;ab\u2028")), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(HOSTILE, HOSTILE, HOSTILE)
def test_no_value_can_add_markup(name: str, text: str, other: str) -> None:
    status = {
        "pools": [{"name": name, "health": text, "size": 10, "allocated": 5, "free": 5, "busy_task": other}],
        "tasks": [
            running_task(id=name, kind=text, request={"dataset": name, "snapshot": text, "output_path": other}),
            running_task(id=other, state="failed", error=text, result={name: other}),
        ],
        "pairs": [{"source": name, "target": text, "source_latest": other, "target_latest": other,
                   "lag_seconds": 1, "last_result": text, "last_run_end": 0}],
        "error": name,
    }  # fmt: skip
    clean = parse(render_page(STATUS))
    tags = parse(render_page(status))
    allowed_tags = {tag for tag, _ in clean.tags} | {"p"}
    allowed_attrs = {attr for _, attrs in clean.tags for attr in attrs}
    assert {tag for tag, _ in tags.tags} <= allowed_tags
    assert {attr for _, attrs in tags.tags for attr in attrs} <= allowed_attrs
    assert name in "".join(tags.text)  # shown as text, not lost
    login = parse(render_login(name))
    assert [tag for tag, _ in login.tags] == [tag for tag, _ in parse(render_login("x")).tags]


# -- the HTTP side: login, cookie, logout --------------------------------------------------


class Host(ZfsHost):
    """Pools without ZFS; `down` makes every query fail like an unreachable host."""

    down = False

    def pools(self) -> list[dict[str, Any]]:
        if self.down:
            raise OSError("ssh: connect to host nas1 port 22: Connection refused")
        return [{"name": "tank", "health": "ONLINE", "size": 100, "allocated": 40, "free": 60}]

    def query(self, argv: Any) -> str:
        raise AssertionError(f"ran {argv}")


@pytest.fixture
def host() -> Iterator[Host]:
    zfs_host = Host(ServerSettings(token=TOKEN))
    yield zfs_host
    zfs_host.close()


@pytest.fixture
def client(host: Host) -> Iterator[TestClient]:
    with TestClient(create_app(host.settings, zfs_host=host), follow_redirects=False) as test_client:
        yield test_client


def test_login_cookie_page_and_logout(client: TestClient) -> None:
    assert client.get("/").status_code == 303 and client.get("/").headers["location"] == "login"
    form = client.get("/login")
    assert form.status_code == 200 and 'name="token" type="password"' in form.text
    assert form.headers["content-security-policy"] == CSP and form.headers["cache-control"] == "no-store"
    wrong = client.post("/login", data={"token": "x" * 24})
    assert wrong.status_code == 401 and "Wrong token" in wrong.text and "set-cookie" not in wrong.headers
    assert client.post("/login", content=b"token=" + b"a" * 5000).status_code == 413
    assert client.post("/login", content=b"&".join([b"a=1"] * 20)).status_code == 400
    assert client.get("/v1/status").status_code == 401  # nothing above logged in
    good = client.post("/login", data={"token": TOKEN})
    assert good.status_code == 303 and good.headers["location"] == "./"
    cookie = good.headers["set-cookie"]
    assert cookie.startswith(f"zferry_token={TOKEN};") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie  # plain http: a Secure cookie would not come back
    page = client.get("/")  # the client keeps the cookie, like a browser
    assert page.status_code == 200 and '<tr class="pool" data-pool="tank">' in page.text
    assert page.headers["content-security-policy"] == CSP and page.headers["x-frame-options"] == "DENY"
    assert client.get("/v1/status").json()["pools"][0]["name"] == "tank"  # the script's poll
    assert client.get("/login").headers["location"] == "./"
    out = client.post("/logout")
    assert out.status_code == 303 and out.headers["location"] == "login"
    assert 'zferry_token=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    assert client.get("/").status_code == 303 and client.get("/v1/status").status_code == 401


def test_only_the_login_requests_are_public(client: TestClient) -> None:
    for method, path in (("get", "/v1/tasks"), ("get", "/docs"), ("post", "/"), ("get", "/logout"), ("get", "/x")):
        assert client.request(method, path).status_code in (401,), (method, path)
    assert client.get("/", headers={"Cookie": "zferry_token=" + "y" * 24}).status_code == 303
    cookie = {"Cookie": f"zferry_token={TOKEN}"}  # good for reading, never for a change (CSRF)
    assert client.get("/v1/tasks", headers=cookie).status_code == 200
    for method, path in (("post", "/v1/snapshots/p/d/s1/send"), ("delete", "/v1/tasks/x"), ("put", "/v1/tasks")):
        assert client.request(method, path, headers=cookie, content=b"{}").status_code == 401, (method, path)
    assert client.delete("/v1/tasks/x", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    bearer = client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200 and "tank" in bearer.text


def test_the_page_says_when_the_zfs_host_is_down(host: Host, client: TestClient) -> None:
    host.down = True
    page = client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200
    assert "the ZFS host did not answer (ssh: connect to host nas1 port 22: Connection refused)" in page.text
    assert "No pool." in page.text
