"""The command line's promises on real OpenZFS: refused zfs options change nothing, no option swallows
a dataset, +FILE pattern lists, helper programs as configured, --bwlimit without pv."""

from __future__ import annotations

import re
import time

import pytest

from tests.integration.test_replication import make
from tests.integration.vm import Vm, unique_name


@pytest.mark.parametrize("option", ["-F", "-uF", "-d", "-A"])
def test_recv_force_through_program_opts_exits_2_and_changes_nothing(
    vm: Vm, roots: tuple[str, str], option: str
) -> None:
    """`-F` would roll back a destination changed since its snapshot (losing the change) without --force."""
    src, dst = roots
    make(vm, src, [], ["s1"])
    vm.zferry(src, dst)
    vm.sh(f"""
        zfs snapshot {src}@s2
        zfs mount {dst}; echo mine > "$(zfs get -H -o value mountpoint {dst})/local-change"; zfs unmount {dst}
    """)
    before = vm.snapshot_guids(dst)
    result = vm.zferry(f"--zfs-recv-program-opts={option}", src, dst, check=False)
    assert result.returncode == 2, result.output
    assert "is not allowed" in result.output and re.search(r"--force|destination dataset|itself", result.output)
    assert vm.snapshot_guids(dst) == before == {"@s1": vm.snapshot_guids(src)["@s1"]}
    assert vm.sh(f"zfs get -H -p -o value written {dst}").strip() != "0"  # the change is still there


def test_send_holds_through_program_opts_exits_2(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    make(vm, src, [], ["s1"])
    result = vm.zferry("--zfs-send-program-opts=-wh", src, dst, check=False)
    assert result.returncode == 2 and "holds" in result.output
    assert not vm.exists(dst)


def test_allowed_recv_options_reach_zfs_receive(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    make(vm, src, [], ["s1"])
    vm.zferry("--zfs-recv-program-opts=-o com.zferry:tag=cli -x atime", src, dst)
    assert vm.sh(f"zfs get -H -o value com.zferry:tag {dst}").strip() == "cli"


def test_bare_dryrun_before_the_datasets_is_a_dry_run(vm: Vm, roots: tuple[str, str]) -> None:
    """`zferry --dryrun SRC DST` once failed with "invalid choice: SRC"."""
    src, dst = roots
    make(vm, src, [], ["s1"])
    result = vm.zferry("--dryrun", src, dst)
    assert "dry run" in result.output and not vm.exists(dst)
    vm.zferry("--include-snapshot-times-and-ranks", "notime", "latest 1", src, dst)
    assert list(vm.snapshot_guids(dst)) == ["@s1"]


def test_regex_options_read_patterns_from_a_file(vm: Vm, roots: tuple[str, str]) -> None:
    """PRD FR-USA-005: `--exclude-dataset-regex +FILE`, `--include-snapshot-regex +FILE`, one per line."""
    src, dst = roots
    make(vm, src, ["keep", "tmp", "cache", "cache/deep"], ["daily1", "hourly1", "weekly1"])
    files = f"/tmp/{unique_name('cli')}"
    vm.sh(f"""
        mkdir -p {files}
        printf '# scratch space\\ntmp\\n\\ncache\\n' > {files}/excludes
        printf 'daily.*\\nweekly.*\\n' > {files}/snaps
    """)
    try:
        vm.zferry(
            "-r",
            "--exclude-dataset-regex",
            f"+{files}/excludes",
            "--include-snapshot-regex",
            f"+{files}/snaps",
            src,
            dst,
        )
        assert vm.datasets(dst) == ["", "/keep"]
        assert sorted(vm.snapshot_guids(dst)) == ["/keep@daily1", "/keep@weekly1", "@daily1", "@weekly1"]
        missing = vm.zferry("--exclude-dataset-regex", f"+{files}/none", src, f"{dst}x", check=False)
        assert missing.returncode == 2 and "cannot read --exclude-dataset-regex file" in missing.output
    finally:
        vm.sh(f"rm -rf {files}")


def test_a_compressor_given_by_path_is_probed_and_used(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    """`--compression-program=/path/myzstd` was probed as `zstd` and silently dropped."""
    vm, (src, dst) = vm_hosts, roots
    make(vm, src, [], ["s1"], mib=1)
    tools = f"/tmp/{unique_name('cli')}"
    vm.sh(f'mkdir -p {tools}; ln -s "$(command -v zstd)" {tools}/myzstd')
    try:
        # --compress-when always: the random data would not pay for compression (stream_policy)
        result = vm.zferry(
            "-v", "-v", "--compress-when", "always", f"--compression-program={tools}/myzstd", src, f"hostb:{dst}"
        )
        assert f"{tools}/myzstd -c -1 -T0" in result.output and f"{tools}/myzstd -dc" in result.output
        assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
    finally:
        vm.sh(f"rm -rf {tools}")


def _path_without(vm: Vm, *programs: str) -> str:
    """A directory of links to every program on the VM's PATH except `programs`; returns it."""
    tools = f"/tmp/{unique_name('cli')}"
    removed = " ".join(f"{tools}/{p}" for p in programs)
    # One `ln` per directory (a process per program takes half a minute in the VM); the
    # directories go in reverse PATH order, so with -f the first on PATH wins, as for the shell.
    vm.sh(f"""
        shopt -s nullglob; mkdir -p {tools}
        for d in /bin /sbin /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin; do
          set -- "$d"/*; [ $# -eq 0 ] || ln -sf -t {tools} "$@"
        done
        rm -f {removed}
    """)
    return tools


def test_bwlimit_without_pv_falls_back_to_mbuffer(vm: Vm, roots: tuple[str, str]) -> None:
    """`--bwlimit` was silently ignored when pv was missing: now mbuffer -r limits the rate."""
    src, dst = roots
    make(vm, src, [], ["s1"], mib=3)
    tools = _path_without(vm, "pv")
    try:
        started = time.monotonic()
        result = vm.zferry("-v", "-v", "--bwlimit", "1m", src, dst, env=f"PATH={tools}")
        elapsed = time.monotonic() - started
        assert f"mbuffer -q -s 128k -m 128M -r {2**20}" in result.output
        assert "pv " not in result.output
        assert elapsed > 2.0  # 3 MiB of random data at 1 MiB/s
        assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
    finally:
        vm.sh(f"rm -rf {tools}")


def test_bwlimit_without_pv_or_mbuffer_is_refused(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    make(vm, src, [], ["s1"])
    tools = _path_without(vm, "pv", "mbuffer")
    try:
        result = vm.zferry("--bwlimit", "1m", src, dst, env=f"PATH={tools}", check=False)
        assert result.returncode == 1, result.output
        assert "limiting the rate needs pv on this machine or mbuffer" in result.output
        assert not vm.exists(dst)
    finally:
        vm.sh(f"rm -rf {tools}")
