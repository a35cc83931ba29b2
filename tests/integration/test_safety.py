"""Destruction safety on real OpenZFS: what zferry must never destroy, and what the destroy guard
lets each option destroy. zferry runs inside the VM, between pools `src` and `dst`."""

from __future__ import annotations

from tests.integration.vm import Vm
from tests.integration.zferry_holds import release_zferry_holds
from zferry.exec.host import Host
from zferry.holds import hold_tag
from zferry.inventory import Side


def make(vm: Vm, root: str, datasets: list[str], snapshots: list[str]) -> None:
    lines = [f"zfs create -p {root}/{d}" for d in datasets] + [f"zfs snapshot -r {root}@{s}" for s in snapshots]
    vm.sh("\n".join(lines))


def fill(vm: Vm, dataset: str, kib: int) -> None:
    """Write `kib` KiB of incompressible data into a mounted dataset and let `usedbydataset` see it."""
    vm.sh(f"head -c {kib}K /dev/urandom > $(zfs get -H -o value mountpoint {dataset})/data; zpool sync")


def holds(vm: Vm, root: str) -> dict[str, set[str]]:
    """zferry's holds under `root`: relative snapshot name -> tags."""
    out = vm.sh(f"zfs list -H -t snapshot -o name -r {root} | xargs -r zfs holds -H")
    found: dict[str, set[str]] = {}
    for line in out.splitlines():
        name, tag = line.split("\t")[:2]
        if tag.startswith("zferry-"):
            found.setdefault(name[len(root) :], set()).add(tag)
    return found


def test_renamed_source_leaves_its_replica_alone(vm: Vm, roots: tuple[str, str]) -> None:
    """Item 1: after `zfs rename tank/db tank/db-old`, pruning and empty-dataset deletion keep backup/tank/db."""
    src, dst = roots
    make(vm, src, ["db"], ["s1", "s2"])
    vm.zferry("-r", src, dst)
    vm.sh(f"zfs rename {src}/db {src}/db-old")
    result = vm.zferry("-r", src, dst, "--delete-dst-snapshots", "--delete-empty-dst-datasets")
    assert list(vm.snapshot_guids(f"{dst}/db")) == ["@s1", "@s2"]
    assert "REFUSED" in result.output and "--delete-dst-datasets" in result.output
    # asked for explicitly, the orphan goes (its holds released first)
    vm.zferry("-r", "--delete-dst-datasets", src, dst)
    assert not vm.exists(f"{dst}/db")


def test_absolute_exclude_protects_the_destination_too(vm: Vm, roots: tuple[str, str]) -> None:
    """Item 2: `--exclude-dataset SRC/scratch` keeps DST/scratch out of pruning and empty deletion."""
    src, dst = roots
    make(vm, src, ["scratch", "keep"], ["s1", "s2"])
    vm.zferry("-r", src, dst)
    vm.sh(f"zfs destroy {src}/scratch@s1; zfs create {dst}/scratch/tmp")
    vm.zferry(
        "-r", "--exclude-dataset", f"{src}/scratch", src, dst, "--delete-dst-snapshots", "--delete-empty-dst-datasets"
    )
    assert list(vm.snapshot_guids(f"{dst}/scratch")) == ["@s1", "@s2"]
    assert vm.exists(f"{dst}/scratch/tmp")


def test_destination_with_data_and_no_snapshots_is_not_overwritten(vm: Vm, roots: tuple[str, str]) -> None:
    """Item 3: more than 64 KiB and no snapshots is someone's data: no receive -F without --force."""
    src, dst = roots
    make(vm, src, [], ["s1"])
    vm.sh(f"zfs create {dst}")
    fill(vm, dst, 256)
    result = vm.zferry(src, dst, check=False)
    assert result.returncode == 1 and "not empty" in result.output and "--force" in result.output
    assert vm.exists_path(f"/{dst}/data") and vm.snapshot_guids(dst) == {}
    vm.zferry("--force", src, dst)
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_created_parents_are_marked_placeholders(vm: Vm, roots: tuple[str, str]) -> None:
    """Item 3: parents zferry creates carry zferry:placeholder=on and canmount=off, each level."""
    src, dst = roots
    make(vm, src, ["child"], ["s1"])
    vm.zferry(f"{src}/child", f"{dst}/a/b/child")
    props = vm.sh(f"zfs get -H -o name,property,value zferry:placeholder,canmount -r {dst}")
    rows = {tuple(line.split("\t")) for line in props.splitlines()}
    for level in (dst, f"{dst}/a", f"{dst}/a/b"):
        assert (level, "zferry:placeholder", level) in rows and (level, "canmount", "off") in rows
    # the placeholder is empty: a full receive may use it without --force; then it is no longer one
    vm.zferry(src, f"{dst}/a")
    assert list(vm.snapshot_guids(f"{dst}/a")) == ["@s1", "/b/child@s1"]
    marker = vm.sh(f"zfs get -H -o value zferry:placeholder {dst}/a").strip()
    assert marker == dst  # inherited from the parent placeholder, so it names another dataset


def test_empty_dataset_deletion_keeps_datasets_holding_data(vm: Vm, roots: tuple[str, str]) -> None:
    """Item 4: --delete-empty-dst-datasets destroys no filesystem or zvol that holds data."""
    _, dst = roots
    vm.sh(f"zfs create {dst}; zfs create {dst}/live; zfs create {dst}/empty; zfs create -V 4M {dst}/vol")
    fill(vm, f"{dst}/live", 512)
    vm.sh(f"""
        sleep 1  # the VM has no udev: find the zvol's device by its name
        for d in /dev/zd*; do [ "$(/lib/udev/zvol_id $d 2>/dev/null)" = {dst}/vol ] && dev=$d; done
        head -c 1M /dev/urandom | dd of=$dev bs=64k conv=fsync status=none; zpool sync
    """)
    vm.zferry("-r", "--skip-replication", "dummy", dst, "--delete-empty-dst-datasets")
    assert sorted(vm.datasets(dst)) == ["", "/live", "/vol"]


def test_dummy_source_needs_a_selection_to_delete_datasets(vm: Vm, roots: tuple[str, str]) -> None:
    """Item 5: dummy + --delete-dst-datasets refuses the whole tree unless confirmed or narrowed."""
    src, dst = roots
    make(vm, src, ["a", "b"], ["s1"])
    vm.zferry("-r", src, dst)
    refused = vm.zferry("-r", "--skip-replication", "--delete-dst-datasets", "dummy", dst, check=False)
    assert refused.returncode == 2 and "--delete-dst-datasets-whole-tree" in refused.output
    assert sorted(vm.datasets(dst)) == ["", "/a", "/b"]
    vm.zferry("-r", "--skip-replication", "--delete-dst-datasets", "--include-dataset", "a", "dummy", dst)
    assert sorted(vm.datasets(dst)) == ["", "/b"]
    vm.zferry("-r", "--skip-replication", "--delete-dst-datasets", "--delete-dst-datasets-whole-tree", "dummy", dst)
    assert not vm.exists(dst)


def test_one_hold_per_pair_and_side_on_the_latest_common_snapshot(vm: Vm, roots: tuple[str, str]) -> None:
    """Item 6: the hold follows the latest common snapshot; stale ones are released; tags differ per pair."""
    src, dst = roots
    make(vm, src, ["c"], ["s1", "s2"])
    vm.zferry("-r", src, dst)
    tag = hold_tag(Side(Host(), dst))
    assert holds(vm, src) == {"@s2": {tag}, "/c@s2": {tag}}
    assert holds(vm, dst) == {"@s2": {tag}, "/c@s2": {tag}}
    vm.sh(f"zfs hold {tag} {src}@s1")  # what a killed run could leave behind
    vm.sh(f"zfs snapshot -r {src}@s3")
    vm.zferry("-r", src, dst)
    assert holds(vm, src) == {"@s3": {tag}, "/c@s3": {tag}}
    assert holds(vm, dst) == {"@s3": {tag}, "/c@s3": {tag}}
    other = f"{dst}-2"
    vm.zferry(src, other)
    assert holds(vm, src)["@s3"] == {tag, hold_tag(Side(Host(), other))}
    vm.sh(release_zferry_holds(other) + f"zfs destroy -r {other}")
    # our own hold does not stop pruning of anything else, nor a full resync with --force
    vm.sh(f"zfs holds -rH {src}@s3 | while read -r n t _; do zfs release $t $n; done")
    vm.sh(f"zfs destroy -r {src}; zfs create {src}; zfs snapshot {src}@n1")
    vm.zferry("--force", src, dst)
    assert list(vm.snapshot_guids(dst)) == ["@n1", "/c@s1", "/c@s2", "/c@s3"]
    assert holds(vm, dst) == {"@n1": {tag}, "/c@s3": {tag}}


def test_force_resync_is_refused_where_another_tool_holds_a_snapshot(vm: Vm, roots: tuple[str, str]) -> None:
    """Items 7 and 9: --force goes through the destroy guard; a foreign hold protects its snapshot."""
    src, dst = roots
    make(vm, src, [], ["s1"])
    vm.sh(f"zfs create {dst}; zfs snapshot {dst}@unrelated; zfs hold other-tool {dst}@unrelated")
    result = vm.zferry("--force", src, dst, check=False)
    assert result.returncode == 1 and "REFUSED" in result.output and "held by another" in result.output
    assert list(vm.snapshot_guids(dst)) == ["@unrelated"]
    vm.sh(f"zfs release other-tool {dst}@unrelated")


def test_same_named_snapshot_of_another_guid(vm: Vm, roots: tuple[str, str]) -> None:
    """Item 8: a clear conflict before sending; with --force the clashing snapshot is destroyed."""
    src, dst = roots
    make(vm, src, [], ["duplicate", "a"])
    vm.zferry(src, dst)
    old = vm.snapshot_guids(dst)["@duplicate"]
    vm.sh(f"zfs destroy {src}@duplicate; zfs snapshot {src}@duplicate; zfs snapshot {src}@b")
    result = vm.zferry(src, dst, check=False)
    assert result.returncode == 1
    assert f"{dst}@duplicate" in result.output and "--force" in result.output
    assert vm.snapshot_guids(dst) == {"@duplicate": old, "@a": vm.snapshot_guids(src)["@a"]}
    vm.zferry("--force", src, dst)
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
