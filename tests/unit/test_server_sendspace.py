"""Send-size through libzfs_core: which sends it may answer, the helper's protocol, and the fallback.

The helper protocol runs the real helper program on this machine, against a stand-in
`libzfs_core` module put on PYTHONPATH (this machine has no ZFS); the real libzfs_core is
checked against `zfs send -nP` in tests/integration/test_server_sendspace.py.
"""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from pathlib import Path

import pytest

from zferry import zfs
from zferry.exec.host import Host
from zferry.model import Version
from zferry.server.sendspace import SendSpace, SpaceRequest, parse_answer, parse_ready, space_request

SNAP = Version("tank/data", "s2", 0, 0, 0)
BASE = Version("tank/data", "s1", 0, 0, 0)
MARK = Version("tank/data", "b1", 0, 0, 0, is_bookmark=True)


def test_send_parts_reads_what_the_send_builders_build() -> None:
    assert zfs.send_parts(zfs.send_full(SNAP, ["-w", "-c"])) == ("tank/data@s2", None, ("-w", "-c"))
    assert zfs.send_parts(zfs.send_incremental(BASE, SNAP, False, ["-L"])) == ("tank/data@s2", "tank/data@s1", ("-L",))
    assert zfs.send_parts(zfs.send_incremental(BASE, SNAP, True)) is None  # -I: not a form lzc estimates
    assert zfs.send_parts(["zfs", "send", "-t", "token"]) is None  # a resume: no snapshot at the end
    assert zfs.send_parts(["zfs", "send", "-i"]) is None
    assert zfs.send_parts(["zfs", "send", "tank/data@s1", "-i"]) is None
    assert zfs.send_parts(["zfs", "receive", "tank/data"]) is None


def test_space_request_only_for_sends_lzc_estimates_alike() -> None:
    assert space_request(zfs.send_full(SNAP)) == SpaceRequest("tank/data@s2", None, ())
    assert space_request(zfs.send_incremental(MARK, SNAP, False, ["-w", "-c", "-L"])) == SpaceRequest(
        "tank/data@s2", "tank/data#b1", ("compress", "large_blocks", "raw")
    )
    assert space_request(zfs.send_incremental(BASE, SNAP, True)) is None  # -I: every snapshot between
    assert space_request(zfs.send_full(SNAP, ["-R"])) is None
    assert space_request(zfs.send_full(SNAP, ["-p"])) is None
    assert space_request(["zfs", "send", "tank/data"]) is None  # not a snapshot
    assert space_request(["zfs", "send", "tank/../x@s1"]) is None
    assert space_request(["zfs", "send", "tank/data@s1\nimport os"]) is None
    assert space_request(["zfs", "send", "-i", "tank/data#b1", "tank/data#b2"]) is None  # the target is a bookmark


def test_request_line_is_one_json_line() -> None:
    line = SpaceRequest("tank/a b@s1", "tank/a b#x", ("raw",)).line()
    assert line == b'{"snapshot": "tank/a b@s1", "from": "tank/a b#x", "flags": ["raw"]}\n'


def test_parse_ready_and_answer() -> None:
    assert parse_ready(b'{"ready": true}')
    assert not parse_ready(b'{"ready": false}')
    assert not parse_ready(b"Traceback (most recent call last):")
    assert parse_answer(b'{"size": 42030704}') == 42030704
    assert parse_answer(b'{"error": "SnapshotNotFound", "message": "[Errno 2] x"}') == "SnapshotNotFound: [Errno 2] x"
    assert isinstance(parse_answer(b'{"size": -1}'), str)
    assert isinstance(parse_answer(b'{"size": "12"}'), str)
    assert isinstance(parse_answer(b"[1]"), str)
    assert isinstance(parse_answer(b"garbage"), str)


STAND_IN = """\
import os
import time

def lzc_send_space(snapname, fromsnap, flags):
    if snapname.endswith(b"@gone"):
        raise LookupError(snapname)
    if snapname.endswith(b"@die"):
        os._exit(1)
    if snapname.endswith(b"@slow"):
        time.sleep(60)
    open(os.environ["LZC_PIDS"], "a").write(f"{os.getpid()}\\n")
    return 1000 * len(snapname) + (len(fromsnap) if fromsnap else 0) + 100000 * len(flags)
"""


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `libzfs_core` the local helper imports; returns the file where it records its process ids."""
    (tmp_path / "libzfs_core").mkdir()
    (tmp_path / "libzfs_core" / "__init__.py").write_text(textwrap.dedent(STAND_IN))
    pids = tmp_path / "pids"
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("LZC_PIDS", str(pids))
    return pids


def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_helper_answers_many_requests_from_one_process(stand_in: Path) -> None:
    space = SendSpace(lambda: Host())
    try:
        assert space.available is None
        assert space.estimate(zfs.send_full(SNAP)) == 1000 * len("tank/data@s2")
        assert space.available is True
        incremental = zfs.send_incremental(MARK, SNAP, False, ["-c", "-w"])
        assert space.estimate(incremental) == 1000 * len("tank/data@s2") + len("tank/data#b1") + 200000
        assert space.estimate(zfs.send_incremental(BASE, SNAP, True)) is None  # -I: the CLI answers
        assert space.estimate(zfs.send_full(Version("tank/data", "gone", 0, 0, 0))) is None  # its error: the CLI's
        assert space.estimate(zfs.send_full(SNAP)) == 1000 * len("tank/data@s2")
        assert len(set(_pids(stand_in))) == 1
    finally:
        space.close()
    assert space.estimate(zfs.send_full(SNAP)) is None  # closed: starts nothing


def test_a_helper_that_died_is_started_again(stand_in: Path) -> None:
    space = SendSpace(lambda: Host())
    try:
        assert space.estimate(zfs.send_full(SNAP)) is not None
        assert space.estimate(zfs.send_full(Version("tank/data", "die", 0, 0, 0))) is None  # died mid-request
        assert space.estimate(zfs.send_full(SNAP)) is not None
        first, second = _pids(stand_in)[0], _pids(stand_in)[-1]
        assert first != second
        os.kill(second, signal.SIGKILL)  # died between requests
        assert space.estimate(zfs.send_full(SNAP)) is not None
        assert space.available is True
        assert len(set(_pids(stand_in))) == 3
    finally:
        space.close()
    for pid in set(_pids(stand_in)):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_without_pyzfs_the_cli_answers_and_the_probe_is_not_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "libzfs_core").mkdir()  # a libzfs_core that does not import, as where pyzfs is missing
    (tmp_path / "libzfs_core" / "__init__.py").write_text("raise ImportError('No module named libzfs_core')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    started: list[int] = []

    def host() -> Host:
        started.append(1)
        return Host()

    space = SendSpace(host)
    assert space.estimate(zfs.send_full(SNAP)) is None
    assert space.available is False
    assert space.estimate(zfs.send_full(SNAP)) is None
    assert started == [1]
    space.close()


def test_close_ends_an_estimate_under_way_at_once(stand_in: Path) -> None:
    space = SendSpace(lambda: Host())
    space.prepare()
    answers: list[object] = []
    asking = threading.Thread(
        target=lambda: answers.append(space.estimate(zfs.send_full(Version("p/d", "slow", 0, 0, 0))))
    )
    asking.start()
    deadline = time.monotonic() + 30
    while space.available is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert space.available is True  # probed in the background
    time.sleep(0.3)  # the request is with the helper now
    started = time.monotonic()
    space.close()
    asking.join(timeout=10)
    assert answers == [None]
    assert time.monotonic() - started < 5
