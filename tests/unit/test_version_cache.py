"""The destination snapshot-list cache: valid only while snapshots_changed holds and safely after it."""

from __future__ import annotations

from pathlib import Path

from tests.unit.fixtures import history
from zferry.exec.probe import parse_probe
from zferry.model import Version
from zferry.observe.version_cache import VersionCache


def test_hit_only_while_snapshots_changed_holds(tmp_path: Path) -> None:
    cache = VersionCache(str(tmp_path), "host", "pool/root")
    snaps = history("a b c", dataset="pool/root/x")
    cache.store("pool/root/x", 1000, snaps, listed_at=1010)
    cache.save()
    again = VersionCache(str(tmp_path), "host", "pool/root")
    hit = again.lookup("pool/root/x", 1000)
    assert hit is not None and [(v.name, v.guid, v.createtxg) for v in hit] == [
        (v.name, v.guid, v.createtxg) for v in snaps
    ]
    assert again.lookup("pool/root/x", 1001) is None  # a snapshot came or went
    assert again.lookup("pool/root/x", None) is None  # no snapshots_changed: never trust the cache
    assert VersionCache(str(tmp_path), "otherhost", "pool/root").lookup("pool/root/x", 1000) is None


def test_not_stored_when_listed_in_the_same_seconds_as_the_change(tmp_path: Path) -> None:
    cache = VersionCache(str(tmp_path), "h", "p")
    cache.store("p/x", 1000, history("a"), listed_at=1001.5)
    assert cache.lookup("p/x", 1000) is None
    cache.store("p/x", 1000, history("a"), listed_at=float("-inf"))  # a remote host whose clock is unknown
    assert cache.lookup("p/x", 1000) is None
    cache.store("p/x", 1000, history("a"), listed_at=1002, guid="5")
    assert cache.lookup("p/x", 1000, "5") is not None
    assert cache.lookup("p/x", 1000, "6") is None  # another dataset renamed into its place


def test_unreadable_cache_file_is_a_miss(tmp_path: Path) -> None:
    (tmp_path / "versions-h:p.json").write_text("{not json")
    assert VersionCache(str(tmp_path), "h", "p").lookup("p", 1) is None


def test_probe_learns_the_remote_clock() -> None:
    caps = parse_probe(
        "uid=0 now=2000 zfsver=2.3.2-2~bpo12+2\nzstd\n", started=1000.0, ended=1002.0, ended_monotonic=7.0
    )
    assert caps.clock_offset == 999.0 and caps.clock_error == 2.0 and caps.has("zstd")
    assert caps.host_clock == (2000, 7.0) and caps.zfs_version == (2, 3) and caps.programs == {"zstd"}
    assert parse_probe("uid=0 now=2000 zfsver=\n", 1.0, 2.0).zfs_version is None


def test_bookmarks_are_kept_and_older_files_read(tmp_path: Path) -> None:
    """The source is cached too: its bookmarks (bases once their snapshot is gone) come back as bookmarks."""
    cache = VersionCache(str(tmp_path), "h", "p")
    snap = history("a", dataset="p/x")[0]
    mark = Version("p/x", "a", snap.guid, snap.createtxg, 0, is_bookmark=True)
    cache.store("p/x", 1000, [snap, mark], listed_at=1010)
    cache.save()
    hit = VersionCache(str(tmp_path), "h", "p").lookup("p/x", 1000)
    assert hit is not None and [v.is_bookmark for v in hit] == [False, True] and hit[1].full_name == "p/x#a"
    (tmp_path / "versions-h:p.json").write_text('{"p/y": [1000, [["b", 7, 3]]]}')  # written before bookmarks
    old = VersionCache(str(tmp_path), "h", "p").lookup("p/y", 1000)
    assert old is not None and old[0].full_name == "p/y@b" and not old[0].is_bookmark
