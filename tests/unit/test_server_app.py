"""The HTTP layer in-process: the token wraps everything, bad requests are refused before the ZFS host is asked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from zferry.server.app import create_app
from zferry.server.settings import ServerSettings
from zferry.server.zfshost import ZfsHost

TOKEN = "t" * 24


class UnreachableHost(ZfsHost):
    """A ZFS host that must not be asked: any query fails the test."""

    def query(self, argv: Any) -> str:
        raise AssertionError(f"ran {argv}")


@pytest.fixture
def client(tmp_path: Any) -> Iterator[TestClient]:
    settings = ServerSettings(token=TOKEN, export_dir=str(tmp_path), import_dir=str(tmp_path))
    host = UnreachableHost(settings)
    yield TestClient(create_app(settings, zfs_host=host))
    host.close()


def test_every_path_needs_the_token(client: TestClient) -> None:
    for path in ("/v1/status", "/v1/tasks", "/openapi.json", "/docs", "/nothing"):
        answer = client.get(path)
        assert answer.status_code == 401 and answer.json()["hint"]
    wrong = client.get("/v1/tasks", headers={"Authorization": "Bearer " + "x" * 24})
    assert wrong.status_code == 401
    assert client.get("/v1/tasks", headers={"Cookie": f"zferry_token={TOKEN}"}).json() == {"tasks": []}
    schema = client.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert "/v1/snapshots/{dataset}/{snap}/send" in schema["paths"]


def test_bad_requests_are_refused_before_zfs_runs(client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    cases = [
        ("post", "/v1/snapshots/p/d/s1/send", b"{nope", 400),
        ("post", "/v1/snapshots/p/d/s1/send", b'{"output_path": "../x"}', 400),
        ("post", "/v1/snapshots/p/d;reboot/s1/send", b"{}", 400),
        ("post", "/v1/snapshots/p/d/s1/replicate", b'{"target": "a b:c"}', 400),
        ("post", "/v1/datasets/p/d/receive", b'{"input_path": "/etc/passwd"}', 400),
        ("post", "/v1/snapshots/p/d/s1/send", b'{"x": "' + b"a" * 70000 + b'"}', 413),
        ("get", "/v1/snapshots/p%2Fd/s%3B1/send-size", None, 400),
        ("get", "/v1/tasks/unknown", None, 404),
        ("delete", "/v1/tasks/unknown", None, 404),
        ("put", "/v1/tasks", None, 405),
    ]
    for method, path, body, status in cases:
        answer = client.request(method, path, content=body, headers=auth)
        assert answer.status_code == status, (path, answer.text)
        assert set(answer.json()) >= {"error", "hint"}
    assert client.get("/v1/tasks", headers=auth).json() == {"tasks": []}
