"""Helper programs as configured (--compression-program=/usr/bin/zstd, ...), and --bwlimit without pv."""

from __future__ import annotations

from pathlib import Path

import pytest

from zferry.cli.main import build_config, parse_arguments
from zferry.endpoints import Connector
from zferry.errors import ZferryError
from zferry.exec.host import LOCAL, Host
from zferry.exec.probe import Capabilities, parse_probe, probe, probe_script
from zferry.exec.runner import Runner
from zferry.exec.ssh import SshConnections, SshSettings
from zferry.transfer import StreamOptions, byte_count, transfer_stages

SEND = ["zfs", "send", "tank/a@s1"]
RECV = ["zfs", "receive", "-u", "-s", "backup/a"]
A = Host("hosta", "root")
B = Host("hostb")


@pytest.fixture
def myzstd(tmp_path: Path) -> str:
    path = tmp_path / "bin" / "myzstd"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\nexec cat\n")
    path.chmod(0o755)
    return str(path)


def caps(*programs: str) -> Capabilities:
    return Capabilities(True, frozenset(programs))


def test_the_configured_programs_are_the_ones_probed(myzstd: str) -> None:
    args = parse_arguments(
        [f"--compression-program={myzstd}", "--mbuffer-program=mbuf2", "--pv-program=-", "a/b", "c/d"]
    )
    assert build_config(args).stream.programs() == (myzstd, "mbuf2")


def test_the_probe_script_finds_a_program_by_path_and_reports_it_as_given(myzstd: str) -> None:
    # the real shell script, run locally: one sh process for every helper (one round trip when remote)
    out = Runner().run(LOCAL, probe_script([myzstd, "zferry-no-such-helper", "sh"]))
    found = parse_probe(out)
    assert found.has(myzstd) and found.has("sh") and not found.has("zferry-no-such-helper")


def test_the_probe_script_quotes_program_names() -> None:
    script = probe_script(["/opt/my tools/zstd"])[2]
    assert "command -v '/opt/my tools/zstd'" in script and "echo '/opt/my tools/zstd'" in script


def test_local_probe_and_connector_look_for_the_configured_paths(myzstd: str) -> None:
    assert probe(Runner(), LOCAL, [myzstd]).has(myzstd)
    connector = Connector(Runner(), SshConnections(SshSettings()), programs=(myzstd, "zferry-no-such-helper"))
    local = connector.local()
    assert local.has(myzstd) and not local.has("zferry-no-such-helper") and not local.has("zstd")


def test_a_custom_compressor_is_used_when_both_ends_have_it() -> None:
    opts = StreamOptions(compression="/usr/local/bin/myzstd", progress_interval=0)
    stages = transfer_stages(
        SEND, RECV, A, B, caps("/usr/local/bin/myzstd"), caps("/usr/local/bin/myzstd"), caps(), opts
    )
    assert [s.argv[0] for s in stages] == ["zfs", "/usr/local/bin/myzstd", "/usr/local/bin/myzstd", "zfs"]
    default_named = transfer_stages(SEND, RECV, A, B, caps("zstd"), caps("zstd"), caps(), opts)
    assert [s.argv[0] for s in default_named] == ["zfs", "zfs"]


@pytest.mark.parametrize(("text", "count"), [("1", 1), ("500k", 512_000), ("10m", 10 * 2**20), ("1.5G", 3 * 2**29)])
def test_byte_counts_use_binary_units(text: str, count: int) -> None:
    assert byte_count(text) == count


def test_bwlimit_uses_pv_when_this_machine_has_it() -> None:
    opts = StreamOptions(bwlimit="1m", progress_interval=0)
    stages = transfer_stages(SEND, RECV, LOCAL, LOCAL, caps("pv", "mbuffer"), caps("pv", "mbuffer"), caps("pv"), opts)
    assert [list(s.argv) for s in stages] == [SEND, ["pv", "-q", "-L", "1m"], RECV]


def test_bwlimit_without_pv_falls_back_to_mbuffer_rate_limit_locally() -> None:
    opts = StreamOptions(bwlimit="1m", progress_interval=0)
    local = caps("mbuffer")
    stages = transfer_stages(SEND, RECV, LOCAL, LOCAL, local, local, local, opts)
    assert [list(s.argv) for s in stages] == [
        SEND,
        ["mbuffer", "-q", "-s", "128k", "-m", "128M", "-r", str(2**20)],
        RECV,
    ]
    no_pv = StreamOptions(bwlimit="1m", pv=None, progress_interval=0)  # --pv-program=-
    with_pv = caps("mbuffer", "pv")
    assert "-r" in transfer_stages(SEND, RECV, LOCAL, LOCAL, with_pv, with_pv, with_pv, no_pv)[1].argv


def test_bwlimit_without_pv_limits_one_mbuffer_of_a_network_hop() -> None:
    opts = StreamOptions(bwlimit="2m", progress_interval=0)
    both = transfer_stages(SEND, RECV, LOCAL, B, caps("mbuffer"), caps("mbuffer"), caps("mbuffer"), opts)
    limits = [s for s in both if "-r" in s.argv]
    assert len(limits) == 1 and limits[0].host == LOCAL and limits[0].argv[-1] == str(2 * 2**20)
    only_dst = transfer_stages(SEND, RECV, A, B, caps(), caps("mbuffer"), caps(), opts)
    assert [(s.host, s.argv[0], s.argv[-2:]) for s in only_dst[1:2]] == [(B, "mbuffer", ("-r", str(2 * 2**20)))]


def test_bwlimit_without_pv_or_mbuffer_is_refused_with_what_to_install() -> None:
    opts = StreamOptions(bwlimit="1m", progress_interval=0)
    with pytest.raises(ZferryError, match="--bwlimit 1m: limiting the rate needs pv on this machine or mbuffer"):
        transfer_stages(SEND, RECV, LOCAL, LOCAL, caps(), caps(), caps(), opts)
    off = StreamOptions(bwlimit="1m", mbuffer=None, progress_interval=0)  # --mbuffer-program=-
    with pytest.raises(ZferryError, match="drop --bwlimit"):
        transfer_stages(SEND, RECV, A, B, caps("mbuffer"), caps("mbuffer"), caps(), off)


def test_a_remote_host_is_probed_for_every_configured_helper_in_one_call() -> None:
    class Recorder(Runner):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[list[str]] = []

        def run(self, host: Host, argv: object, **kwargs: object) -> str:  # type: ignore[override]
            self.calls.append(list(argv))  # type: ignore[call-overload]
            return "uid=0 now=1700000000\n/opt/z/myzstd\nmbuffer\n"

    runner = Recorder()
    found = probe(runner, A, ["/opt/z/myzstd", "mbuffer", "pv"])
    assert len(runner.calls) == 1 and all(p in runner.calls[0][2] for p in ("/opt/z/myzstd", "mbuffer", "pv"))
    assert found.has("/opt/z/myzstd") and found.has("mbuffer") and not found.has("pv")


def test_the_probe_script_runs_with_no_helper_programs() -> None:
    out = Runner().run(LOCAL, probe_script([]))
    assert parse_probe(out).programs == frozenset()
    assert "uid=" in out
