"""`--compare-snapshot-lists`: the merge by GUID, selectors, TSV escaping, streaming memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest

from zferry.errors import ZferryError
from zferry.model import Version
from zferry.observe.compare import (
    Entry,
    compare_dataset,
    escape,
    filtered,
    locations,
    tsv_row,
    without_shadowed_bookmarks,
)
from zferry.select.regex import NameFilter, compile_patterns
from zferry.select.snapshots import SnapshotFilter, SnapshotGroup
from zferry.select.times import parse_times_and_ranks

ALL = frozenset({"src", "dst", "all"})


def entry(name: str, guid: int, txg: int, written: int | None = 100) -> Entry:
    bookmark = name.startswith("#")
    return Version("pool/ds", name[1:], guid, txg, 1_700_000_000 + txg, bookmark), None if bookmark else written


def run(src: list[Entry], dst: list[Entry], show: frozenset[str] = ALL) -> tuple[list[tuple[str, str]], object]:
    out: list[str] = []
    counts = compare_dataset("/c", lambda: iter(src), lambda: iter(dst), show, out.append)
    return [(line.split("\t")[0], line.split("\t")[2]) for line in out], counts


def test_merge_by_guid_src_only_dst_only_common_and_bookmark_only() -> None:
    src = [entry("@a", 1, 10), entry("#b", 2, 11), entry("@c", 3, 12), entry("#d", 4, 13)]
    dst = [entry("@a", 1, 50), entry("@b", 2, 51), entry("@x", 9, 52)]
    printed, counts = run(src, dst)
    assert printed == [("all", "@a"), ("all", "#b"), ("src", "@c"), ("src", "#d"), ("dst", "@x")]
    assert (counts.common, counts.src_only, counts.dst_only) == (2, 2, 1)  # type: ignore[attr-defined]
    assert counts.latest_common.tag == "#b"  # type: ignore[attr-defined]


def test_renamed_snapshots_are_common_by_guid_not_by_name() -> None:
    printed, _ = run([entry("@old", 7, 1)], [entry("@new", 7, 1), entry("@old", 8, 2)])
    assert printed == [("all", "@old"), ("dst", "@old")]


@pytest.mark.parametrize(
    ("selector", "shown"),
    [("src", {"src"}), ("dst", {"dst"}), ("all", {"all"}), ("src+dst", {"src", "dst"}), ("src+dst+all", set(ALL))],
)
def test_the_selector_limits_the_printed_locations(selector: str, shown: set[str]) -> None:
    printed, counts = run(
        [entry("@a", 1, 1), entry("@s", 2, 2)], [entry("@a", 1, 1), entry("@d", 3, 3)], locations(selector)
    )
    assert {loc for loc, _ in printed} == shown
    assert (counts.common, counts.src_only, counts.dst_only) == (1, 1, 1)  # type: ignore[attr-defined]


def test_an_unknown_selector_is_refused() -> None:
    with pytest.raises(ZferryError, match="not one of"):
        locations("both")


def test_the_destination_is_listed_again_only_for_rows_of_its_own() -> None:
    calls = []

    def dst() -> Iterator[Entry]:
        calls.append(1)
        yield entry("@a", 1, 1)

    compare_dataset("", lambda: iter([entry("@a", 1, 1)]), dst, ALL, lambda _: None)
    assert len(calls) == 1


def test_a_bookmark_shadowed_by_its_snapshot_is_dropped() -> None:
    listing = [entry("@a", 1, 5), entry("#a", 1, 5), entry("#b", 2, 6), entry("#b2", 2, 6), entry("@c", 3, 7)]
    assert [v.tag for v, _ in without_shadowed_bookmarks(listing)] == ["@a", "#b", "@c"]
    reversed_tie = [entry("#a", 1, 5), entry("@a", 1, 5)]
    assert [v.tag for v, _ in without_shadowed_bookmarks(reversed_tie)] == ["@a"]


def test_tsv_row_and_escaping() -> None:
    row = tsv_row("all", "/c", entry("@a", 123, 10, written=4096)).split("\t")
    assert row == ["all", "/c", "@a", "123", "2023-11-14T22:13:30Z", "1700000010", "10", "4096"]
    assert tsv_row("src", "", entry("#b", 1, 1)).split("\t")[-1] == "-"
    assert escape("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re"
    assert escape("plain name") == "plain name"


def test_filters_stream_by_name_and_hold_only_for_ranks() -> None:
    entries = [entry(f"@s{i}", i, i) for i in range(10)]
    names = SnapshotFilter((SnapshotGroup(NameFilter(compile_patterns(["s[0-4]"], "x"))),))
    assert [v.name for v, _ in filtered(iter(entries), names, 2e9)] == [f"s{i}" for i in range(5)]
    latest = SnapshotFilter((SnapshotGroup(times_and_ranks=(parse_times_and_ranks(["notime", "latest 2"]),)),))
    assert [v.name for v, _ in filtered(iter(entries), latest, 2e9)] == ["s8", "s9"]


def _many(n: int, offset: int = 0) -> Iterator[Entry]:
    for i in range(n):
        yield (
            Version("pool/ds", f"zferry_onsite_2026-01-01_00:00:{i:06d}_hourly", i + offset, i, 1_700_000_000 + i),
            4096,
        )


def test_100k_snapshots_stream_in_bounded_memory() -> None:
    n = 100_000
    tracemalloc.start()
    written = 0

    def write(line: str) -> None:
        nonlocal written
        written += len(line)

    counts = compare_dataset("", lambda: _many(n), lambda: _many(n, offset=n // 2), ALL, write)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (counts.common, counts.src_only, counts.dst_only) == (n // 2, n // 2, n // 2)
    tracemalloc.start()
    held = list(_many(n))
    _, full_list = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del held
    assert peak < full_list / 2, (peak, full_list)  # two GUID sets, never a whole listing
