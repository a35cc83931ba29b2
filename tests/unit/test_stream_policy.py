"""When compressing a stream that crosses the network pays, and the pipelines that follow."""

from __future__ import annotations

from zferry import zfs
from zferry.exec.host import LOCAL, Host
from zferry.exec.probe import Capabilities
from zferry.stream_policy import (
    StoredCompression,
    compression_pays,
    parse_stored_compression,
    sends_stored_blocks,
)
from zferry.transfer import StreamOptions, may_compress, transfer_stages

ALL = Capabilities(True, frozenset({"zstd", "mbuffer", "pv"}))
SEND = ["zfs", "send", "tank/a@s1"]
RECV = ["zfs", "receive", "-u", "backup/a"]
QUIET = StreamOptions(progress_interval=0)
B = Host("hostb")
RANDOM = StoredCompression("lz4", 1.00)
TEXT = StoredCompression("lz4", 3.52)
UNCOMPRESSED = StoredCompression("off", 1.00)


def test_the_stored_compression_is_read_from_zfs_get() -> None:
    out = (
        "tank/a\tcompression\tlz4\tlocal\ntank/a\trefcompressratio\t1.03\t-\n"
        "tank/b\tcompression\toff\tdefault\ntank/b\trefcompressratio\t1.00x\t-\n"
        "tank/c\tcompression\tzstd\tinherited from tank\ntank/c\trefcompressratio\t-\t-\n"
    )
    stored = parse_stored_compression(zfs.parse_properties(out))
    assert stored == {"tank/a": StoredCompression("lz4", 1.03), "tank/b": UNCOMPRESSED}
    assert zfs.get_compression("tank", recursive=False)[-2:] == ["compression,refcompressratio", "tank"]
    assert "-r" in zfs.get_compression("tank")


def test_send_flags_that_pass_blocks_as_stored() -> None:
    assert not sends_stored_blocks(["zfs", "send", "-L", "-e", "-I", "tank/a@s1", "tank/a@s2"])
    assert not sends_stored_blocks(["zfs", "send", "-P", "-t", "1-abc-cw"])  # a token is no flag
    for flags in (["-c"], ["--compressed"], ["-w"], ["--raw"], ["-Lec"], ["-L", "-wp"]):
        assert sends_stored_blocks(["zfs", "send", *flags, "tank/a@s1"]), flags


def test_compression_is_skipped_only_where_it_cannot_pay() -> None:
    assert not compression_pays(SEND, RANDOM)  # ZFS found the data incompressible
    assert compression_pays(SEND, TEXT)
    assert not compression_pays(["zfs", "send", "-c", "tank/a@s1"], TEXT)  # blocks arrive compressed
    assert compression_pays(SEND, UNCOMPRESSED)  # compression off: the ratio says nothing
    assert compression_pays(["zfs", "send", "-c", "tank/a@s1"], UNCOMPRESSED)  # -c of an uncompressed dataset
    assert compression_pays(SEND, None)  # unknown: compress, as always
    assert not compression_pays(["zfs", "send", "-w", "tank/a@s1"], UNCOMPRESSED, encrypted=True)
    assert compression_pays(["zfs", "send", "-w", "tank/a@s1"], UNCOMPRESSED, encrypted=False)
    assert compression_pays(SEND, StoredCompression("lz4", 1.10))  # the threshold pays
    for stored in (RANDOM, TEXT, UNCOMPRESSED, None):
        assert compression_pays(["zfs", "send", "-w", "x@s"], stored, encrypted=True, when="always")


def test_an_incompressible_stream_crosses_the_network_without_zstd() -> None:
    compressed = transfer_stages(SEND, RECV, LOCAL, B, ALL, ALL, ALL, QUIET)
    plain = transfer_stages(SEND, RECV, LOCAL, B, ALL, ALL, ALL, QUIET, compressible=False)
    assert "zstd" in [s.argv[0] for s in compressed]
    assert "zstd" not in [s.argv[0] for s in plain]
    assert may_compress(LOCAL, B, ALL, ALL, QUIET)
    assert not may_compress(LOCAL, LOCAL, ALL, ALL, QUIET)  # nothing crosses a network
    assert not may_compress(B, B, ALL, ALL, QUIET)
    assert not may_compress(LOCAL, B, ALL, Capabilities(True, frozenset()), QUIET)
    assert not may_compress(LOCAL, B, ALL, ALL, StreamOptions(compression=None))
