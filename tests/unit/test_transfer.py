"""Transfer pipelines as data: which helpers go where, and how the command is rendered and quoted."""

from __future__ import annotations

import shlex

from zferry.exec.host import LOCAL, Host
from zferry.exec.probe import Capabilities, parse_probe, probe_script
from zferry.exec.runner import describe, group_by_host
from zferry.transfer import StreamOptions, transfer_stages

ALL = Capabilities(True, frozenset({"zstd", "mbuffer", "pv"}))
NONE = Capabilities(True, frozenset())
SEND = ["zfs", "send", "tank/a@s1"]
RECV = ["zfs", "receive", "-u", "-s", "backup/a"]
A = Host("hosta", "root")
B = Host("hostb")
QUIET = StreamOptions(progress_interval=0)


def words(stages: list) -> list[list[str]]:  # type: ignore[type-arg]
    return [[s.host.label, *s.argv] for s in stages]


def test_local_transfer_is_just_send_and_receive() -> None:
    assert words(transfer_stages(SEND, RECV, LOCAL, LOCAL, ALL, ALL, ALL, QUIET)) == [
        ["local", *SEND],
        ["local", *RECV],
    ]


def test_push_compresses_and_buffers_and_meters_uncompressed_bytes() -> None:
    opts = StreamOptions(progress_interval=30)
    stages = transfer_stages(SEND, RECV, LOCAL, B, ALL, ALL, ALL, opts, size_hint=1000)
    assert [w[1] for w in words(stages)] == ["zfs", "pv", "zstd", "mbuffer", "mbuffer", "zstd", "zfs"]
    assert tuple(stages[1].argv[-2:]) == ("-s", "1000")
    sh_c = shlex.split(describe(stages).split(" | ssh ")[1])[-3:]
    assert sh_c[:2] == ["sh", "-c"]
    remote = shlex.split(sh_c[2])[0]
    assert remote.startswith("{ mbuffer -q -s 1024k -m 128M || {")
    assert "| { zstd -dc || {" in remote and remote.endswith(
        '{ zfs receive -u -s backup/a || { echo "zferry-stage-failed $? 2" >&2; exit 1; }; }'
    )


def test_mbuffer_blocks_are_large_unless_the_buffer_is_small_or_limits_the_rate() -> None:
    def buffers(options: StreamOptions) -> list[list[str]]:
        stages = transfer_stages(SEND, RECV, A, B, ALL, ALL, NONE, options)
        return [list(s.argv) for s in stages if s.argv[0] == "mbuffer"]

    assert buffers(QUIET) == [["mbuffer", "-q", "-s", "1024k", "-m", "128M"]] * 2
    assert buffers(StreamOptions(mbuffer_size="5M", progress_interval=0))[0][:4] == ["mbuffer", "-q", "-s", "1024k"]
    assert buffers(StreamOptions(mbuffer_size="4M", progress_interval=0))[0][:4] == ["mbuffer", "-q", "-s", "128k"]
    limited = buffers(StreamOptions(pv=None, bwlimit="1m", progress_interval=0))
    assert limited == [["mbuffer", "-q", "-s", "128k", "-m", "128M", "-r", str(2**20)], limited[1]]


def test_compression_only_when_both_ends_have_it_and_can_be_turned_off() -> None:
    only_src = transfer_stages(SEND, RECV, A, B, ALL, NONE, NONE, QUIET)
    assert [w[1] for w in words(only_src)] == ["zfs", "mbuffer", "zfs"]
    off = transfer_stages(
        SEND, RECV, A, B, ALL, ALL, NONE, StreamOptions(compression=None, mbuffer=None, progress_interval=0)
    )
    assert [w[1] for w in words(off)] == ["zfs", "zfs"]


def test_pull_meters_after_decompression() -> None:
    stages = transfer_stages(SEND, RECV, A, LOCAL, ALL, ALL, ALL, StreamOptions(progress_interval=1), 77)
    assert [w[1] for w in words(stages)] == ["zfs", "zstd", "mbuffer", "mbuffer", "zstd", "pv", "zfs"]


def test_same_remote_host_runs_as_one_ssh_unless_metered() -> None:
    stages = transfer_stages(SEND, RECV, A, A, ALL, ALL, ALL, QUIET)
    groups = group_by_host(stages)
    assert len(groups) == 1 and groups[0][1] == [SEND, RECV]
    limited = transfer_stages(SEND, RECV, A, A, ALL, ALL, ALL, StreamOptions(bwlimit="1m", progress_interval=0))
    assert len(group_by_host(limited)) == 3


def test_pull_push_meters_without_size_when_compressed() -> None:
    stages = transfer_stages(SEND, RECV, A, B, ALL, ALL, ALL, StreamOptions(progress_interval=5), 500)
    meter = next(s for s in stages if s.argv[0] == "pv")
    assert "-s" not in meter.argv


def test_remote_stage_failure_is_attributed_to_the_stage() -> None:
    from zferry.exec.runner import _stage_result

    result = _stage_result(A, [SEND, ["zstd", "-c"]], 0, "cannot open 'tank/a@s1'\nzferry-stage-failed 1 0\n")
    assert result.argv == SEND and result.returncode == 1 and result.stderr == "cannot open 'tank/a@s1'\n"
    ok = _stage_result(A, [SEND, ["zstd", "-c"]], 0, "")
    assert ok.returncode == 0


def test_remote_words_are_quoted() -> None:
    nasty = ["zfs", "send", "tank/with space@s 1"]
    cmd = A.command(nasty)
    assert cmd[-3:-1] == ["sh", "-c"] and shlex.split(cmd[-1]) == ["zfs send 'tank/with space@s 1'"]
    assert shlex.split(shlex.split(cmd[-1])[0]) == nasty
    assert cmd[:3] == ["ssh", "-l", "root"]


def test_sudo_prefix_only_on_zfs() -> None:
    host = Host("h", zfs_prefix=("sudo", "-n"))
    assert host.command(["zfs", "list"])[-3:] == ["sh", "-c", "'sudo -n zfs list'"]
    assert host.command(["zstd", "-dc"])[-1] == "'zstd -dc'"


def test_probe_roundtrip() -> None:
    caps = parse_probe("uid=1000\nzstd\npv\n")
    assert not caps.is_root and caps.has("zstd") and not caps.has("mbuffer")
    assert probe_script(["zstd"])[:2] == ["sh", "-c"]
