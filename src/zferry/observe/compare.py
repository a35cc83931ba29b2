"""`--compare-snapshot-lists`: which snapshots and bookmarks each side of a pair has, matched by GUID.

Output is TSV on the front end's stream, a header and then one row per snapshot or bookmark:
location (`src` only on the source, `dst` only on the destination, `all` on both), the dataset
relative to its root (`` for the root, `/child`), the name (`@snap`, `#bookmark`), guid,
creation (ISO 8601 UTC and unix seconds), createtxg and written bytes (`-` for a bookmark). A
bookmark whose snapshot (same GUID) is on the same side is left out: the snapshot stands for it.
An `all` row shows the source's entry (a source bookmark whose snapshot reached the destination
is common: it still serves as the incremental base).

Within a dataset, the rows of the source (`src`, `all`) come first in the source's createtxg
order, then the destination-only rows in the destination's createtxg order (createtxg counts
per pool, so the two cannot be interleaved by it). Memory stays bounded by the GUID sets of one
dataset: each listing is read line by line, once for the other side's GUIDs and again to print,
and the destination is read a second time only when it has rows of its own to print.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Optional, TextIO

from zferry import zfs
from zferry.engine import JobConfig, Pair
from zferry.errors import ZferryError
from zferry.exec.runner import Runner
from zferry.inventory import Side, list_datasets
from zferry.model import Version
from zferry.observe.readonly import Session, human_duration, read_only_session
from zferry.select.datasets import DatasetFilter
from zferry.select.snapshots import SnapshotFilter

log = logging.getLogger("zferry")
SELECTORS = ("src", "dst", "all", "src+dst", "src+dst+all")
DEFAULT_SELECTOR = "src+dst+all"
HEADER = "location\tdataset\tname\tguid\tcreation\tcreation_unix\tcreatetxg\twritten"
Entry = tuple[Version, Optional[int]]
"""A listed snapshot or bookmark and its written bytes (None for a bookmark)."""
Listing = Callable[[], Iterable[Entry]]
"""Lists one dataset of one side afresh each time it is called, oldest first by createtxg."""


# -- pure parts --------------------------------------------------------------------------------


def locations(selector: str) -> frozenset[str]:
    """The locations a `--compare-snapshot-lists` value prints: `src+dst` -> {src, dst}."""
    if selector not in SELECTORS:
        raise ZferryError(f"--compare-snapshot-lists: {selector!r} is not one of {', '.join(SELECTORS)}")
    return frozenset(selector.split("+"))


def escape(text: str) -> str:
    """A TSV field: backslash, tab, newline and carriage return as `\\\\`, `\\t`, `\\n`, `\\r`."""
    if not any(c in text for c in "\\\t\n\r"):
        return text
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def iso_utc(unix: int) -> str:
    """Unix seconds as ISO 8601 in UTC: `2026-12-07T10:22:25Z`."""
    return datetime.fromtimestamp(unix, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tsv_row(location: str, rel_dataset: str, entry: Entry) -> str:
    """One output line (without its newline)."""
    version, written = entry
    fields = (
        location,
        escape(rel_dataset),
        escape(version.tag),
        str(version.guid),
        iso_utc(version.creation),
        str(version.creation),
        str(version.createtxg),
        "-" if written is None else str(written),
    )
    return "\t".join(fields)


def without_shadowed_bookmarks(entries: Iterable[Entry]) -> Iterator[Entry]:
    """Drop each bookmark whose GUID a snapshot (or an earlier bookmark) of the same listing has.

    A bookmark has its snapshot's createtxg, so in a createtxg-ordered listing both fall into one
    run of equal createtxg: only that run is held.
    """
    run: list[Entry] = []
    for entry in entries:
        if run and entry[0].createtxg != run[0][0].createtxg:
            yield from _distinct(run)
            run = []
        run.append(entry)
    yield from _distinct(run)


def _distinct(run: list[Entry]) -> Iterator[Entry]:
    if len(run) == 1:
        yield run[0]
        return
    snapshots = {v.guid for v, _ in run if not v.is_bookmark}
    seen: set[int] = set()
    for entry in run:
        version = entry[0]
        if version.is_bookmark and (version.guid in snapshots or version.guid in seen):
            continue
        seen.add(version.guid)
        yield entry


def filtered(entries: Iterable[Entry], snapshots: SnapshotFilter, now: float) -> Iterable[Entry]:
    """The entries the snapshot filters select (bookmarks by the same rules), still streaming
    unless a rank filter (`latest 10`) needs the whole list of the dataset."""
    if snapshots.selects_all:
        return entries
    if any(step.ranks for group in snapshots.groups for step in group.times_and_ranks):
        held = list(entries)
        chosen = {id(v) for v in snapshots.select([v for v, _ in held], now)}
        return [e for e in held if id(e[0]) in chosen]
    return (e for e in entries if snapshots.select([e[0]], now))


@dataclass
class DatasetCounts:
    """What one dataset's comparison found."""

    rel_dataset: str
    src_only: int = 0
    dst_only: int = 0
    common: int = 0
    latest_common: Optional[Version] = None

    def summary(self, src: str, dst: str, now: float) -> str:
        """One log line: counts, and the latest common snapshot with its age."""
        if self.latest_common is None:
            latest = "no common snapshot"
        else:
            age = human_duration(now - self.latest_common.creation)
            latest = f"latest common {self.latest_common.tag} ({age} old)"
        return (
            f"{src} vs {dst}: {self.common} common, {self.src_only} only on the source, "
            f"{self.dst_only} only on the destination; {latest}"
        )


def compare_dataset(
    rel_dataset: str, src: Listing, dst: Listing, show: frozenset[str], write: Callable[[str], None]
) -> DatasetCounts:
    """Merge one dataset's two listings by GUID, writing the rows of the `show`n locations as it goes.

    Reads the destination for its GUIDs, then the source (writing `src` and `all` rows), then,
    if some destination GUID is not on the source and `dst` is shown, the destination again.
    """
    counts = DatasetCounts(rel_dataset)
    dst_guids = {version.guid for version, _ in dst()}
    src_guids: set[int] = set()
    for entry in src():
        version = entry[0]
        src_guids.add(version.guid)
        if version.guid in dst_guids:
            counts.common += 1
            counts.latest_common = version
            location = "all"
        else:
            counts.src_only += 1
            location = "src"
        if location in show:
            write(tsv_row(location, rel_dataset, entry))
    counts.dst_only = len(dst_guids - src_guids)
    if counts.dst_only and "dst" in show:
        for entry in dst():
            if entry[0].guid not in src_guids:
                write(tsv_row("dst", rel_dataset, entry))
    return counts


# -- the job -------------------------------------------------------------------------------------


@dataclass
class CompareReport:
    """Per root pair, the counts of each compared dataset."""

    pairs: list[tuple[str, str, list[DatasetCounts]]] = field(default_factory=list)
    exit_code: int = 0


def compare(
    config: JobConfig,
    out: TextIO,
    selector: str = DEFAULT_SELECTOR,
    cancel: Optional[threading.Event] = None,
    runner: Optional[Runner] = None,
) -> CompareReport:
    """Compare each pair's snapshot lists: TSV rows to `out`, a summary per dataset in the log.

    Takes no lock and changes nothing. Datasets are selected on both sides by the dataset
    filters (relative names), snapshots and bookmarks by the snapshot filters.
    """
    show = locations(selector)
    report = CompareReport()
    out.write(HEADER + "\n")
    with read_only_session(config, cancel, runner) as session:
        for pair in config.pairs:
            session.runner.check_cancelled()
            report.pairs.append((str(pair[0]), str(pair[1]), _compare_pair(session, pair, show, out)))
    out.flush()
    return report


def _compare_pair(session: Session, pair: Pair, show: frozenset[str], out: TextIO) -> list[DatasetCounts]:
    src, dst = session.sides(pair)
    replication = session.config.replication
    src_names = _selected(session.runner, src, replication.datasets, replication.recursive)
    dst_names = _selected(session.runner, dst, replication.datasets, replication.recursive)
    if src is not None and not src_names:
        raise ZferryError(f"source dataset {src} does not exist or no dataset is selected; check the name and filters")
    results = []
    now = time.time()

    def write(line: str) -> None:
        out.write(line + "\n")

    for rel in sorted(set(src_names) | set(dst_names)):
        session.runner.check_cancelled()
        counts = compare_dataset(
            rel,
            _listing(session.runner, src, rel if rel in src_names else None, replication.snapshots, now),
            _listing(session.runner, dst, rel if rel in dst_names else None, replication.snapshots, now),
            show,
            write,
        )
        log.info("%s", counts.summary(_label(src, rel), _label(dst, rel), now))
        results.append(counts)
    return results


def _label(side: Optional[Side], rel: str) -> str:
    return "dummy" if side is None else f"{side}{rel}"


def _selected(runner: Runner, side: Optional[Side], datasets: DatasetFilter, recursive: bool) -> list[str]:
    """The selected datasets of a side, relative to its root (`` and `/child`); none for dummy or missing."""
    if side is None:
        return []
    props = [datasets.exclude_property] if datasets.exclude_property else []
    found = list_datasets(runner, side, props, recursive)
    if found is None:
        return []
    user_props = {d.name: d.user_props for d in found.values()}
    return [n[len(side.root) :] for n in datasets.select(side.root, list(found), user_props, recursive)]


def _listing(
    runner: Runner, side: Optional[Side], rel: Optional[str], snapshots: SnapshotFilter, now: float
) -> Listing:
    """Lists `rel` on `side` line by line each time it is called (nothing when it is not there)."""
    if side is None or rel is None:
        return lambda: ()
    host, argv = side.host, zfs.list_versions_by_txg(side.root + rel)

    def entries() -> Iterator[Entry]:
        parsed = (zfs.parse_version_line(line) for line in runner.lines(host, argv, classify=zfs.classify_error))
        yield from filtered(without_shadowed_bookmarks(parsed), snapshots, now)

    return entries
