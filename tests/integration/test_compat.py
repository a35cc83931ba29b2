"""The README's syncoid/sanoid compatibility table, row by row, on real OpenZFS in the VM.

Every row's zferry spelling runs on a small fixture; the runs are batched (one fixture, six
zferry processes, one of them nine runs under a fake clock, then the examples/ scripts), and
each row checks its own effect in what the batches left behind.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

from tests.integration.vm import GUEST_CHECKOUT, Result, Vm, unique_name


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp())


# sanoid's policy, as the examples/ scripts spell it (the counts are small for the test)
SANOID_PLAN = json.dumps(
    {"autosnap": {"": {"15minutely": 2, "hourly": 2, "daily": 2, "weekly": 1, "monthly": 1, "yearly": 1}}}
)
SANOID_ANCHORS = [
    *("--hourly_minute", "30", "--daily_hour", "23", "--daily_minute", "59"),
    *("--weekly_weekday", "1", "--weekly_hour", "23", "--weekly_minute", "30"),
    *("--monthly_monthday", "2", "--monthly_hour", "1", "--monthly_minute", "15"),
    *("--yearly_month", "1", "--yearly_monthday", "2", "--yearly_hour", "1", "--yearly_minute", "15"),
]
SANOID_RUNS = [  # Monday 2026-12-28 ... Saturday 2027-01-02, UTC
    utc(2026, 12, 28, 12, 0),
    utc(2026, 12, 28, 12, 29),
    utc(2026, 12, 28, 12, 30),
    utc(2026, 12, 28, 23, 29),
    utc(2026, 12, 28, 23, 30),
    utc(2026, 12, 28, 23, 59),
    utc(2027, 1, 2, 1, 14),
    utc(2027, 1, 2, 1, 15),
]
SANOID_PRUNE_AT = utc(2027, 1, 2, 1, 16)


@dataclass
class World:
    """What the batched runs left behind: snapshot and bookmark names per dataset, a few
    properties, and each run's result."""

    u: str
    snaps: dict[str, list[str]] = field(default_factory=dict)
    bookmarks: dict[str, list[str]] = field(default_factory=dict)
    guids: dict[str, int] = field(default_factory=dict)
    txgs: dict[str, int] = field(default_factory=dict)
    props: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    holds: dict[str, list[str]] = field(default_factory=dict)  # snapshot -> hold tags
    runs: dict[str, Result] = field(default_factory=dict)

    def src(self, name: str) -> str:
        return f"src/{self.u}/{name}"

    def dst(self, name: str) -> str:
        return f"dst/{self.u}/{name}"

    def prop(self, dataset: str, name: str) -> str:
        return self.props.get((dataset, name), ("", ""))[0]


def setup_fixture(vm: Vm, w: World) -> None:
    s, d = f"src/{w.u}", f"dst/{w.u}"
    vm.sh(f"""
        zfs create -p {s}/A/keep; zfs set recordsize=64K {s}/A/keep
        zfs create {s}/A/skip; zfs create {s}/A/d; zfs create {s}/A/e
        for n in s1 s2 s3 xtmp; do zfs snapshot -r {s}/A@$n; done
        zfs clone {s}/A/d@s1 {s}/A/clone; zfs snapshot {s}/A/clone@s4
        zfs create -o com.example:note=hi -o compression=gzip {s}/B
        for n in s1 s2 s3; do zfs snapshot {s}/B@$n; done
        zfs create {s}/C; zfs snapshot {s}/C@s1; zfs snapshot {s}/C@s2
        zfs create -p {d}/C; zfs snapshot {d}/C@old
        zfs create {s}/F; zfs snapshot {s}/F@s1; zfs create {d}/F
        zfs allow -u zfallow send,snapshot,hold,bookmark {s}/F
        zfs allow -u zfallow receive,create,mount,userprop,compression {d}/F
        zfs create -p {s}/S/c1/g; zfs create {s}/S/c2; zfs snapshot {s}/S/c1@manual
        zfs create {s}/P1; zfs create -p {s}/P2/child; zfs snapshot {s}/P2@manual
    """)


def run_batches(vm: Vm, w: World) -> None:
    a_src, a_dst = w.src("A"), w.dst("A")
    w.runs["A"] = vm.zferry(
        *("-v", "-v", "-r", "--exclude-dataset-regex", "skip"),
        *("--include-snapshot-regex", "s.*", "--exclude-snapshot-regex", "s2", "--no-resume-recv"),
        *("--zfs-send-program-opts=-c", "--zfs-recv-program-opts=-o com.example:via=recvopts"),
        *("--zfs-recv-o-include-regex", "recordsize", "--create-bookmarks", "all", a_src, a_dst),
    )
    w.runs["BC"] = vm.zferry(
        *("-q", "--no-stream", "--force", "--zfs-recv-o-include-regex", ".*", "--zfs-recv-o-sources", "local"),
        *(w.src("B"), w.dst("B"), w.src("C"), w.dst("C")),
    )
    vm.sh(f"""
        for x in d e; do zfs mount {a_dst}/$x; touch /{a_dst}/$x/changed-on-the-destination; done
        zfs snapshot {a_src}/d@s4; zfs snapshot {a_src}/e@s4; zfs destroy {a_src}/keep@s1
    """)
    w.runs["e"] = vm.zferry(a_src, a_dst, "-r", "--include-dataset", "e", check=False)
    w.runs["d"] = vm.zferry(
        *(a_src, a_dst, "-r", "--include-dataset", "d", "--include-dataset", "keep"),
        *("--force-rollback-to-latest-snapshot", "--delete-dst-snapshots", "--delete-dst-snapshots-no-crosscheck"),
    )
    push = [
        *("-p", "-v", "-v", "--ssh-dst-config-file", "/home/zfallow/.ssh/config"),
        *("--ssh-dst-private-key", "/home/zfallow/.ssh/id_ed25519", "--ssh-dst-port", "22"),
        *("--ssh-cipher", "aes128-ctr", "--ssh-dst-extra-opts", "-o ServerAliveInterval=7"),
        *("--compression-program", "zstd", "--compression-program-opts", "-3", "--compress-when", "always"),
        *("--mbuffer-size", "2M"),
        *("--bwlimit", "50m", "--create-src-snapshots"),
        *("--create-src-snapshots-plan", json.dumps({"syncoid": {"backup1": {"adhoc": 1}}})),
        *(w.src("F"), f"zfallow@hosta:{w.dst('F')}/copy"),
    ]
    command = (
        f"cd {GUEST_CHECKOUT} && su zfallow -c {shlex.quote('PYTHONPATH=src python3 -m zferry ' + shlex.join(push))}"
    )
    out = vm.sh(command + " 2>&1")
    w.runs["F"] = Result(0, out, "")
    create = [
        *("--skip-replication", "--create-src-snapshots", "--create-src-snapshots-plan", SANOID_PLAN),
        *("--create-src-snapshots-timezone", "UTC", *SANOID_ANCHORS),
        *("-r", "--include-dataset-regex", ".+", w.src("S"), "dummy"),
    ]
    prune = [
        *("dummy", w.src("S/c1"), "--skip-replication", "--delete-dst-snapshots"),
        *("--delete-dst-snapshots-except-plan", SANOID_PLAN, "--exclude-snapshot-regex", "autosnap_.*"),
    ]
    plan = json.dumps([[t, create] for t in SANOID_RUNS] + [[SANOID_PRUNE_AT, prune]])
    out = vm.sh(
        f"cd {GUEST_CHECKOUT} && PYTHONPATH=src:. python3 tests/integration/fake_clock.py {shlex.quote(plan)} 2>&1"
    )
    w.runs["S"] = Result(0, out, "")
    examples = f"""
        cd {GUEST_CHECKOUT}; export PYTHONPATH=src ZFERRY="python3 -m zferry"
        sh examples/sanoid-template-default.sh {w.src("P1")} -q
        sh examples/sanoid-template-production.sh {w.src("P2")} -q
        sh examples/sanoid-template-backup.sh {w.src("P2")} {w.dst("P2")} -q
    """
    w.runs["examples"] = Result(0, vm.sh(examples + " 2>&1"), "")
    # --skip-parent: the children of S, not S itself; c1 and c2 both need the missing parent
    w.runs["skip-parent"] = vm.zferry("-r", "--include-dataset-regex", ".+", "--threads", "4", w.src("S"), w.dst("S"))


def read_state(vm: Vm, w: World) -> None:
    out = vm.sh(f"""
        zfs list -H -p -t snapshot,bookmark -o name,guid,createtxg -s createtxg -r src/{w.u} dst/{w.u}
        echo ---
        zfs get -H -p -o name,property,value,source -r recordsize,compression,origin,com.example:via,com.example:note,zferry:placeholder dst/{w.u}
        echo ---
        zfs list -H -t snapshot -o name -r src/{w.u} dst/{w.u} | xargs zfs holds -H
    """)
    versions, props, holds = out.split("---\n")
    for line in holds.splitlines():
        snapshot, tag = line.split("\t")[:2]
        w.holds.setdefault(snapshot, []).append(tag)
    for line in versions.splitlines():
        name, guid, txg = line.split("\t")
        w.guids[name], w.txgs[name] = int(guid), int(txg)
        sigil = "@" if "@" in name else "#"
        dataset, _, short = name.partition(sigil)
        (w.snaps if sigil == "@" else w.bookmarks).setdefault(dataset, []).append(short)
    for line in props.splitlines():
        name, prop, value, source = line.split("\t")
        w.props[(name, prop)] = (value, source)
    for ds in vm.sh(f"zfs list -H -o name -r src/{w.u} dst/{w.u}").split():
        w.snaps.setdefault(ds, [])


@pytest.fixture(scope="module")
def world(vm_hosts: Vm) -> World:
    w = World(unique_name("compat"))
    setup_fixture(vm_hosts, w)
    run_batches(vm_hosts, w)
    read_state(vm_hosts, w)
    return w


def sanoid_names(w: World, dataset: str, period: str) -> list[str]:
    """The timestamps of `autosnap_<timestamp>_<period>` snapshots of a dataset, oldest first."""
    prefix, suffix = "autosnap_", f"_{period}"
    return [n[len(prefix) : -len(suffix)] for n in w.snaps[dataset] if n.startswith(prefix) and n.endswith(suffix)]


# -- syncoid ------------------------------------------------------------------------------------


def skip_parent(w: World) -> None:
    """The root is not replicated: its copy is only zferry's placeholder; both children arrive."""
    assert w.snaps[w.dst("S")] == []
    assert w.prop(w.dst("S"), "zferry:placeholder") == w.dst("S")
    for child in ("S/c1", "S/c1/g", "S/c2"):
        assert w.snaps[w.dst(child)] == w.snaps[w.src(child)] != []


def use_hold(w: World) -> None:
    """zferry holds the latest common snapshot on both sides, one tag per pair."""
    src_tags = [t for t in w.holds.get(w.src("B") + "@s3", []) if t.startswith("zferry-")]
    dst_tags = [t for t in w.holds.get(w.dst("B") + "@s3", []) if t.startswith("zferry-")]
    assert len(src_tags) == 1 and src_tags == dst_tags


def recursive(w: World) -> None:
    assert {w.dst(f"A/{c}") for c in ("keep", "d", "e", "clone")} <= set(w.snaps)


def exclude_datasets(w: World) -> None:
    assert w.dst("A/skip") not in w.snaps and w.src("A/skip") in w.snaps


def include_exclude_snaps(w: World) -> None:
    assert w.snaps[w.dst("A/e")] == ["s1", "s3"]  # s2 excluded, xtmp not included


def no_stream(w: World) -> None:
    assert w.snaps[w.dst("B")] == ["s3"]


def no_sync_snap(w: World) -> None:
    assert w.snaps[w.src("A/e")] == ["s1", "s2", "s3", "xtmp", "s4"]  # nothing taken by zferry


def sync_snap_with_identifier(w: World) -> None:
    (sync,) = [n for n in w.snaps[w.src("F")] if n.startswith("syncoid_backup1_")]
    assert sync.endswith("_adhoc") and sync in w.snaps[w.dst("F/copy")]  # taken, sent, and kept


def create_bookmark(w: World) -> None:
    assert w.bookmarks[w.src("A/e")] == ["s1", "s3"]
    assert w.guids[w.src("A/e") + "#s3"] == w.guids[w.src("A/e") + "@s3"]


def preserve_recordsize(w: World) -> None:
    assert w.prop(w.dst("A/keep"), "recordsize") == "65536"


def preserve_properties(w: World) -> None:
    assert w.props[(w.dst("B"), "com.example:note")] == ("hi", "local")
    assert w.props[(w.dst("B"), "compression")] == ("gzip", "local")


def rollback(w: World) -> None:
    assert w.runs["d"].returncode == 0
    assert w.snaps[w.dst("A/d")][-1] == "s4"  # the change on the destination was rolled back, s4 received


def no_rollback(w: World) -> None:
    assert w.runs["e"].returncode == 1, w.runs["e"].output  # the destination was changed: refused
    assert w.snaps[w.dst("A/e")] == ["s1", "s3"]


def delete_target_snapshots(w: World) -> None:
    # s1 was destroyed on the source (its bookmark #s1 does not protect it); xtmp is new
    assert w.snaps[w.dst("A/keep")] == ["s3", "xtmp"]


def force_delete(w: World) -> None:
    assert w.snaps[w.dst("C")] == ["s2"]
    assert w.guids[w.dst("C") + "@s2"] == w.guids[w.src("C") + "@s2"]


def sendoptions(w: World) -> None:
    assert f"zfs send -c {w.src('A/e')}@s1" in w.runs["A"].output


def recvoptions(w: World) -> None:
    assert w.props[(w.dst("A"), "com.example:via")] == ("recvopts", "local")


def no_resume(w: World) -> None:
    assert "zfs receive" in w.runs["A"].output and "receive -u -s" not in w.runs["A"].output


def clone_handling(w: World) -> None:
    """syncoid's default clone handling is zferry's: the clone is a clone of the origin's copy."""
    assert w.prop(w.dst("A/clone"), "origin") == w.dst("A/d") + "@s1"
    assert w.snaps[w.dst("A/clone")] == ["s4"]


def debug(w: World) -> None:
    assert "run: zfs list" in w.runs["A"].output


def quiet(w: World) -> None:
    assert "updated" not in w.runs["BC"].output, w.runs["BC"].output


def ssh_words(*words: str) -> Callable[[World], None]:
    def check(w: World) -> None:
        assert all(word in w.runs["F"].output for word in words), w.runs["F"].output
        assert w.snaps[w.dst("F/copy")][0] == "s1"

    return check


def no_privilege_elevation(w: World) -> None:
    assert "sudo" not in w.runs["F"].output and w.dst("F/copy") in w.snaps


# -- sanoid -------------------------------------------------------------------------------------


def counts_and_anchors(w: World) -> None:
    c2 = w.src("S/c2")
    assert sanoid_names(w, c2, "hourly") == [
        "2026-12-28_12:00:00",
        "2026-12-28_12:30:00",  # hourly_min = 30: not at 12:29
        "2026-12-28_23:29:00",
        "2026-12-28_23:30:00",
        "2027-01-02_01:14:00",
    ]
    assert sanoid_names(w, c2, "daily") == ["2026-12-28_12:00:00", "2026-12-28_23:59:00", "2027-01-02_01:14:00"]
    assert sanoid_names(w, c2, "weekly") == ["2026-12-28_12:00:00", "2026-12-28_23:30:00"]  # Monday 23:30
    assert sanoid_names(w, c2, "monthly") == ["2026-12-28_12:00:00", "2027-01-02_01:15:00"]  # day 2, 01:15
    assert sanoid_names(w, c2, "yearly") == ["2026-12-28_12:00:00", "2027-01-02_01:15:00"]  # Jan 2, 01:15


def frequently(w: World) -> None:
    assert len(sanoid_names(w, w.src("S/c2"), "15minutely")) == len(SANOID_RUNS)  # every run is 15 min apart


def autosnap_recursive(w: World) -> None:
    assert w.snaps[w.src("S/c2")] == w.snaps[w.src("S/c1/g")]
    for name in w.snaps[w.src("S/c2")]:  # one atomic zfs snapshot per name: the same transaction group
        assert w.txgs[f"{w.src('S/c2')}@{name}"] == w.txgs[f"{w.src('S/c1/g')}@{name}"]


def process_children_only(w: World) -> None:
    assert w.snaps[w.src("S")] == [] and w.snaps[w.src("S/c2")]


def autoprune(w: World) -> None:
    c1 = w.src("S/c1")
    assert f"run {SANOID_PRUNE_AT} exit 0" in w.runs["S"].output, w.runs["S"].output
    assert sanoid_names(w, c1, "15minutely") == ["2027-01-02_01:14:00", "2027-01-02_01:15:00"]  # the latest 2
    assert sanoid_names(w, c1, "hourly") == ["2026-12-28_23:30:00", "2027-01-02_01:14:00"]
    assert sanoid_names(w, c1, "daily") == ["2026-12-28_23:59:00", "2027-01-02_01:14:00"]
    assert len(sanoid_names(w, c1, "weekly")) == 2  # both younger than one week
    assert "manual" in w.snaps[c1]  # not sanoid's: never pruned


def skip_children(w: World) -> None:
    assert w.snaps[w.src("S/c1/g")] == w.snaps[w.src("S/c2")]  # the prune of S/c1 left its child alone


def periods_of(w: World, dataset: str) -> list[str]:
    return sorted(n.rpartition("_")[2] for n in w.snaps[dataset] if n.startswith("autosnap_20"))


def example_default(w: World) -> None:
    assert periods_of(w, w.src("P1")) == ["daily", "hourly", "monthly"]


def example_production(w: World) -> None:
    for ds in (w.src("P2"), w.src("P2/child")):
        assert periods_of(w, ds) == ["daily", "hourly", "monthly", "weekly"]
    assert "manual" in w.snaps[w.src("P2")]


def example_backup(w: World) -> None:
    assert w.snaps[w.dst("P2")] == w.snaps[w.src("P2")] and w.snaps[w.dst("P2/child")] == w.snaps[w.src("P2/child")]


ROWS: list[tuple[str, Callable[[World], None]]] = [
    ("syncoid -r, --recursive", recursive),
    ("syncoid --skip-parent", skip_parent),
    ("syncoid --use-hold", use_hold),
    ("syncoid --exclude-datasets=RE (and --exclude=RE)", exclude_datasets),
    ("syncoid --include-snaps=RE, --exclude-snaps=RE", include_exclude_snaps),
    ("syncoid --no-stream", no_stream),
    ("syncoid --no-sync-snap", no_sync_snap),
    ("syncoid sync snapshot, --identifier=EXTRA, --keep-sync-snap", sync_snap_with_identifier),
    ("syncoid --create-bookmark", create_bookmark),
    ("syncoid --preserve-recordsize", preserve_recordsize),
    ("syncoid --preserve-properties", preserve_properties),
    ("syncoid (default: receive -F)", rollback),
    ("syncoid --no-rollback", no_rollback),
    ("syncoid --delete-target-snapshots", delete_target_snapshots),
    ("syncoid --force-delete", force_delete),
    ("syncoid --sendoptions=OPTS", sendoptions),
    ("syncoid --recvoptions=OPTS", recvoptions),
    ("syncoid --no-resume", no_resume),
    ("syncoid clone handling (default)", clone_handling),
    ("syncoid --debug", debug),
    ("syncoid --quiet", quiet),
    ("syncoid --sshconfig=FILE", ssh_words("-F /home/zfallow/.ssh/config")),
    ("syncoid --sshkey=FILE", ssh_words("-i /home/zfallow/.ssh/id_ed25519")),
    ("syncoid --sshport=PORT", ssh_words("-p 22")),
    ("syncoid --sshcipher=CIPHER", ssh_words("-c aes128-ctr")),
    ("syncoid --sshoption=OPTION", ssh_words("-o ServerAliveInterval=7")),
    ("syncoid --compress=FORMAT", ssh_words("zstd -c -3")),
    ("syncoid --mbuffer-size=SIZE", ssh_words("-m 2M")),
    ("syncoid --source-bwlimit, --target-bwlimit", ssh_words("-L 50m")),
    ("syncoid --no-privilege-elevation", no_privilege_elevation),
    ("sanoid hourly/daily/weekly/monthly/yearly and their *_min/_hour/_wday/_mday/_mon", counts_and_anchors),
    ("sanoid frequently, frequent_period", frequently),
    ("sanoid autosnap, recursive = yes|zfs", autosnap_recursive),
    ("sanoid process_children_only", process_children_only),
    ("sanoid autoprune", autoprune),
    ("sanoid skip_children", skip_children),
    ("examples/sanoid-template-default.sh", example_default),
    ("examples/sanoid-template-production.sh", example_production),
    ("examples/sanoid-template-backup.sh", example_backup),
]


@pytest.mark.parametrize(("row", "check"), ROWS, ids=[r for r, _ in ROWS])
def test_row(world: World, row: str, check: Callable[[World], None]) -> None:
    check(world)
