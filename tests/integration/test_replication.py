"""Local replication on real OpenZFS: zferry runs inside the VM, between pools `src` and `dst`."""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.vm import GUEST_CHECKOUT, Vm
from tests.integration.zferry_holds import release_zferry_holds

DR_EXCLUDED = "-x zferry:dr-role -x zferry:dr-epoch"  # every receive excludes the DR state properties
NEW_CHAIN = "-L -c -e"  # the send flags of a new chain (--zfs-send-default-flags), kept by its incrementals
RECORDED = "-o zferry:send-flags=Lce"  # the full receive records them on the destination


def make(vm: Vm, root: str, datasets: list[str], snapshots: list[str], mib: int = 0) -> None:
    """Create datasets under `root` (relative names) and take recursive snapshots of `root`."""
    lines = [f"zfs create -p {root}/{d}" for d in datasets]
    if mib:
        lines.append(f"head -c {mib}M /dev/urandom > /{root}/data")
    lines += [f"zfs snapshot -r {root}@{s}" for s in snapshots]
    vm.sh("\n".join(lines))


def test_full_then_incremental_with_matching_guids(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-REP-002.1: full send of the oldest, then incrementals; FR-REP-003.1: -I from the common one."""
    src, dst = roots
    make(vm, src, [], ["s1", "s2"], mib=1)
    first = vm.zferry("-v", "-v", src, dst)
    assert re.search(
        rf"zfs send {NEW_CHAIN} {src}@s1 \| (pv [^|]+\| )?zfs receive -u -s {DR_EXCLUDED} {RECORDED} {dst}",
        first.output,
    )
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
    vm.sh(f"zfs snapshot {src}@s3; zfs snapshot {src}@s4")
    second = vm.zferry("-v", "-v", src, dst)
    assert f"zfs send {NEW_CHAIN} -I {src}@s2 {src}@s4" in second.output
    assert list(vm.snapshot_guids(dst)) == ["@s1", "@s2", "@s3", "@s4"]
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
    third = vm.zferry("-v", src, dst)
    assert "up to date" in third.output and "zfs send" not in third.output


def test_no_stream_sends_only_the_latest(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-REP-003.2: --no-stream uses -i, intermediate snapshots are not sent."""
    src, dst = roots
    make(vm, src, [], ["s1", "s2"])
    vm.zferry(src, dst)
    vm.sh(f"zfs snapshot {src}@s3; zfs snapshot {src}@s4")
    result = vm.zferry("-v", "-v", "--no-stream", src, dst)
    assert f"zfs send {NEW_CHAIN} -i {src}@s2 {src}@s4" in result.output
    assert list(vm.snapshot_guids(dst)) == ["@s1", "@s2", "@s4"]


def test_no_stream_first_run_sends_only_the_latest_in_full(vm: Vm, roots: tuple[str, str]) -> None:
    """--no-stream on an empty destination: the latest selected snapshot alone, in full (as syncoid, bzfs)."""
    src, dst = roots
    make(vm, src, [], ["s1", "s2", "s3"])
    result = vm.zferry("-v", "-v", "--no-stream", "--exclude-snapshot-regex", "s3", src, dst)
    assert re.search(rf"zfs send {NEW_CHAIN} {src}@s2 \| (pv [^|]+\| )?zfs receive", result.output), result.output
    assert not re.search(rf"zfs send [^|]*{src}@s1", result.output), result.output
    assert vm.snapshot_guids(dst) == {"@s2": vm.snapshot_guids(src)["@s2"]}


@pytest.mark.one_zfs  # the tree walk and its order are zferry's own
def test_three_level_tree_of_30_datasets(vm: Vm, roots: tuple[str, str]) -> None:
    """-r: every descendant, parents before children; re-run replicates incrementally."""
    src, dst = roots
    tree = [f"a{i}" for i in range(3)] + [f"a{i}/b{j}" for i in range(3) for j in range(3)]
    tree += [f"a{i}/b{j}/c{k}" for i in range(3) for j in range(3) for k in range(2)]
    assert len(tree) + 1 == 31
    make(vm, src, tree, ["s1", "s2"])
    vm.zferry("-r", "--threads", "4", src, dst)
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
    assert len(vm.datasets(dst)) == 31
    vm.sh(f"zfs snapshot -r {src}@s3")
    result = vm.zferry("-r", "--threads", "4", src, dst)
    assert "31 updated (31 snapshots sent)" in result.output
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_recursive_noop_costs_a_constant_number_of_zfs_calls(vm: Vm, roots: tuple[str, str]) -> None:
    """Metadata is read in bulk: a no-op run lists each side in two calls (datasets, snapshots);
    with the snapshot cache (the default on OpenZFS >= 2.2) in one (datasets and snapshots_changed)."""
    src, dst = roots
    make(vm, src, [f"d{i}" for i in range(12)], ["s1"])
    vm.zferry("-r", src, dst)
    shim, log = f"/opt/zfs-count-{src.replace('/', '_')}", f"/tmp/zfs-calls-{src.replace('/', '_')}"
    counting = f"""
        mkdir -p {shim}
        printf '#!/bin/sh\\necho "$*" >> {log}\\nexec /usr/sbin/zfs "$@"\\n' > {shim}/zfs
        chmod +x {shim}/zfs; rm -f {log}
    """
    vm.sh(counting)
    vm.zferry("-r", "--no-cache-snapshots", src, dst, env=f"PATH={shim}:$PATH")
    calls = vm.sh(f"cat {log}").splitlines()
    assert len(calls) == 4, calls
    assert all(c.startswith("list ") for c in calls)
    assert sum("snapshot,bookmark -o name,guid,createtxg -r" in c for c in calls) == 2  # the fast path
    if vm.zfs_version < (2, 2):
        return
    vm.zferry("-r", src, dst)  # fills the caches (the last changes are seconds old)
    vm.sh(counting)
    vm.zferry("-r", src, dst, env=f"PATH={shim}:$PATH")
    calls = vm.sh(f"cat {log}").splitlines()
    assert len(calls) == 2 and all("snapshots_changed" in c for c in calls), calls


def test_missing_destination_parents_are_created(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    make(vm, src, [], ["s1"])
    vm.zferry(src, f"{dst}/deep/er/copy")
    assert vm.snapshot_guids(f"{dst}/deep/er/copy") == vm.snapshot_guids(src)


def test_dataset_filters_exclude_whole_subtrees(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-FLT-002 (exclude wins, subtree skipped) and FR-FLT-003 (exclude by user property)."""
    src, dst = roots
    make(vm, src, ["project/temp/deep", "project/keep", "private/x", "flagged/child", "other"], ["s1"])
    vm.sh(f"zfs set com.corp:no_backup=true {src}/flagged")
    vm.zferry(
        "-r",
        "--exclude-dataset-regex",
        ".*/temp",
        "--exclude-dataset",
        "private",
        "--exclude-dataset-property",
        "com.corp:no_backup",
        src,
        dst,
    )
    assert sorted(vm.datasets(dst)) == ["", "/other", "/project", "/project/keep"]


def test_include_dataset_selects_a_subtree(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    make(vm, src, ["a/b", "c"], ["s1"])
    vm.zferry("-r", "--include-dataset", "a", "--include-dataset-regex", "!.*", src, dst)
    # dst root and dst/a's parent are created empty; only a and a/b carry snapshots
    assert sorted(vm.snapshot_guids(dst)) == ["/a/b@s1", "/a@s1"]


def test_snapshot_regex_filters(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-FLT-004: include daily, exclude onsite."""
    src, dst = roots
    make(vm, src, [], ["offsite_2023_daily", "onsite_2023_daily", "offsite_2023_hourly", "offsite_2024_daily"])
    vm.zferry("--include-snapshot-regex", ".*_daily", "--exclude-snapshot-regex", ".*onsite.*", src, dst)
    assert list(vm.snapshot_guids(dst)) == ["@offsite_2023_daily", "@offsite_2024_daily"]


def test_diverged_destination_fails_without_force_and_changes_nothing(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-REP-006.1."""
    src, dst = roots
    make(vm, src, [], ["s1"])
    vm.zferry(src, dst)
    vm.sh(f"zfs snapshot {dst}@local; zfs snapshot {src}@s2")
    before = vm.snapshot_guids(dst)
    result = vm.zferry(src, dst, check=False)
    assert result.returncode == 1
    assert "--force-rollback-to-latest-common-snapshot" in result.output and "@local" in result.output
    assert vm.snapshot_guids(dst) == before


def test_force_rollback_to_latest_common_snapshot(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-REP-006.2."""
    src, dst = roots
    make(vm, src, [], ["s1"])
    vm.zferry(src, dst)
    vm.sh(f"zfs snapshot {dst}@local; zfs snapshot {src}@s2")
    vm.zferry("--force-rollback-to-latest-common-snapshot", src, dst)
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_force_with_conflicting_snapshots_rolls_back(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    make(vm, src, [], ["s1"])
    vm.zferry(src, dst)
    vm.sh(f"zfs snapshot {dst}@local1; zfs snapshot {dst}@local2; zfs snapshot {src}@s2")
    vm.zferry("--force", src, dst)
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_unrelated_destination_needs_force_for_full_resync(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-REP-002.2: nothing in common -> error; with --force: destroy and full replication."""
    src, dst = roots
    make(vm, src, [], ["s1", "s2"])
    vm.sh(f"zfs create {dst}; zfs snapshot {dst}@unrelated")
    refused = vm.zferry(src, dst, check=False)
    assert refused.returncode == 1 and "--force" in refused.output
    assert list(vm.snapshot_guids(dst)) == ["@unrelated"]
    vm.zferry("--force", src, dst)
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_destination_with_data_but_no_snapshots_is_not_overwritten(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    make(vm, src, [], ["s1"])
    vm.sh(f"zfs create {dst}; head -c 3M /dev/urandom > /{dst}/precious; zpool sync")
    refused = vm.zferry(src, dst, check=False)
    assert refused.returncode == 1 and "holds data" in refused.output
    assert vm.sh(f"ls /{dst}").split() == ["precious"]


def test_force_rollback_to_latest_snapshot_discards_destination_changes(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    make(vm, src, [], ["s1"])
    vm.zferry(src, dst)
    vm.sh(f"zfs mount {dst}; echo changed > /{dst}/edit; zfs snapshot {src}@s2")
    refused = vm.zferry(src, dst, check=False)
    assert refused.returncode == 1 and "--force-rollback-to-latest-snapshot" in refused.output
    vm.zferry("--force-rollback-to-latest-snapshot", src, dst)
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_bookmark_is_used_when_the_source_snapshot_is_gone(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-REP-005: incremental from #s2 after @s2 was destroyed on the source."""
    src, dst = roots
    make(vm, src, [], ["s1", "s2"])
    vm.zferry("--create-bookmarks=none", src, dst)  # this test makes its bookmark by hand
    vm.sh(release_zferry_holds(src) + f"zfs bookmark {src}@s2 {src}#s2; zfs destroy {src}@s2; zfs snapshot {src}@s3")
    result = vm.zferry("-v", "-v", src, dst)
    assert f"zfs send {NEW_CHAIN} -i '{src}#s2' {src}@s3" in result.output
    assert list(vm.snapshot_guids(dst)) == ["@s1", "@s2", "@s3"]


def test_dryrun_changes_nothing_and_prints_commands(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-USA-003.1."""
    src, dst = roots
    make(vm, src, ["child"], ["s1", "s2"])
    result = vm.zferry("--dryrun", "-r", src, dst)
    assert f"zfs send {NEW_CHAIN} {src}@s1" in result.output and "zfs receive" in result.output
    assert not vm.exists(dst)


def test_dryrun_recv_streams_into_receive_n(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-USA-003.2."""
    src, dst = roots
    make(vm, src, [], ["s1"])
    vm.sh(f"zfs create {dst}")
    result = vm.zferry("--dryrun=recv", "-v", "-v", src, dst)
    assert "zfs receive -u -s -F -n" in result.output
    assert vm.snapshot_guids(dst) == {}


@pytest.mark.one_zfs  # zferry's error policy
def test_skip_on_error_policies(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-REL-002: a diverged child fails; dataset/tree/fail decide what else runs."""
    src, dst = roots
    make(vm, src, ["bad/kid", "good"], ["s1"])
    vm.zferry("-r", src, dst)
    vm.sh(f"zfs snapshot -r {src}@s2; zfs snapshot {dst}/bad@local")
    tree = vm.zferry("-r", "--threads", "1", "--skip-on-error", "tree", src, dst, check=False)
    assert tree.returncode == 1
    got = vm.snapshot_guids(dst)
    assert "/good@s2" in got and "/bad/kid@s2" not in got and "/bad@s2" not in got
    per_dataset = vm.zferry("-r", "--skip-on-error", "dataset", src, dst, check=False)
    assert per_dataset.returncode == 1
    assert "/bad/kid@s2" in vm.snapshot_guids(dst)
    vm.sh(f"zfs snapshot -r {src}@s3")
    fail = vm.zferry("-r", "--threads", "1", "--skip-on-error", "fail", src, dst, check=False)
    assert fail.returncode == 1
    assert "/bad/kid@s3" not in vm.snapshot_guids(dst)  # children of the failure never start


def test_argument_file_with_pairs(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-USA-005."""
    src, dst = roots
    make(vm, src, ["one", "two"], ["s1"])
    vm.sh(f"printf '{src}/one\\t{dst}/one\\n# comment\\n{src}/two\\t{dst}/two\\n' > /tmp/pairs.tsv")
    vm.zferry("+/tmp/pairs.tsv")
    assert sorted(vm.snapshot_guids(dst)) == ["/one@s1", "/two@s1"]


def test_interrupted_receive_is_resumed(vm: Vm, roots: tuple[str, str]) -> None:
    """A partial stream leaves a resume token; the next run continues with zfs send -t."""
    src, dst = roots
    make(vm, src, [], ["s1"], mib=24)
    vm.sh(f"zfs send {src}@s1 | head -c 6000000 | zfs receive -s -u {dst} || true")
    assert vm.sh(f"zfs get -H -o value receive_resume_token {dst}").strip() not in ("", "-")
    result = vm.zferry("-v", "-v", src, dst)
    assert "resuming an interrupted transfer" in result.output and "zfs send -t" in result.output
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_stale_resume_token_is_discarded_and_transfer_restarts(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    make(vm, src, [], ["s1", "s2"], mib=8)
    vm.zferry(src, dst)
    vm.sh(f"""
        head -c 16M /dev/urandom > /{src}/more; zfs snapshot {src}@s3
        zfs send -i @s2 {src}@s3 | head -c 3000000 | zfs receive -s -u {dst} || true
        zfs destroy {src}@s3; zfs snapshot {src}@s4
    """)
    result = vm.zferry(src, dst)
    assert "cannot resume" in result.output
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_killed_run_converges_on_rerun(vm: Vm, roots: tuple[str, str]) -> None:
    """kill -9 of zferry and its pipeline mid-transfer; the next run completes the job."""
    src, dst = roots
    make(vm, src, ["child"], ["s1"], mib=64)
    vm.sh(f"""
        cd {GUEST_CHECKOUT}
        (PYTHONPATH=src setsid python3 -m zferry -r {src} {dst} >/dev/null 2>&1 &)
        for i in $(seq 100); do pgrep -f 'zfs receive' >/dev/null && break; sleep 0.1; done
        sleep 0.3
        pkill -9 -f 'python3 -m zferry' || true; pkill -9 -f 'zfs send' || true; pkill -9 -f 'zfs receive' || true
        sleep 1
    """)
    vm.zferry("-r", src, dst)
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


@pytest.mark.parametrize("bad", ["src/x; rm -rf /", "src/$(reboot)", "src/`id`", "src/a\nb", "-oProxyCommand=x:src/a"])
def test_invalid_names_are_rejected_before_anything_runs(vm: Vm, bad: str) -> None:
    """FR-SEC-002, in the VM: nothing is run (a zfs wrapper records every call)."""
    vm.sh("""
        mkdir -p /opt/zfs-count
        printf '#!/bin/sh\\necho "$*" >> /tmp/zfs-calls\\nexec /usr/sbin/zfs "$@"\\n' > /opt/zfs-count/zfs
        chmod +x /opt/zfs-count/zfs; rm -f /tmp/zfs-calls
    """)
    result = vm.zferry("--", bad, "dst/x", check=False, env="PATH=/opt/zfs-count:$PATH")
    assert result.returncode == 2
    assert "invalid" in result.output
    assert vm.sh("cat /tmp/zfs-calls 2>/dev/null || true") == ""


@pytest.mark.needs_zfs(2, 2, reason="snapshots_changed (older OpenZFS: --cache-snapshots lists everything)")
def test_cached_destination_listing_skips_unchanged_datasets(vm: Vm, roots: tuple[str, str]) -> None:
    """--cache-snapshots: a no-op run lists only the destination's datasets (snapshots_changed), and
    a snapshot made on the destination behind zferry's back is still seen."""
    src, dst = roots
    make(vm, src, ["a", "b", "c"], ["s1"])
    cache = f"/tmp/cache-{src.replace('/', '_')}"
    vm.zferry("-r", "--cache-snapshots", "--cache-dir", cache, src, dst)
    vm.sh("sleep 2.5")
    vm.zferry("-r", "--cache-snapshots", "--cache-dir", cache, src, dst)  # fills the cache
    vm.sh("""
        mkdir -p /opt/zfs-count
        printf '#!/bin/sh\\necho "$*" >> /tmp/zfs-calls\\nexec /usr/sbin/zfs "$@"\\n' > /opt/zfs-count/zfs
        chmod +x /opt/zfs-count/zfs; rm -f /tmp/zfs-calls
    """)
    vm.zferry("-r", "--cache-snapshots", "--cache-dir", cache, src, dst, env="PATH=/opt/zfs-count:$PATH")
    calls = vm.sh("cat /tmp/zfs-calls").splitlines()
    dst_calls = [c for c in calls if c.endswith(f" {dst}") or f" {dst}/" in c]
    assert len(dst_calls) == 1 and "snapshots_changed" in dst_calls[0], calls
    vm.sh(f"zfs snapshot {dst}/b@behind_our_back; zfs snapshot -r {src}@s2")
    result = vm.zferry(
        "-r", "--skip-on-error", "dataset", "--cache-snapshots", "--cache-dir", cache, src, dst, check=False
    )
    assert result.returncode == 1 and "@behind_our_back" in result.output
    assert "/a@s2" in vm.snapshot_guids(dst) and "/b@s2" not in vm.snapshot_guids(dst)


def test_full_destination_pool_loses_nothing_and_the_rerun_resumes(vm: Vm, roots: tuple[str, str]) -> None:
    """Out of space mid-receive: a clear error, source and destination intact; after space is freed
    the next run resumes the partial receive and converges."""
    src, _ = roots
    tiny = f"tiny{src.rsplit('x', 1)[-1]}{abs(hash(src)) % 10000}"
    make(vm, src, [], ["s1"], mib=48)
    vm.sh(f"""
        truncate -s 256M /pools/{tiny}.img; zpool create -O compression=off {tiny} /pools/{tiny}.img
        zfs create {tiny}/filler; head -c 95M /dev/urandom > /{tiny}/filler/f; zpool sync {tiny}
    """)
    try:
        full = vm.zferry("--no-progress", src, f"{tiny}/copy", check=False)
        assert full.returncode == 1 and "out of space" in full.output and "free space and rerun" in full.output
        assert list(vm.snapshot_guids(src)) == ["@s1"]
        vm.sh(f"zfs destroy -r {tiny}/filler")
        vm.zferry("--no-progress", src, f"{tiny}/copy")
        assert vm.snapshot_guids(f"{tiny}/copy") == vm.snapshot_guids(src)
    finally:
        vm.sh(f"zpool destroy {tiny}; rm -f /pools/{tiny}.img")


def test_engine_api_in_process_replicates_and_reports(vm: Vm, roots: tuple[str, str]) -> None:
    """Front ends call `engine.run(JobConfig)` in-process: a report per pair, no CLI involved."""
    src, dst = roots
    make(vm, src, ["a", "b"], ["s1", "s2"])
    script = f"""
import json
from zferry import engine
from zferry.model import Endpoint
from zferry.replicate import ReplicationConfig
events = []
config = engine.JobConfig(((Endpoint({src!r}), Endpoint({dst!r})),), ReplicationConfig(recursive=True), job_name="api")
report = engine.run(config, events=events.append)
pair = report.pairs[0]
print(json.dumps([report.job_name, report.exit_code, pair.snapshots_sent, sorted(pair.replication.updated),
                  [e.kind for e in events]]))
"""
    out = vm.sh(f"cd {GUEST_CHECKOUT} && PYTHONPATH=src python3 - <<'PY'\n{script}\nPY")
    name, code, sent, updated, kinds = json.loads(out.strip().splitlines()[-1])
    assert (name, code, sent) == ("api", 0, 6)
    assert updated == [src, f"{src}/a", f"{src}/b"] and kinds == ["pair_started", "pair_finished"]
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
