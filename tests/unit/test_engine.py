"""The engine API without ZFS: job names, reports, and the CLI building a job configuration."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from zferry import engine, validate
from zferry.cli.main import build_job_config, main, parse_arguments
from zferry.engine import JobConfig, JobReport, PairResult
from zferry.errors import Interrupted, UsageError
from zferry.lifecycle.pair_job import LifecycleReport
from zferry.model import Endpoint
from zferry.replicate import PairReport

PAIRS = ((Endpoint("tank/a"), Endpoint("backup/a", "nas")),)


def test_default_job_name_is_stable_and_depends_on_the_pairs() -> None:
    name = JobConfig(PAIRS).name
    assert name == JobConfig(PAIRS).name and name.startswith("job-") and len(name) == 12
    assert JobConfig(((Endpoint("tank/b"), Endpoint("backup/b")),)).name != name
    assert JobConfig(PAIRS, job_name="db").name == "db"
    validate.job_name(name)


@pytest.mark.parametrize("bad", ["", "-x", "a/b", "a b", "x" * 65, "a;rm", "../up"])
def test_invalid_job_names_are_refused(bad: str) -> None:
    with pytest.raises(UsageError, match="invalid job name"):
        validate.job_name(bad)


def test_cli_refuses_an_invalid_job_name_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--job-name", "a/b", "tank/a", "backup/a"]) == 2
    assert "invalid job name" in capsys.readouterr().err


def test_cli_options_become_one_job_config() -> None:
    job = build_job_config(
        parse_arguments(
            ["--job-name", "nightly", "--lock-wait", "5", "--timeout", "60", "-r", "tank/a", "nas:backup/a"]
        )
    )
    assert job.name == "nightly" and job.pairs == PAIRS
    assert job.replication.recursive and job.execution.lock_wait == 5 and job.execution.timeout == 60


def _result(ok: bool) -> PairResult:
    replication = PairReport("a", "b", updated=["a"], snapshots_sent=3, failed={} if ok else {"a/x": "boom"})
    return PairResult("a", "b", replication, LifecycleReport(), 1.0, 2.0)


def test_report_exit_code_and_counts() -> None:
    report = JobReport("j", 0.0, pairs=[_result(True)])
    assert report.exit_code == 0 and report.pairs[0].snapshots_sent == 3 and report.pairs[0].datasets_failed == 0
    report.pairs.append(_result(False))
    assert report.exit_code == 1 and report.pairs[1].datasets_failed == 1


def test_a_set_cancel_token_stops_the_run_before_any_pair(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    events: list[engine.Event] = []
    config = JobConfig(
        ((Endpoint("pool/a"), Endpoint("pool2/a")),), execution=engine.ExecutionSettings(lock_dir=str(tmp_path))
    )
    with pytest.raises(Interrupted):
        engine.run(config, events=events.append, cancel=cancel)
    assert [e.kind for e in events if e.kind == "pair_finished"] == []
