"""Prometheus text exposition of one run's per-pair results (node_exporter textfile collector).

Pure rendering, escaping, merging with the previous file and lag computation; the only I/O is
`read_previous` and `write_atomically`. Counters (`_total`) accumulate across runs by adding the
previous file's value for the same labels; `last_success` survives failing runs the same way.
Several jobs may share one file (the jobrunner's sub-jobs do): a write replaces the samples of
its own jobs and keeps the other jobs' samples; writers in one process take turns (`_WRITING`).
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

LabelKey = tuple[str, str, str]  # (job, src, dst)
Previous = dict[str, dict[LabelKey, float]]


@dataclass(frozen=True)
class PairMetrics:
    """One pair's numbers from one run."""

    job: str
    src: str
    dst: str
    started: float
    finished: float
    ok: bool
    bytes_sent: int = 0
    snapshots_sent: int = 0
    snapshots_created: int = 0
    snapshots_deleted: int = 0
    datasets_failed: int = 0
    lag_seconds: Optional[float] = None


# name, type, help; counters accumulate, gauges describe the last run.
_FAMILIES: Sequence[tuple[str, str, str]] = (
    ("zferry_last_success_timestamp_seconds", "gauge", "Unix time the last successful run of the pair finished."),
    ("zferry_last_attempt_timestamp_seconds", "gauge", "Unix time the last run of the pair finished, ok or not."),
    ("zferry_last_run_ok", "gauge", "1 if the last run of the pair succeeded, else 0."),
    (
        "zferry_lag_seconds",
        "gauge",
        "Age of the newest snapshot present on both sides (by GUID) at the end of the last run.",
    ),
    ("zferry_run_duration_seconds", "gauge", "Wall time of the pair in the last run."),
    ("zferry_datasets_failed", "gauge", "Datasets of the pair that failed in the last run."),
    (
        "zferry_sent_bytes_total",
        "counter",
        "Stream bytes sent, accumulated over runs (counted where the stream passes this host).",
    ),
    ("zferry_sent_snapshots_total", "counter", "Snapshots sent, accumulated over runs."),
    ("zferry_created_snapshots_total", "counter", "Snapshots created, accumulated over runs."),
    ("zferry_deleted_snapshots_total", "counter", "Snapshots deleted, accumulated over runs."),
)
_COUNTER_FIELDS = {
    "zferry_sent_bytes_total": "bytes_sent",
    "zferry_sent_snapshots_total": "snapshots_sent",
    "zferry_created_snapshots_total": "snapshots_created",
    "zferry_deleted_snapshots_total": "snapshots_deleted",
}

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def escape_label(value: str) -> str:
    """Escape a label value per the text format: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unescape(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append("\n" if nxt == "n" else nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_previous(text: str) -> Previous:
    """Samples of an earlier file by metric name and (job, src, dst); unknown lines are skipped."""
    found: Previous = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = {k: _unescape(v) for k, v in _LABEL.findall(match.group(2))}
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        key = (labels.get("job", ""), labels.get("src", ""), labels.get("dst", ""))
        found.setdefault(match.group(1), {})[key] = value
    return found


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _values(pair: PairMetrics, previous: Previous) -> dict[str, Optional[float]]:
    key = (pair.job, pair.src, pair.dst)
    last_success = pair.finished if pair.ok else previous.get("zferry_last_success_timestamp_seconds", {}).get(key)
    values: dict[str, Optional[float]] = {
        "zferry_last_success_timestamp_seconds": last_success,
        "zferry_last_attempt_timestamp_seconds": pair.finished,
        "zferry_last_run_ok": 1.0 if pair.ok else 0.0,
        "zferry_lag_seconds": pair.lag_seconds,
        "zferry_run_duration_seconds": max(0.0, pair.finished - pair.started),
        "zferry_datasets_failed": float(pair.datasets_failed),
    }
    for name, field in _COUNTER_FIELDS.items():
        values[name] = previous.get(name, {}).get(key, 0.0) + float(getattr(pair, field))
    return values


def render(pairs: Iterable[PairMetrics], previous: Optional[Previous] = None) -> str:
    """The exposition text for `pairs`, merged with `previous` (last success, counters); the
    samples of `previous` whose job is none of `pairs`' are kept as they were."""
    prev = previous or {}
    rows = [((p.job, p.src, p.dst), _values(p, prev)) for p in pairs]
    jobs = {key[0] for key, _ in rows}
    lines: list[str] = []
    for name, kind, help_text in _FAMILIES:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        kept = [(key, value) for key, value in prev.get(name, {}).items() if key[0] not in jobs]
        for (job, src, dst), value in [*kept, *((key, values[name]) for key, values in rows)]:
            if value is None:
                continue
            labels = f'job="{escape_label(job)}",src="{escape_label(src)}",dst="{escape_label(dst)}"'
            lines.append(f"{name}{{{labels}}} {_number(value)}")
    return "\n".join(lines) + "\n"


def lag_seconds(src_snapshots: Mapping[str, float], dst_guids: Iterable[str], now: float) -> Optional[float]:
    """Age of the newest source snapshot (guid -> creation) whose GUID the destination has."""
    common = set(dst_guids)
    times = [created for guid, created in src_snapshots.items() if guid in common]
    return max(0.0, now - max(times)) if times else None


def name_warning(path: str) -> Optional[str]:
    """A warning if node_exporter's textfile collector would ignore `path`."""
    if path.endswith(".prom"):
        return None
    return f"--metrics-file {path}: node_exporter's textfile collector reads only files ending in .prom"


def read_previous(path: str) -> Previous:
    """The parsed earlier file, or nothing when it does not exist or cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_previous(handle.read())
    except (OSError, UnicodeDecodeError):
        return {}


def write_atomically(path: str, text: str) -> None:
    """Temp file in the same directory, fsync, mode 0644, rename over `path`. Raises OSError."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".prom-tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # nosec B103 - world-readable is the point: node_exporter reads it
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_WRITING = threading.Lock()  # read, merge, replace: one writer at a time, or a sub-job's samples get lost


def write_metrics(path: str, pairs: Sequence[PairMetrics]) -> None:
    """Merge with the file already at `path` and replace it atomically."""
    with _WRITING:
        write_atomically(path, render(pairs, read_previous(path)))
