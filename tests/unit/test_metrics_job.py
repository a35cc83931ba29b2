"""The engine's reports as metrics (pure parts) and the session's reuse, without ZFS."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from zferry import engine
from zferry.engine import Event, ExecutionSettings, JobConfig, JobReport, PairResult, Session
from zferry.lifecycle.pair_job import LifecycleReport
from zferry.model import Version
from zferry.observe import metrics_job
from zferry.observe.metrics import render
from zferry.replicate import PairReport


def _snap(name: str, guid: int, creation: int = 0) -> Version:
    return Version("tank/a", name, guid, guid, creation)


def test_lag_is_the_largest_age_among_the_datasets() -> None:
    common = [_snap("s1", 1, creation=900), _snap("s2", 2), _snap("s3", 3)]
    assert metrics_job.lag_seconds(common, {2: 990}, now=1000.0) == 100.0  # s3's creation is unknown
    assert metrics_job.lag_seconds([_snap("s2", 2)], {2: 1001}, now=1000.0) == 0.0  # clocks differ a bit
    assert metrics_job.lag_seconds([_snap("s3", 3)], {}, now=1000.0) is None


def test_job_metrics_from_a_report_including_a_pair_that_raised() -> None:
    replication = PairReport("tank/a", "backup/a", snapshots_sent=3, bytes_sent=4096)
    lifecycle = LifecycleReport(created=1, deleted=2)
    result = PairResult("tank/a", "backup/a", replication, lifecycle, 10.0, 12.5, lag_seconds=7.0)
    report = JobReport("db", 10.0, 20.0, [result])
    started = {("tank/a", "backup/a"): 10.0, ("tank/b", "backup/b"): 13.0}
    rows = metrics_job.job_metrics(report, started)
    assert [(m.src, m.ok, m.snapshots_sent, m.bytes_sent, m.lag_seconds) for m in rows] == [
        ("tank/a", True, 3, 4096, 7.0),
        ("tank/b", False, 0, 0, None),
    ]
    families = {f.name: f for f in text_string_to_metric_families(render(rows))}
    failed = [s for s in families["zferry_datasets_failed"].samples if s.labels["src"] == "tank/b"]
    assert failed[0].value == 1 and failed[0].labels["job"] == "db"
    assert families["zferry_run_duration_seconds"].samples[0].value == 2.5


def test_started_pairs_pass_events_on() -> None:
    seen: list[Event] = []
    tracker = metrics_job.StartedPairs(seen.append)
    tracker(Event("pair_started", "", ("a", "b")))
    tracker(Event("pair_finished", "ok", ("a", "b")))
    assert len(seen) == 2 and list(tracker.started) == [("a", "b")]


def test_a_session_stays_usable_between_runs_and_writes_metrics(tmp_path: Path) -> None:
    prom = tmp_path / "zferry.prom"
    job = JobConfig((), execution=ExecutionSettings(lock_dir=str(tmp_path / "locks"), metrics_file=str(prom)))
    with Session(job) as session:
        connections = session.connections
        for _ in range(2):
            assert session.run_once().exit_code == 0
            assert not session.runner.cancel.is_set()  # a run does not stop the next one
        assert session.connections is connections
    assert session.runner.cancel.is_set()  # closing does
    assert prom.exists() and "# TYPE zferry_lag_seconds gauge" in prom.read_text()
    assert engine.run(job).exit_code == 0


def test_an_unwritable_metrics_file_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "missing-dir" / "zferry.prom"
    job = JobConfig((), execution=ExecutionSettings(lock_dir=str(tmp_path / "locks"), metrics_file=str(path)))
    assert engine.run(job).exit_code == 0
    assert "cannot write the metrics file" in caplog.text
