"""`--compare-snapshot-lists` and `--monitor-snapshots` on real OpenZFS: a crafted divergence
(source-only, destination-only, common, bookmark-only) compared locally and through ssh, and the
monitor's Nagios exit codes for fresh, warning, critical and missing."""

from __future__ import annotations

from tests.integration.test_remote import host_zferry
from tests.integration.vm import GUEST_CHECKOUT, Vm

Row = tuple[str, str, str, int]


def diverge(vm: Vm, src: str, dst: str) -> dict[str, int]:
    """Replicate src (and src/child) once, then diverge; return the GUIDs of the root's versions by name."""
    out = vm.sh(f"""
        zfs create {src}/child
        for s in s1 s2 s3; do zfs snapshot -r {src}@$s; done
        (cd {GUEST_CHECKOUT} && PYTHONPATH=src python3 -m zferry -q -r {src} {dst})
        zfs snapshot {src}@srconly
        zfs snapshot {dst}@dstonly
        zfs bookmark {src}@s2 {src}#b2
        zfs destroy {src}@s2
        zfs list -H -p -t snapshot,bookmark -o name,guid -d 1 {src} {dst}
    """)
    return {name.split(src if name.startswith(src) else dst, 1)[1]: int(guid) for name, guid in _split(out)}


def _split(out: str) -> list[tuple[str, str]]:
    return [(line.split("\t")[0], line.split("\t")[1]) for line in out.splitlines()]


def rows(stdout: str) -> list[Row]:
    lines = stdout.splitlines()
    assert lines[0].split("\t")[:4] == ["location", "dataset", "name", "guid"]
    return [(f[0], f[1], f[2], int(f[3])) for f in (line.split("\t") for line in lines[1:])]


def test_compare_a_crafted_divergence_locally_and_through_ssh(vm: Vm, roots: tuple[str, str], ssh_config: str) -> None:
    src, dst = roots
    guids = diverge(vm, src, dst)
    child = vm.snapshot_guids(f"{src}/child")
    result = vm.zferry("-r", "--compare-snapshot-lists", src, dst)
    expected_root = [
        ("all", "", "@s1", guids["@s1"]),
        ("all", "", "#b2", guids["#b2"]),
        ("all", "", "@s3", guids["@s3"]),
        ("src", "", "@srconly", guids["@srconly"]),
        ("dst", "", "@dstonly", guids["@dstonly"]),
    ]
    expected_child = [("all", "/child", f"@s{i}", child[f"@s{i}"]) for i in (1, 2, 3)]
    assert rows(result.stdout) == expected_root + expected_child
    assert guids["#b2"] == vm.snapshot_guids(dst)["@s2"]  # the bookmark is common with the replicated @s2
    assert "3 common, 1 only on the source, 1 only on the destination; latest common @s3" in result.stderr
    first = result.stdout.splitlines()[1].split("\t")
    created = vm.sh(f"zfs get -H -p -o value creation,createtxg,written {src}@s1").split()
    assert first[5:8] == created and first[4].endswith("Z")
    assert result.stdout.splitlines()[2].split("\t")[7] == "-"  # a bookmark has no written bytes

    only_src = vm.zferry("--compare-snapshot-lists=src", "--exclude-dataset", "child", "-r", src, dst)
    assert rows(only_src.stdout) == [("src", "", "@srconly", guids["@srconly"])]
    filtered = vm.zferry("--compare-snapshot-lists", "--exclude-snapshot-regex", "(src|dst)only", src, dst)
    assert rows(filtered.stdout) == expected_root[:3]

    cfg = ["--ssh-src-config-file", ssh_config, "--ssh-dst-config-file", ssh_config]
    remote = host_zferry(*cfg, "-r", "--compare-snapshot-lists", f"zfvm-a:{src}", f"zfvm-b:{dst}")
    assert rows(remote.stdout) == expected_root + expected_child


def test_monitor_exit_codes_fresh_warning_critical_missing(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    vm.sh(f"zfs snapshot {src}@prod_onsite_2026-12-07_10:00:00_hourly; zfs snapshot {src}@other")

    def plan(warning: str, critical: str) -> str:
        return str({"prod": {"onsite": {"hourly": {"warning": warning, "critical": critical}}}})

    def check(*args: str) -> tuple[int, str]:
        result = vm.zferry("--monitor-snapshots", *args, check=False)
        assert len(result.stdout.splitlines()) >= 1
        return result.returncode, result.stdout

    code, out = check("{'prod': {", src, "dummy")
    assert code == 3 and out.startswith("ZFERRY UNKNOWN - ")  # bad usage is UNKNOWN in monitor mode
    code, out = check(plan("1 hours", "2 hours"), src, "dummy")
    assert code == 0 and out.startswith("ZFERRY OK - ")
    assert f"'{src}:prod_onsite_*_hourly:latest'=" in out and ";3600;7200;0;" in out
    cache = ["--cache-snapshots", "--cache-dir", f"/tmp/{src.replace('/', '_')}-cache"]
    for _ in range(2):  # listed and stored, then from the cache (snapshots_changed did not move)
        code, out = check(plan("1 hours", "2 hours"), *cache, src, "dummy")
        assert code == 0 and f"'{src}:prod_onsite_*_hourly:latest'=" in out
    vm.sh("sleep 2")
    code, out = check(plan("1 seconds", "2 hours"), src, "dummy")
    assert code == 1 and out.startswith("ZFERRY WARNING - ")
    code, out = check(plan("1 seconds", "1 seconds"), src, "dummy")
    assert code == 2 and out.startswith("ZFERRY CRITICAL - ")
    code, out = check(plan("1 seconds", "1 seconds"), "--monitor-snapshots-dont-crit", src, "dummy")
    assert code == 0 and "1 critical" in out
    code, out = check(plan("1 hours", "2 hours"), src, f"{dst}/missing")
    assert code == 3 and out.startswith("ZFERRY UNKNOWN - ") and "does not exist" in out
    code, out = check(str({"prod": {"offsite": {"daily": {"critical": "2 days"}}}}), src, "dummy")
    assert code == 2 and "no snapshot prod_offsite_*_daily" in out
