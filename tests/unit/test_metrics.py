"""Prometheus rendering, escaping, merging and lag."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from zferry.observe.metrics import (
    PairMetrics,
    lag_seconds,
    name_warning,
    parse_previous,
    render,
    write_metrics,
)


def _samples(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, sample.labels["src"], sample.labels["dst"])] = sample.value
    return out


def _pair(ok: bool = True, finished: float = 1000.0, src: str = "tank/a", **kw: object) -> PairMetrics:
    return PairMetrics(job="j", src=src, dst="backup/a", started=990.0, finished=finished, ok=ok, **kw)  # type: ignore[arg-type]


def test_render_parses_and_carries_values() -> None:
    text = render([_pair(bytes_sent=4096, snapshots_sent=2, lag_seconds=3.5)])
    s = _samples(text)
    assert s[("zferry_sent_bytes_total", "tank/a", "backup/a")] == 4096
    assert s[("zferry_sent_snapshots_total", "tank/a", "backup/a")] == 2
    assert s[("zferry_lag_seconds", "tank/a", "backup/a")] == 3.5
    assert s[("zferry_run_duration_seconds", "tank/a", "backup/a")] == 10
    assert s[("zferry_last_success_timestamp_seconds", "tank/a", "backup/a")] == 1000
    assert "# TYPE zferry_sent_bytes_total counter" in text


def test_label_escaping_round_trips() -> None:
    odd = 'host:tank/"x"\\y\nz'
    s = _samples(render([_pair(src=odd)]))
    assert ("zferry_last_run_ok", odd, "backup/a") in s
    assert ("zferry_last_run_ok", odd, "backup/a") in {
        (k[0], k[1], k[2]) for k in _samples(render([_pair(src=odd)], parse_previous(render([_pair(src=odd)]))))
    }


def test_failing_run_keeps_last_success_and_accumulates_counters() -> None:
    first = render([_pair(bytes_sent=100, snapshots_sent=1)])
    second = render([_pair(ok=False, finished=2000.0, bytes_sent=0, datasets_failed=1)], parse_previous(first))
    s = _samples(second)
    key = ("tank/a", "backup/a")
    assert s[("zferry_last_success_timestamp_seconds", *key)] == 1000
    assert s[("zferry_last_attempt_timestamp_seconds", *key)] == 2000
    assert s[("zferry_datasets_failed", *key)] == 1
    assert s[("zferry_sent_bytes_total", *key)] == 100
    assert s[("zferry_last_run_ok", *key)] == 0


def test_failing_first_run_has_no_last_success() -> None:
    s = _samples(render([_pair(ok=False)]))
    assert ("zferry_last_success_timestamp_seconds", "tank/a", "backup/a") not in s


def test_lag_uses_newest_common_guid() -> None:
    assert lag_seconds({"g1": 100.0, "g2": 200.0, "g3": 300.0}, ["g1", "g2"], 250.0) == 50.0
    assert lag_seconds({"g1": 100.0}, ["other"], 250.0) is None


def test_name_warning() -> None:
    assert name_warning("/var/lib/node_exporter/zferry.prom") is None
    assert "prom" in (name_warning("/tmp/zferry.txt") or "")


def test_write_is_atomic_0644_and_merges(tmp_path: Path) -> None:
    path = str(tmp_path / "z.prom")
    write_metrics(path, [_pair(snapshots_sent=2)])
    write_metrics(path, [_pair(snapshots_sent=3, finished=1100.0)])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    s = _samples(Path(path).read_text())
    assert s[("zferry_sent_snapshots_total", "tank/a", "backup/a")] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["z.prom"]


def test_a_write_keeps_other_jobs_samples_and_replaces_its_own(tmp_path: Path) -> None:
    path = str(tmp_path / "zferry.prom")
    write_metrics(path, [_pair(src="tank/gone"), _pair(src="tank/a")])
    other = PairMetrics("jobrunner.h.run.replicate.nas", "tank/b", "backup/b", 990.0, 1000.0, ok=True, snapshots_sent=2)
    write_metrics(path, [other])
    write_metrics(path, [_pair(src="tank/a", finished=2000.0)])  # job j no longer has tank/gone
    samples = _samples(Path(path).read_text())
    assert samples[("zferry_sent_snapshots_total", "tank/b", "backup/b")] == 2
    assert samples[("zferry_last_attempt_timestamp_seconds", "tank/a", "backup/a")] == 2000
    assert not [key for key in samples if key[1] == "tank/gone"]


def test_sub_jobs_writing_one_file_from_threads_lose_no_update(tmp_path: Path) -> None:
    """The jobrunner's sub-jobs run in threads of one process and may share one --metrics-file."""
    path = str(tmp_path / "zferry.prom")
    runs = 40

    def sub_job(job: str) -> None:
        for _ in range(runs):
            write_metrics(path, [PairMetrics(job, f"{job}/src", "dst", 1.0, 2.0, ok=True, snapshots_sent=1)])

    threads = [threading.Thread(target=sub_job, args=(f"jobrunner.h.{name}",)) for name in ("create", "replicate")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    samples = _samples(Path(path).read_text())
    for name in ("create", "replicate"):
        assert samples[("zferry_sent_snapshots_total", f"jobrunner.h.{name}/src", "dst")] == runs
