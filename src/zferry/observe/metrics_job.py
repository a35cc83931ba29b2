"""`--metrics-file`: a job's report as Prometheus text, for node_exporter's textfile collector.

Written by the engine after every run (`ExecutionSettings.metrics_file`), so every front end (the
CLI, daemon mode, the jobrunner) gets it. One sample set per pair (labels job, src, dst); see
`observe/metrics.py` for the families and how counters accumulate across runs.

The lag of a pair is the age of the newest snapshot present on both sides (by GUID) at the end of
the run; for a recursive pair, the largest among its datasets (the dataset furthest behind is the
one to alert on). Datasets without a common snapshot do not count; a pair with none has no lag
sample. Creation times come from the run's listing when it read them (lifecycle options do), else
from one `zfs list -o guid,creation` of those snapshots on the source, remembered by GUID for the
session: daemon mode pays it only for snapshots it has not seen.

Writing is best effort: a failure is a warning, never a failed run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Callable, Optional

from zferry import zfs
from zferry.errors import ZferryError
from zferry.inventory import Side
from zferry.model import Version
from zferry.observe.host_clock import host_time
from zferry.observe.metrics import PairMetrics, write_metrics

if TYPE_CHECKING:
    from zferry.engine import Event, JobReport, PairResult, Session

log = logging.getLogger("zferry")
Label = tuple[str, str]


class StartedPairs:
    """Passes the engine's events on, noting when each pair started: a pair whose run raised an
    error has no result in the report, but its attempt (and failure) belongs in the metrics."""

    def __init__(self, emit: Callable[[Event], None]) -> None:
        self.emit = emit
        self.started: dict[Label, float] = {}

    def __call__(self, event: Event) -> None:
        if event.kind == "pair_started" and event.pair is not None:
            self.started[event.pair] = time.time()
        self.emit(event)


def lag_seconds(common: Iterable[Version], creations: Mapping[int, int], now: float) -> Optional[float]:
    """The largest age at `now` among `common` (one snapshot per dataset); creation times of 0 are
    looked up in `creations` (by GUID); None when no creation time is known. Pure."""
    ages = []
    for version in common:
        created = version.creation or creations.get(version.guid, 0)
        if created:
            ages.append(max(0.0, now - created))
    return max(ages) if ages else None


def pair_metrics(job: str, result: PairResult) -> PairMetrics:
    """One pair's numbers from its result. Pure."""
    replication = result.replication
    return PairMetrics(
        job=job,
        src=result.src,
        dst=result.dst,
        started=result.started,
        finished=result.finished,
        ok=result.ok,
        bytes_sent=replication.bytes_sent if replication else 0,
        snapshots_sent=result.snapshots_sent,
        snapshots_created=result.lifecycle.created,
        snapshots_deleted=result.lifecycle.deleted,
        datasets_failed=result.datasets_failed,
        lag_seconds=result.lag_seconds,
    )


def job_metrics(report: JobReport, started: Mapping[Label, float]) -> list[PairMetrics]:
    """Every pair of the report, and a failed attempt for each pair that started but has no result. Pure."""
    out = [pair_metrics(report.job_name, result) for result in report.pairs]
    done = {(r.src, r.dst) for r in report.pairs}
    for (src, dst), when in started.items():
        if (src, dst) not in done:
            out.append(PairMetrics(report.job_name, src, dst, when, report.finished, ok=False, datasets_failed=1))
    return out


def _fetch_creations(session: Session, side: Side, versions: Sequence[Version]) -> None:
    """Creation times of `versions` not yet known, in one zfs call on their host, into the session's memo."""
    missing = [v.full_name for v in versions if not v.creation and v.guid not in session.creations]
    for batch in zfs.argument_batches(missing):
        out = session.runner.run(side.host, zfs.list_creation(batch), classify=zfs.classify_error)
        session.creations.update(zfs.parse_creation(out))


def fill_lags(session: Session, report: JobReport) -> None:
    """Set each pair result's `lag_seconds` (a zfs call per pair only for unknown creation times)."""
    for (src, _), result in zip(session.config.pairs, report.pairs):
        common = list(result.replication.latest_common.values()) if result.replication else []
        if not common or session.runner.cancel.is_set():
            continue
        side = session.connector.side(src, session.config.ssh.src)
        try:
            _fetch_creations(session, side, common)
        except ZferryError as error:
            log.warning("%s: cannot read snapshot creation times for the lag metric: %s", result.src, error)
            continue
        result.lag_seconds = lag_seconds(common, session.creations, host_time(side.caps))


def write(path: str, session: Session, report: JobReport, started: StartedPairs) -> None:
    """Fill in the lags and write `path` atomically; any failure is logged as a warning."""
    try:
        fill_lags(session, report)
        write_metrics(path, job_metrics(report, started.started))
    except (OSError, ZferryError) as error:
        log.warning("cannot write the metrics file %s: %s", path, error)
