"""Snapshot lifecycle on real OpenZFS: creation by plan, time/rank filters, pruning, bookmarks,
orphan and empty dataset deletion, the snapshot cache. zferry runs inside the VM.

ZFS cannot fake creation times, so time-based cases use times relative to now (unix seconds
read back from `zfs get creation`) and periods short enough to pass during the test.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.integration.test_replication import NEW_CHAIN
from tests.integration.vm import Vm
from tests.integration.zferry_holds import release_zferry_holds

COUNT_ZFS = """
    mkdir -p /opt/zfs-count
    printf '#!/bin/sh\\necho "$*" >> /tmp/zfs-calls\\nexec /usr/sbin/zfs "$@"\\n' > /opt/zfs-count/zfs
    chmod +x /opt/zfs-count/zfs; rm -f /tmp/zfs-calls
"""
COUNTED = "PATH=/opt/zfs-count:$PATH"


def plan(periods: dict[str, int], org: str = "prod", target: str = "onsite") -> str:
    return json.dumps({org: {target: periods}})


def snaps(vm: Vm, root: str, kind: str = "snapshot") -> list[str]:
    """Names (`@x`, `/child@x`, `#x`) under `root`, oldest first."""
    out = vm.sh(f"zfs list -H -t {kind} -o name -s createtxg -r {root} 2>/dev/null || true")
    return [line[len(root) :] for line in out.splitlines()]


def creation(vm: Vm, snapshot: str) -> int:
    return int(vm.sh(f"zfs get -H -p -o value creation {snapshot}"))


def zfs_calls(vm: Vm) -> list[str]:
    return vm.sh("cat /tmp/zfs-calls 2>/dev/null || true").splitlines()


# -- creation ---------------------------------------------------------------------------------


def test_snapshot_is_created_only_when_due(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-LCM-001: not due -> nothing; once the period has passed -> a new one."""
    src, _ = roots
    daily = ["--skip-replication", "--create-src-snapshots", "--create-src-snapshots-plan", plan({"daily": 3})]
    vm.zferry(*daily, src, "dummy")
    assert [re.sub(r"\d", "9", s) for s in snaps(vm, src)] == ["@prod_onsite_9999-99-99_99:99:99_daily"]
    vm.zferry(*daily, src, "dummy")  # the next daily boundary is hours away: not due
    assert len(snaps(vm, src)) == 1
    secondly = ["--skip-replication", "--create-src-snapshots", "--create-src-snapshots-plan", plan({"secondly": 3})]
    vm.zferry(*secondly, src, "dummy")
    time.sleep(1.1)  # the latest secondly snapshot is now older than one period
    vm.zferry(*secondly, src, "dummy")
    assert len([s for s in snaps(vm, src) if s.endswith("_secondly")]) == 2


def test_names_follow_timeformat_and_timezone(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-LCM-002.1/.2 and FR-LCM-003.1: org_target_<timestamp>_period, custom format, time zone."""
    src, _ = roots
    base = ["--skip-replication", "--create-src-snapshots", "--create-src-snapshots-even-if-not-due"]
    offsite = json.dumps({"prod": {"offsite": {"daily": 30}}})
    vm.zferry(*base, "--create-src-snapshots-plan", offsite, src, "dummy")
    vm.zferry(
        *base,
        "--create-src-snapshots-plan",
        plan({"weekly": 1}, "fmt", "t"),
        "--create-src-snapshots-timeformat",
        "%Y%m%d",
        src,
        "dummy",
    )
    before = vm.sh("TZ=America/New_York date +%Y-%m-%d_%H").strip()
    vm.zferry(
        *base,
        "--create-src-snapshots-plan",
        plan({"hourly": 1}, "tz", "ny"),
        "--create-src-snapshots-timezone",
        "America/New_York",
        "--create-src-snapshots-timeformat",
        "%Y-%m-%d_%H",
        src,
        "dummy",
    )
    after = vm.sh("TZ=America/New_York date +%Y-%m-%d_%H").strip()
    names = snaps(vm, src)
    assert re.fullmatch(r"@prod_offsite_\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d_daily", names[0]), names
    assert re.fullmatch(r"@fmt_t_\d{8}_weekly", names[1]), names
    assert names[2] in (f"@tz_ny_{before}_hourly", f"@tz_ny_{after}_hourly"), (names, before)


def test_daily_anchor_decides_when_a_daily_is_due(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-LCM-003.2: before the --daily_hour/minute/second anchor nothing is due, after it a daily is."""
    src, _ = roots
    common = [
        "--skip-replication",
        "--create-src-snapshots",
        "--create-src-snapshots-plan",
        plan({"daily": 7}),
        "--create-src-snapshots-timezone",
        "UTC",
    ]
    started = time.time()
    vm.zferry(*common, src, "dummy")
    one_run = time.time() - started  # a loaded VM (or coverage) makes a run slow: leave room for one more
    (first,) = snaps(vm, src)
    anchor = creation(vm, src + first) + 8 + int(3 * one_run)
    hms = time.strftime("%H %M %S", time.gmtime(anchor)).split()
    anchored = [*common, "--daily_hour", hms[0], "--daily_minute", hms[1], "--daily_second", hms[2]]
    vm.zferry(*anchored, src, "dummy")
    assert time.time() < anchor, "the VM was too slow for this test's timing"
    assert len(snaps(vm, src)) == 1
    time.sleep(max(0.0, anchor + 1 - time.time()))
    vm.zferry(*anchored, src, "dummy")
    assert len(snaps(vm, src)) == 2


def test_recursive_creation_is_one_atomic_zfs_snapshot_per_name(vm: Vm, roots: tuple[str, str]) -> None:
    """All selected datasets get each name in one `zfs snapshot` call: same createtxg everywhere."""
    src, _ = roots
    vm.sh(f"zfs create {src}/a; zfs create -p {src}/b/c; zfs create {src}/skip\n" + COUNT_ZFS)
    vm.zferry(
        "-r",
        "--exclude-dataset",
        "skip",
        "--skip-replication",
        "--create-src-snapshots",
        "--create-src-snapshots-plan",
        plan({"hourly": 1, "daily": 1}),
        src,
        "dummy",
        env=COUNTED,
    )
    calls = [c for c in zfs_calls(vm) if c.startswith("snapshot ")]
    assert len(calls) == 2 and all(len(c.split()) == 5 for c in calls), calls
    out = vm.sh(f"zfs list -H -p -t snapshot -o name,createtxg -r {src}")
    txgs: dict[str, set[str]] = {}
    for line in out.splitlines():
        name, txg = line.split("\t")
        txgs.setdefault(name.split("@")[1], set()).add(txg)
    assert len(txgs) == 2 and all(len(t) == 1 for t in txgs.values()), out
    assert not any("/skip@" in line for line in out.splitlines())


# -- filters ----------------------------------------------------------------------------------


def test_time_range_filters_select_by_creation(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-FLT-005.1/.2: a January 2023 range selects none of today's snapshots; '1 week ago..anytime'
    selects all; a range starting at a snapshot's creation selects it and the newer ones."""
    src, dst = roots
    vm.sh(f"zfs snapshot {src}@s1; zfs snapshot {src}@s2; sleep 1.2; zfs snapshot {src}@s3")
    since = creation(vm, f"{src}@s3")
    vm.zferry(src, f"{dst}/jan", "--include-snapshot-times-and-ranks", "2023-01-01..2023-02-01")
    vm.zferry(src, f"{dst}/week", "--include-snapshot-times-and-ranks", "1 week ago..anytime")
    vm.zferry(src, f"{dst}/since", "--include-snapshot-times-and-ranks", f"{since}..anytime")
    assert snaps(vm, f"{dst}/jan") == []
    assert snaps(vm, f"{dst}/week") == ["@s1", "@s2", "@s3"]
    assert snaps(vm, f"{dst}/since") == ["@s3"]


def test_rank_filters(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-FLT-006.1/.2: 'latest 2' and 'all except oldest 3' of five snapshots."""
    src, dst = roots
    vm.sh("; ".join(f"zfs snapshot {src}@s{i}" for i in range(1, 6)))
    vm.zferry(src, f"{dst}/latest", "--include-snapshot-times-and-ranks", "notime", "latest 2")
    vm.zferry(src, f"{dst}/except", "--include-snapshot-times-and-ranks", "0..0", "all except oldest 3")
    assert snaps(vm, f"{dst}/latest") == ["@s4", "@s5"]
    assert snaps(vm, f"{dst}/except") == ["@s4", "@s5"]


def test_filter_groups_and_within_union_across(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-FLT-007.1/.2: regex AND rank in one group; two groups are a union."""
    src, dst = roots
    vm.sh("; ".join(f"zfs snapshot {src}@{n}" for n in ["a1", "b1_d", "c1", "a2_d", "b2", "c2_d"]))
    vm.zferry(
        src, f"{dst}/and", "--include-snapshot-regex", ".*d", "--include-snapshot-times-and-ranks", "notime", "latest 2"
    )
    vm.zferry(
        "--include-snapshot-regex",
        "a.*",
        "--new-snapshot-filter-group",
        "--include-snapshot-regex",
        "b.*",
        src,
        f"{dst}/or",
    )
    assert snaps(vm, f"{dst}/and") == ["@a2_d", "@c2_d"]
    assert snaps(vm, f"{dst}/or") == ["@a1", "@b1_d", "@a2_d", "@b2"]


# -- pruning ----------------------------------------------------------------------------------


def test_delete_dst_snapshots_by_age_and_except(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-LCM-004.1: only snapshots older than a time are deleted; .2: --delete-dst-snapshots-except
    deletes what the filters do not select. Batched into one zfs destroy per dataset."""
    _src, dst = roots
    vm.sh(
        f"zfs create {dst}; zfs snapshot {dst}@old1; zfs snapshot {dst}@old2; sleep 1.2; "
        f"zfs snapshot {dst}@keep_new; zfs snapshot {dst}@new2\n" + COUNT_ZFS
    )
    cutoff = creation(vm, f"{dst}@keep_new")
    prune = ["--skip-replication", "--delete-dst-snapshots"]
    vm.zferry("dummy", dst, *prune, "--include-snapshot-times-and-ranks", f"anytime..{cutoff}", env=COUNTED)
    assert snaps(vm, dst) == ["@keep_new", "@new2"]
    assert [c for c in zfs_calls(vm) if c.startswith("destroy")] == [f"destroy {dst}@old1,old2"]
    vm.zferry(*prune, "--delete-dst-snapshots-except", "--include-snapshot-regex", "keep.*", "dummy", dst)
    assert snaps(vm, dst) == ["@keep_new"]


def test_except_plan_keeps_matching_periods_and_deletes_the_rest(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-FLT-008.1: --delete-dst-snapshots-except-plan keeps daily snapshots younger than 30 days
    or among the latest 30; everything else goes."""
    _src, dst = roots
    names = [
        "prod_onsite_2026-01-01_00:00:00_daily",
        "prod_onsite_2026-01-02_00:00:00_daily",
        "prod_onsite_2026-01-02_00:00:00_hourly",
        "prod_offsite_2026-01-02_00:00:00_daily",
        "manual",
    ]
    vm.sh(f"zfs create {dst}; " + "; ".join(f"zfs snapshot {dst}@{n}" for n in names))
    vm.zferry(
        "--skip-replication",
        "--delete-dst-snapshots",
        "--delete-dst-snapshots-except-plan",
        plan({"daily": 30}),
        "dummy",
        dst,
    )
    assert snaps(vm, dst) == ["@" + n for n in names[:2]]


def test_pruning_is_source_aware_and_keeps_the_latest_common_snapshot(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-LCM-005.1: a snapshot still on the source is not deleted; .2: with 'dummy' it is. The latest
    common snapshot (here only left as a source bookmark) survives --delete-dst-snapshots-no-crosscheck."""
    src, dst = roots
    vm.sh(f"zfs snapshot {src}@s_old; zfs snapshot {src}@s1; zfs snapshot {src}@s2")
    vm.zferry(src, dst)  # bookmarks the full (s_old) and the latest (s2) by default
    vm.sh(f"zfs snapshot {dst}@dst_only; zfs destroy {src}@s1")
    prune = ["--skip-replication", "--delete-dst-snapshots", "--include-snapshot-regex", "s_old|s1|dst_only"]
    vm.zferry(*prune, src, dst)
    assert snaps(vm, dst) == ["@s_old", "@s2"]  # s1 and dst_only are gone from the source: deleted
    vm.sh(release_zferry_holds(src) + f"zfs destroy {src}@s2")  # the source keeps only #s2, the latest common base
    vm.zferry(
        "--skip-replication",
        "--delete-dst-snapshots",
        "--delete-dst-snapshots-no-crosscheck",
        "--include-snapshot-regex",
        "s2",
        src,
        dst,
    )
    assert snaps(vm, dst) == ["@s_old", "@s2"]
    vm.zferry(*prune, "dummy", dst)
    assert snaps(vm, dst) == ["@s2"]


def test_held_snapshots_are_skipped_with_a_note(vm: Vm, roots: tuple[str, str]) -> None:
    _src, dst = roots
    vm.sh(f"zfs create {dst}; zfs snapshot {dst}@a; zfs snapshot {dst}@b; zfs snapshot {dst}@c; zfs hold keep {dst}@b")
    result = vm.zferry("dummy", dst, "--skip-replication", "--delete-dst-snapshots")
    assert snaps(vm, dst) == ["@b"]
    assert "held" in result.output
    vm.sh(f"zfs release keep {dst}@b")


def test_dryrun_deletes_nothing_and_warns_what_it_would_delete(vm: Vm, roots: tuple[str, str]) -> None:
    _src, dst = roots
    vm.sh(f"zfs create -p {dst}/empty/deeper; zfs snapshot {dst}@a")
    result = vm.zferry(
        "dummy", dst, "--dryrun", "-r", "--skip-replication", "--delete-dst-snapshots", "--delete-empty-dst-datasets"
    )
    assert "deleting 1 snapshot(s): @a" in result.output
    assert f"zfs destroy -r {dst}" in result.output  # after deleting @a the whole tree would be empty
    assert snaps(vm, dst) == ["@a"] and vm.exists(f"{dst}/empty/deeper")


# -- datasets ---------------------------------------------------------------------------------


def test_delete_dst_datasets_removes_orphans(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-LCM-006.1: dst/to_delete and its children go when the source lost src/to_delete."""
    src, dst = roots
    vm.sh(f"zfs create {src}/keep; zfs create -p {src}/to_delete/child; zfs snapshot -r {src}@s1")
    vm.zferry("-r", src, dst)
    vm.sh(release_zferry_holds(src) + f"zfs destroy -r {src}/to_delete; zfs create {dst}/excluded_orphan")
    vm.zferry("-r", "--skip-replication", "--delete-dst-datasets", "--exclude-dataset", "excluded_orphan", src, dst)
    assert sorted(vm.datasets(dst)) == ["", "/excluded_orphan", "/keep"]


def test_delete_empty_dst_datasets(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-LCM-006.2: a subtree without snapshots goes; one with a snapshot below stays, with its parents.
    A bookmark keeps a dataset unless the mode is 'snapshots'."""
    _src, dst = roots
    vm.sh(
        f"zfs create -p {dst}/empty/a/b; zfs create -p {dst}/mixed/full; zfs snapshot {dst}/mixed/full@s; "
        f"zfs create {dst}/mixed/empty; zfs create {dst}/marked; zfs snapshot {dst}/marked@x; "
        f"zfs bookmark {dst}/marked@x {dst}/marked#x; zfs destroy {dst}/marked@x"
    )
    vm.zferry("dummy", dst, "-r", "--skip-replication", "--delete-empty-dst-datasets")
    assert sorted(vm.datasets(dst)) == ["", "/marked", "/mixed", "/mixed/full"]
    vm.zferry("-r", "--skip-replication", "--delete-empty-dst-datasets=snapshots", "dummy", dst)
    assert sorted(vm.datasets(dst)) == ["", "/mixed", "/mixed/full"]


# -- bookmarks --------------------------------------------------------------------------------


def test_bookmarks_created_used_and_pruned(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-LCM-007.1: --create-bookmarks=all bookmarks every sent snapshot; FR-REP-005.1: the next send
    starts from #s2 after @s2 is gone; FR-LCM-007.2: --delete-dst-snapshots=bookmarks prunes them."""
    src, dst = roots
    vm.sh(f"zfs snapshot {src}@s1; zfs snapshot {src}@s2")
    vm.zferry("--create-bookmarks=all", src, dst)
    assert snaps(vm, src, "bookmark") == ["#s1", "#s2"]
    vm.sh(release_zferry_holds(src) + f"zfs destroy {src}@s1; zfs destroy {src}@s2; zfs snapshot {src}@s3")
    result = vm.zferry("-v", "-v", "--create-bookmarks=all", src, dst)
    assert f"zfs send {NEW_CHAIN} -i '{src}#s2' {src}@s3" in result.output
    assert snaps(vm, dst) == ["@s1", "@s2", "@s3"]
    vm.zferry(
        "dummy",
        src,
        "--skip-replication",
        "--delete-dst-snapshots=bookmarks",
        "--include-snapshot-times-and-ranks",
        "notime",
        "all except latest 1",
    )
    assert snaps(vm, src, "bookmark") == ["#s3"]


def test_default_bookmarks_only_for_full_latest_and_hourly_or_longer(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    vm.sh("; ".join(f"zfs snapshot {src}@{n}" for n in ["s1", "x_secondly", "y_hourly", "z_2daily", "s5"]))
    vm.zferry(src, dst)
    assert snaps(vm, src, "bookmark") == ["#s1", "#y_hourly", "#z_2daily", "#s5"]


# -- cache ------------------------------------------------------------------------------------


@pytest.mark.needs_zfs(2, 2, reason="snapshots_changed (on older OpenZFS see test_old_openzfs.py)")
def test_cache_skips_snapshot_listing_when_nothing_changed(vm: Vm, roots: tuple[str, str]) -> None:
    """FR-PERF-005: with --cache-snapshots and nothing due, one `zfs list -o snapshots_changed` and no
    `zfs list -t snapshot`; a snapshot destroyed or created out of band invalidates the entry."""
    src, _ = roots
    vm.sh(f"zfs create {src}/child; rm -rf /tmp/zcache-{src.replace('/', '_')}")
    args = [
        "-r",
        "--skip-replication",
        "--create-src-snapshots",
        "--create-src-snapshots-plan",
        plan({"daily": 3}),
        "--cache-snapshots",
        "--cache-dir",
        f"/tmp/zcache-{src.replace('/', '_')}",
        src,
        "dummy",
    ]

    def counted_run() -> tuple[list[str], str]:
        vm.sh(COUNT_ZFS)
        result = vm.zferry("-v", *args, env=COUNTED)
        return zfs_calls(vm), result.output

    vm.zferry(*args)  # creates the dailies
    time.sleep(2.1)  # the cache stores only entries whose last change is at least 2 s older than the listing
    calls, _ = counted_run()  # miss: lists the snapshots, fills the cache
    assert any("-t snapshot" in c for c in calls), calls
    calls, output = counted_run()  # hit: one call, nothing due
    assert len(calls) == 1 and "snapshots_changed" in calls[0], calls
    assert "2 hit(s), 0 miss(es)" in output
    daily = snaps(vm, f"{src}/child")[0]
    vm.sh(f"zfs destroy {src}/child{daily}")  # out of band: the child has no daily any more
    calls, output = counted_run()
    assert "1 hit(s), 1 miss(es)" in output and [c for c in calls if c.startswith("snapshot ")], calls
    assert len(snaps(vm, f"{src}/child")) == 1
    time.sleep(2.1)
    counted_run()  # refills the child's entry
    vm.sh(f"zfs snapshot {src}@out_of_band")
    calls, output = counted_run()
    assert "1 hit(s), 1 miss(es)" in output and not [c for c in calls if c.startswith("snapshot ")], calls
