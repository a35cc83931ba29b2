"""Counting a local stage's output from the kernel's write counter instead of piping it through pv."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import pytest

from zferry.errors import CommandError
from zferry.exec import iocount
from zferry.exec.host import LOCAL, Host
from zferry.exec.iocount import Sampler, WriteMeter
from zferry.exec.probe import Capabilities
from zferry.exec.runner import Runner, Stage
from zferry.transfer import StreamOptions, counts_sender, transfer_stages

pytestmark = pytest.mark.skipif(not iocount.available(), reason="needs /proc/<pid>/io (Linux)")
ALL = Capabilities(True, frozenset({"zstd", "mbuffer", "pv"}))
SEND = ["zfs", "send", "tank/a@s1"]
RECV = ["zfs", "receive", "-u", "-s", "backup/a"]
PROGRESS = StreamOptions(progress_interval=30)


def programs(stages: list[Stage]) -> list[str]:
    return [s.argv[0] for s in stages]


def test_written_follows_what_a_process_writes() -> None:
    before = iocount.written(os.getpid())
    assert before is not None
    with tempfile.TemporaryFile() as handle:
        os.write(handle.fileno(), b"x" * 12345)
    after = iocount.written(os.getpid())
    assert after is not None and after - before >= 12345
    assert iocount.written(2**22 + 12345) is None  # no such process


def test_a_metered_stages_final_count_is_exact_and_taken_before_it_is_reaped() -> None:
    counts: list[int] = []
    writer = (
        sys.executable,
        "-S",  # no site: under the suite's coverage, a child Python would also count its data file's writes
        "-c",
        "import sys, time; out = sys.stdout.buffer; out.write(b'x' * 100000); out.flush(); time.sleep(0.8);"
        "out.write(b'y' * 200000); out.flush()",
    )
    Runner().pipeline([Stage(LOCAL, writer, write_meter=WriteMeter(counts.append, 0.3)), Stage(LOCAL, ("cat",))])
    assert counts[-1] == 300000  # read after cat ended, before the writer was reaped
    assert 100000 in counts[:-1]  # and while it ran, at the interval


def test_a_metered_stage_whose_count_stops_is_a_stall() -> None:
    writer = (sys.executable, "-c", "import sys, time; sys.stdout.write('x'); sys.stdout.flush(); time.sleep(60)")
    started = time.monotonic()
    with pytest.raises(CommandError, match="stalled"):
        Runner(stall_timeout=1).pipeline(
            [Stage(LOCAL, writer, write_meter=WriteMeter(lambda n: None, 0.2)), Stage(LOCAL, ("cat",))]
        )
    assert time.monotonic() - started < 8


def test_a_reaped_process_is_never_sampled() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    seen: list[int] = []
    Sampler(proc, 0.0, seen.append).sample()
    assert seen == []


def test_local_progress_counts_the_sender_instead_of_piping_through_pv() -> None:
    stages = transfer_stages(SEND, RECV, LOCAL, LOCAL, ALL, ALL, ALL, PROGRESS, None, print, count_writes=True)
    assert programs(stages) == ["zfs", "zfs"]
    assert stages[0].write_meter is not None and stages[0].write_meter.interval == 30
    push = transfer_stages(SEND, RECV, LOCAL, Host("b"), ALL, ALL, ALL, PROGRESS, None, print, count_writes=True)
    assert programs(push) == ["zfs", "zstd", "mbuffer", "mbuffer", "zstd", "zfs"]
    assert push[0].write_meter is not None


def test_pv_stays_where_the_kernels_count_cannot_serve() -> None:
    def meter(send: list[str], src: Host, options: StreamOptions, count: bool = True) -> list[str]:
        return programs(transfer_stages(send, RECV, src, LOCAL, ALL, ALL, ALL, options, None, print, count))

    assert meter(SEND, LOCAL, StreamOptions(progress_interval=30, bwlimit="1m")) == ["zfs", "pv", "zfs"]
    assert meter(SEND, Host(zfs_prefix=("sudo", "-n")), PROGRESS) == ["zfs", "pv", "zfs"]  # sudo's child
    assert meter(["zfs", "send", "-vc", "tank/a@s1"], LOCAL, PROGRESS) == ["zfs", "pv", "zfs"]  # -v text
    assert meter(SEND, LOCAL, PROGRESS, count=False) == ["zfs", "pv", "zfs"]  # no /proc here
    assert meter(SEND, Host("a"), PROGRESS)[-2:] == ["pv", "zfs"]  # pull: the sender is remote
    assert not counts_sender(SEND, LOCAL, StreamOptions(progress_interval=0))
    assert counts_sender(["zfs", "send", "-Lce", "tank/a@s1"], LOCAL, PROGRESS)
