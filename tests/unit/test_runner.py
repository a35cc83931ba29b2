"""The process runner with ordinary programs (no ZFS): pipelines, failures, timeouts, dry run."""

from __future__ import annotations

import os
import random
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zferry.errors import CommandError, Interrupted
from zferry.exec.host import LOCAL, Host
from zferry.exec.runner import Runner, Stage
from zferry.retry import is_transient


def test_run_returns_stdout() -> None:
    assert Runner().run(LOCAL, ["echo", "hello"]) == "hello\n"


def test_failure_carries_stderr_and_status() -> None:
    with pytest.raises(CommandError) as info:
        Runner().run(LOCAL, ["sh", "-c", "echo broken >&2; exit 3"])
    assert info.value.returncode == 3 and "broken" in str(info.value)


def test_pipeline_streams_between_processes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    Runner().pipeline([Stage(LOCAL, ("printf", "abc")), Stage(LOCAL, ("sh", "-c", f"cat > {out}"))])
    assert out.read_text() == "abc"


def test_pipeline_names_the_stage_that_failed_for_its_own_reason() -> None:
    with pytest.raises(CommandError) as info:
        Runner().pipeline(
            [Stage(LOCAL, ("yes",)), Stage(LOCAL, ("sh", "-c", "head -c 10 >/dev/null; echo disk full >&2; exit 1"))]
        )
    message = str(info.value)
    assert "disk full" in message and "sh -c" in message
    assert "yes -> exit" in message  # every stage's status is reported


def test_timeout_kills_the_command() -> None:
    started = time.monotonic()
    with pytest.raises(CommandError, match="timed out"):
        Runner(timeout=0.5).run(LOCAL, ["sleep", "30"])
    assert time.monotonic() - started < 10


def test_dry_run_runs_nothing_that_changes_anything(tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "touched"
    runner = Runner(dry_run=True)
    assert runner.run(LOCAL, ["touch", str(marker)], changes=True) == ""
    runner.pipeline([Stage(LOCAL, ("echo", "x")), Stage(LOCAL, ("touch", str(marker)))])
    assert not marker.exists()
    assert runner.run(LOCAL, ["echo", "read-only"]) == "read-only\n"  # reads still run


def test_terminate_all_stops_running_children_and_refuses_new_ones() -> None:
    import threading

    runner = Runner()
    errors: list[BaseException] = []

    def slow() -> None:
        try:
            runner.pipeline([Stage(LOCAL, ("sleep", "30")), Stage(LOCAL, ("cat",))])
        except Interrupted as error:
            errors.append(error)

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.5)
    runner.terminate_all()
    worker.join(timeout=10)
    assert not worker.is_alive() and errors
    with pytest.raises(Interrupted, match="stopped"):
        runner.run(LOCAL, ["true"])


# -- signals: many interrupted runs, none hangs; exit 130 / 143 --------------------------------------

SRC = str(Path(__file__).resolve().parents[2] / "src")
BUSY_RUN = """
import sys, threading
from zferry.cli.main import main
from zferry.errors import ZferryError
from zferry.exec.host import LOCAL
from zferry.exec.runner import Runner, Stage
from zferry.exec.signals import SignalStop

runner = Runner()
signals = SignalStop(runner)
def busy():
    try:
        while True:
            runner.pipeline([Stage(LOCAL, ("sh", "-c", "sleep 0.01; echo x")), Stage(LOCAL, ("cat",))])
    except ZferryError:
        pass
try:
    for _ in range(3):  # like the scheduler: workers start processes while the main thread does too
        threading.Thread(target=busy, daemon=True).start()
    print("started", flush=True)
    while True:
        runner.run(LOCAL, ["true"])
except ZferryError as error:
    sys.exit(error.exit_code)
finally:
    runner.terminate_all()
    signals.close()
"""


def _busy_process() -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", BUSY_RUN], stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=SRC)
    )
    assert proc.stdout is not None and proc.stdout.readline() == "started\n"
    return proc


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        child, parent = (int(w) for w in line.split())
        children.setdefault(parent, []).append(child)
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_twenty_runs_interrupted_at_random_moments_all_end_promptly(signum: int, status: int) -> None:
    """The old handler took the runner's lock, which the interrupted main thread could hold: a hang."""
    rand = random.Random(7)
    for _ in range(10):
        proc = _busy_process()
        try:
            time.sleep(rand.uniform(0, 0.3))
            children = _descendants(proc.pid)
            proc.send_signal(signum)
            started = time.monotonic()
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("an interrupted run hung") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert code == status and time.monotonic() - started < 10
        left = [pid for pid in children if os.path.exists(f"/proc/{pid}") and _state(pid) != "Z"]
        assert not left, f"children left running: {left}"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_children_die_with_a_killed_zferry() -> None:
    """PR_SET_PDEATHSIG: a kill -9 of zferry leaves no child behind."""
    proc = _busy_process()
    try:
        deadline = time.monotonic() + 10
        children = _descendants(proc.pid)
        while not children and time.monotonic() < deadline:  # a loaded machine may take a while
            time.sleep(0.05)
            children = _descendants(proc.pid)
        assert children
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") and _state(p) != "Z" for p in children):
        time.sleep(0.05)
    assert not [p for p in children if os.path.exists(f"/proc/{p}") and _state(p) != "Z"]


# -- stalls --------------------------------------------------------------------------------------------


def test_a_pipeline_whose_byte_count_stops_moving_is_stopped_as_transient() -> None:
    seen: list[int] = []
    # A meter that reports 100, then 200, then nothing more while the stream stands still.
    meter = Stage(LOCAL, ("sh", "-c", "echo 100 >&2; sleep 0.3; echo 200 >&2; cat; sleep 60"), seen.append)
    runner = Runner(stall_timeout=1)
    started = time.monotonic()
    with pytest.raises(CommandError, match="stalled: no byte moved for 1 s") as info:
        runner.pipeline([Stage(LOCAL, ("sh", "-c", "echo data; sleep 60")), meter, Stage(LOCAL, ("cat",))])
    assert 1 <= time.monotonic() - started < 8
    assert info.value.transport_failure and is_transient(info.value)  # retried, resuming
    assert seen == [100, 200]


def test_a_moving_byte_count_is_not_a_stall() -> None:
    counts = "; ".join(f"echo {n} >&2; sleep 0.2" for n in range(1, 13))
    meter = Stage(LOCAL, ("sh", "-c", f"{counts}; cat"), lambda n: None)
    Runner(stall_timeout=1).pipeline([Stage(LOCAL, ("echo", "x")), meter, Stage(LOCAL, ("cat",))])


def test_a_stopped_stage_is_killed_too(tmp_path: Path) -> None:
    """SIGTERM waits in a stopped process; the runner sends SIGCONT after it."""
    meter = Stage(LOCAL, ("sh", "-c", "echo 1 >&2; kill -STOP $$; cat"), lambda n: None)
    started = time.monotonic()
    with pytest.raises(CommandError, match="stalled"):
        Runner(stall_timeout=1).pipeline([Stage(LOCAL, ("sleep", "60")), meter, Stage(LOCAL, ("cat",))])
    assert time.monotonic() - started < 8


# -- remote commands: sh -c, whatever the login shell ----------------------------------------------------


def test_remote_commands_are_wrapped_in_sh_c(tmp_path: Path) -> None:
    host = Host("h", "root", ssh_program="ssh")
    argv = host.command(["zfs", "list", "tank/it's here"])
    assert argv[:6] == ["ssh", "-l", "root", "--", "h", "sh"] and argv[6] == "-c"
    assert shlex.split(shlex.split(argv[7])[0]) == ["zfs", "list", "tank/it's here"]
    assert host.pipeline([["zfs", "send", "a@b"], ["zstd", "-c"]])[-3:-1] == ["sh", "-c"]
    # What the remote login shell does with the words ssh joins: it runs `sh -c <script>`.
    fake_ssh = tmp_path / "ssh"
    fake_ssh.write_text('#!/bin/sh\nshift 4\nexec /bin/sh -c "$*"\n')  # drops "-l root -- h"
    fake_ssh.chmod(0o755)
    local_sh = Host("h", "root", ssh_program=str(fake_ssh))
    assert Runner().run(local_sh, ["printf", "%s|", "it's", "$HOME", "a b"]) == "it's|$HOME|a b|"


def test_a_silent_ssh_255_does_not_hide_the_receives_reason(tmp_path: Path) -> None:
    """The stage after a receive that failed for its own reason: ZFS's words and what to do are shown."""
    from zferry import zfs

    fake_ssh = tmp_path / "ssh"
    fake_ssh.write_text("#!/bin/sh\ncat >/dev/null; exit 255\n")  # like an ssh whose reader went away
    fake_ssh.chmod(0o755)
    remote = Host("src", ssh_program=str(fake_ssh))
    receive = "echo 'cannot receive new filesystem stream: destination dst/a contains partially-complete state' >&2"
    # The receive ends only once the ssh has (its stdin reaches EOF): else, on a loaded machine, the
    # runner finds the ssh still starting when the receive fails and terminates it (-15, not 255).
    with pytest.raises(CommandError) as info:
        Runner().pipeline(
            [
                Stage(remote, ("zfs", "send", "src/a@s1")),
                Stage(LOCAL, ("sh", "-c", f"{receive}; cat >/dev/null; exit 1")),
            ],
            classify=zfs.classify_error,
        )
    message = str(info.value)
    assert message.startswith("sh -c failed: cannot receive") and "partially-complete state" in message
    assert "zfs receive -A" in message and "-> exit 255" in message
    assert is_transient(info.value)  # a receive of a run that just died: wait for it and resume


def test_a_silent_ssh_255_alone_is_a_lost_connection(tmp_path: Path) -> None:
    """A connection that dropped without a word: the other stages died of it; retried as transient."""
    fake_ssh = tmp_path / "ssh"
    fake_ssh.write_text("#!/bin/sh\nhead -c 10 >/dev/null; exit 255\n")
    fake_ssh.chmod(0o755)
    remote = Host("dst", ssh_program=str(fake_ssh))
    with pytest.raises(CommandError) as info:
        Runner().pipeline([Stage(LOCAL, ("yes",)), Stage(remote, ("zfs", "receive", "dst/a"))])
    assert "exit status 255" in str(info.value) and info.value.transport_failure
