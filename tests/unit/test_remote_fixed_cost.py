"""The fixed cost of a remote run: a pair whose two sides are different remote hosts connects to
both at once (each ssh handshake costs a second or more); one host, or a local side, is connected
once, source first. The source's stored compression is asked once, and can be asked early (while
the snapshots are held), only for streams that cross the network."""

from __future__ import annotations

import threading
import time

from zferry.endpoints import Connector
from zferry.exec.host import Host
from zferry.exec.ssh import SshSide
from zferry.inventory import Side
from zferry.model import Endpoint


class _Timed(Connector):
    """`side` takes 0.2 s and records when each started and ended."""

    def __init__(self) -> None:
        self.spans: dict[str, tuple[float, float]] = {}
        self.order: list[str] = []
        self._guard = threading.Lock()

    def side(self, endpoint: Endpoint, ssh: SshSide) -> Side:
        started = time.monotonic()
        with self._guard:
            self.order.append(endpoint.dataset)
        time.sleep(0.2)
        self.spans[endpoint.dataset] = (started, time.monotonic())
        return Side(Host(endpoint.host), endpoint.dataset)


def _overlap(connector: _Timed) -> bool:
    (a0, a1), (b0, b1) = connector.spans["s"], connector.spans["d"]
    return a0 < b1 and b0 < a1


def test_two_remote_hosts_are_connected_at_once() -> None:
    connector = _Timed()
    src, dst = connector.sides(Endpoint("s", "a"), SshSide(), Endpoint("d", "b"), SshSide())
    assert src is not None and dst is not None and (src.root, dst.root) == ("s", "d")
    assert _overlap(connector)


def test_one_host_or_a_local_side_is_connected_in_turn_source_first() -> None:
    for src_host, dst_host in (("a", "a"), (None, "b"), ("a", None)):
        connector = _Timed()
        connector.sides(Endpoint("s", src_host), SshSide(), Endpoint("d", dst_host), SshSide())
        assert connector.order == ["s", "d"] and not _overlap(connector)
    connector = _Timed()
    assert connector.sides(None, SshSide(), Endpoint("d", "b"), SshSide()) == (None, Side(Host("b"), "d"))


class _Runner:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def run(self, host: Host, argv: list[str], **_: object) -> str:
        self.calls.append(argv)
        return "src/r\tcompression\tlz4\tlocal\nsrc/r\trefcompressratio\t1.00x\t-\n"


def test_the_sources_stored_compression_is_asked_once_and_early_only_across_the_network() -> None:
    from zferry.exec.probe import Capabilities
    from zferry.model import Dataset
    from zferry.stream_choice import CompressionChoice
    from zferry.transfer import StreamOptions

    caps = Capabilities(True, frozenset({"zstd"}))
    src, dst = Side(Host("a"), "src/r", caps), Side(Host("b"), "dst/r", caps)
    runner = _Runner()
    choice = CompressionChoice(runner, src, dst, StreamOptions(), False)  # type: ignore[arg-type]
    assert choice.asks_source
    choice.fetch()
    assert not choice.asks_source and len(runner.calls) == 1
    assert not choice.pays(["zfs", "send", "src/r@s1"], Dataset("src/r"))  # incompressible: 1.00x
    assert len(runner.calls) == 1
    local = CompressionChoice(runner, Side(Host(), "src/r", caps), Side(Host(), "dst/r", caps), StreamOptions(), False)  # type: ignore[arg-type]
    assert not local.asks_source
