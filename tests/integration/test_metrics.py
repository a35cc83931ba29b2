"""`--metrics-file` on real OpenZFS: zferry runs in the VM, the file is read back and parsed with
prometheus_client's text-format parser."""

from __future__ import annotations

import json
import time

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.vm import Vm

FAMILIES = {
    "zferry_last_success_timestamp_seconds": "gauge",
    "zferry_last_attempt_timestamp_seconds": "gauge",
    "zferry_last_run_ok": "gauge",
    "zferry_lag_seconds": "gauge",
    "zferry_run_duration_seconds": "gauge",
    "zferry_datasets_failed": "gauge",
    "zferry_sent_bytes": "counter",  # the parser drops `_total` from a counter family's name
    "zferry_sent_snapshots": "counter",
    "zferry_created_snapshots": "counter",
    "zferry_deleted_snapshots": "counter",
}


def read_metrics(vm: Vm, path: str, labels: dict[str, str]) -> dict[str, float]:
    """The file's samples for one pair, by sample name; every family is there with its type."""
    text = vm.sh(f"cat {path}")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {name: f.type for name, f in families.items()} == FAMILIES
    samples = {}
    for family in families.values():
        for sample in family.samples:
            assert sample.labels == labels, sample
            samples[sample.name] = sample.value
    return samples


def test_metrics_file_per_pair_accumulates_across_runs(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    prom = f"/tmp/{src.replace('/', '_')}.prom"
    vm.sh(f"""
        rm -f {prom}
        zfs create {src}/a; zfs create {src}/b
        head -c 2M /dev/urandom > /{src}/a/data
        zfs snapshot -r {src}@s1; zfs snapshot -r {src}@s2
    """)
    labels = {"job": "metrics-test", "src": src, "dst": dst}
    before = time.time()
    vm.zferry("-r", "--job-name", "metrics-test", "--metrics-file", prom, src, dst)
    first = read_metrics(vm, prom, labels)
    assert first["zferry_sent_snapshots_total"] == 6  # 3 datasets x 2
    assert first["zferry_sent_bytes_total"] > 2 * 1024 * 1024  # pv counted the streams
    assert first["zferry_created_snapshots_total"] == first["zferry_deleted_snapshots_total"] == 0
    assert first["zferry_last_run_ok"] == 1 and first["zferry_datasets_failed"] == 0
    assert 0 <= first["zferry_lag_seconds"] < 120  # s2 was taken moments ago (creation read by GUID)
    success = first["zferry_last_success_timestamp_seconds"]
    assert success == first["zferry_last_attempt_timestamp_seconds"] and abs(success - before) < 300
    assert 0 < first["zferry_run_duration_seconds"] < 300
    assert vm.sh(f"stat -c %a {prom}").strip() == "644"

    vm.sh(f"zfs snapshot -r {src}@s3")
    plan = json.dumps({"m": {"t": {"hourly": 2}}})
    vm.zferry(
        "-r",
        "--job-name",
        "metrics-test",
        "--metrics-file",
        prom,
        "--create-src-snapshots",
        "--create-src-snapshots-plan",
        plan,
        src,
        dst,
    )
    second = read_metrics(vm, prom, labels)
    assert second["zferry_created_snapshots_total"] == 3
    assert second["zferry_sent_snapshots_total"] == 6 + 6  # s3 and the new hourly one, on 3 datasets
    assert second["zferry_sent_bytes_total"] > first["zferry_sent_bytes_total"]
    assert 0 <= second["zferry_lag_seconds"] < 120
    assert second["zferry_last_success_timestamp_seconds"] >= success


def test_a_failed_run_keeps_the_last_success(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    prom = f"/tmp/{src.replace('/', '_')}.prom"
    vm.sh(f"rm -f {prom}; zfs snapshot {src}@s1")
    vm.zferry("--job-name", "m", "--metrics-file", prom, src, dst)
    vm.sh(f"zfs snapshot {dst}@diverged; zfs snapshot {src}@s2")  # the destination diverged: the run fails
    failed = vm.zferry("--job-name", "m", "--metrics-file", prom, src, dst, check=False)
    assert failed.returncode == 1
    samples = read_metrics(vm, prom, {"job": "m", "src": src, "dst": dst})
    assert samples["zferry_last_run_ok"] == 0 and samples["zferry_datasets_failed"] == 1
    assert samples["zferry_last_success_timestamp_seconds"] < samples["zferry_last_attempt_timestamp_seconds"]
    assert samples["zferry_sent_snapshots_total"] == 1
