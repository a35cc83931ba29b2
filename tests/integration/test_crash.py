"""Interrupted and killed runs against real OpenZFS and real ssh: nothing hangs, nothing is left
running (here or in the VM), the next run completes; stalled transfers are stopped and resumed.

Pull-push runs zferry on this machine with both sides over ssh to the VM (`zfvm-a`, `zfvm-b`).
Every zferry started here gets a TMPDIR of its own, so its ssh control sockets and processes can
be told apart from other tests' by that folder's name."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_replication import make
from tests.integration.vm import GUEST_CHECKOUT, PROJECT, Vm


class HostRun:
    """zferry on this machine in a session of its own, with a private TMPDIR and lock folder."""

    def __init__(self, tmp: Path, ssh_config: str, src: str, dst: str, *extra: str) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        cfg = ["--ssh-src-config-file", ssh_config, "--ssh-dst-config-file", ssh_config]
        argv = [sys.executable, "-m", "zferry", *cfg, "--lock-dir", str(tmp / "locks"), *extra]
        env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"), TMPDIR=str(tmp))
        self.proc = subprocess.Popen(
            [*argv, f"zfvm-a:{src}", f"zfvm-b:{dst}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )

        self.lines: list[str] = []

    def wait_for(self, *texts: str) -> bool:
        """Read zferry's log until a line contains one of `texts` (it logs "send ..." just before a
        transfer); False if it ended first."""
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, ""):
            self.lines.append(line)
            if any(text in line for text in texts):
                return True
        return False

    def finish(self, timeout: float = 600) -> tuple[int, str]:
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, "".join(self.lines) + out


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short folder in /tmp (ssh control socket paths must stay under ~100 characters)."""
    path = Path(tempfile.mkdtemp(prefix="zfc", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def crash_roots(vm: Vm, roots: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """`roots`, destroyed afterwards: these tests move a few hundred MiB through small shared pools."""
    yield roots
    vm.sh(f"zfs destroy -r {roots[0]} 2>/dev/null || true; zfs destroy -r {roots[1]} 2>/dev/null || true")


def local_leftovers(tmp: Path) -> list[str]:
    """Processes here that mention the run's private folder (its ssh masters and clients), and its sockets."""
    ps = subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True, check=True).stdout
    procs = [line for line in ps.splitlines() if str(tmp) in line and " Z" not in line[:12]]
    sockets = [str(p) for p in tmp.rglob("*") if p.is_socket()]
    return procs + sockets


def vm_leftovers(vm: Vm, *names: str) -> list[str]:
    """zfs send/receive (and their helpers' shells) in the VM that name one of this test's datasets."""
    pattern = "|".join(names)
    out = vm.sh(f"pgrep -af 'zfs (send|receive|recv)' | grep -E '{pattern}' | grep -v pgrep || true")
    return [line for line in out.splitlines() if line.strip()]


def wait_until_clean(vm: Vm, tmp: Path, src: str, dst: str, seconds: float = 15) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        left = local_leftovers(tmp) + vm_leftovers(vm, src, dst)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def receiving(vm: Vm, dst: str) -> bool:
    return bool(vm.sh(f"pgrep -f 'zfs receive.* {dst}$' || true").strip())


@pytest.mark.parametrize("whole_group", [False, True], ids=["process", "group"])
def test_kill_9_mid_pull_push_leaves_nothing_running_and_the_next_run_resumes(
    vm: Vm, crash_roots: tuple[str, str], ssh_config: str, short_tmp: Path, whole_group: bool
) -> None:
    """SIGKILL of zferry (or its process group) mid-transfer: its ssh masters die with it (they are
    its children, with PR_SET_PDEATHSIG), so the remote send and receive end too; the rerun resumes."""
    src, dst = crash_roots
    make(vm, src, [], ["s1"], mib=128)
    run = HostRun(short_tmp / "k", ssh_config, src, dst, "--compression-program", "-")
    assert run.wait_for(f"send full {src}@s1"), "".join(run.lines)
    time.sleep(2)
    assert receiving(vm, dst), "the transfer was over too soon for this test"
    if whole_group:
        os.killpg(run.proc.pid, signal.SIGKILL)
    else:
        run.proc.kill()
    run.proc.wait()
    left = wait_until_clean(vm, run.tmp, src, dst)
    assert not left, f"left running after kill -9: {left}"
    status, out = HostRun(short_tmp / "rr", ssh_config, src, dst).finish()
    assert status == 0, out
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


INTERRUPTED_RUNS = int(os.environ.get("ZFERRY_INTERRUPTED_RUNS", "8"))  # 20 or more for a longer trial


def test_interrupted_pull_push_runs_end_within_seconds_with_130_or_143(
    vm: Vm, crash_roots: tuple[str, str], ssh_config: str, short_tmp: Path
) -> None:
    """SIGINT/SIGTERM at random moments of real runs: each ends promptly with 128+signal, kills
    every descendant here and in the VM; afterwards a plain run completes (exit 0)."""
    src, dst = crash_roots
    make(vm, src, [], ["s1"], mib=64)
    rand = random.Random(20)
    seconds: list[float] = []
    for index in range(INTERRUPTED_RUNS):
        signum = (signal.SIGINT, signal.SIGTERM)[index % 2]
        run = HostRun(short_tmp / f"r{index}", ssh_config, src, dst, "--compression-program", "-")
        if index % 4 < 2:  # at any moment: connecting, probing, listing, sending
            time.sleep(rand.uniform(0.0, 10.0))
        else:  # while a stream flows
            run.wait_for(": send ", ": resuming an interrupted transfer")
            time.sleep(rand.uniform(0.0, 2.0))
        sent = time.monotonic()
        run.proc.send_signal(signum)
        try:
            status, out = run.finish(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(run.proc.pid, signal.SIGKILL)
            raise AssertionError(f"run {index} hung after {signum!r}") from None
        seconds.append(time.monotonic() - sent)
        assert status in (0, 128 + signum), out  # 0: it had finished before the signal came
        left = wait_until_clean(vm, run.tmp, src, dst)
        assert not left, f"run {index}: left running: {left}"
        vm.sh(f"zfs snapshot {src}@i{index}")  # something new to send next time
    print(f"seconds from signal to exit: max {max(seconds):.2f}, mean {sum(seconds) / len(seconds):.2f}")
    status, out = HostRun(short_tmp / "f", ssh_config, src, dst).finish()
    assert status == 0, out
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_a_stalled_transfer_is_stopped_and_resumed(vm: Vm, crash_roots: tuple[str, str]) -> None:
    """SIGSTOP the receive of a local run in the VM: pv's byte count stops, --stall-timeout kills the
    pipeline (SIGTERM and SIGCONT), and the retry resumes it to completion."""
    src, dst = crash_roots
    make(vm, src, [], ["s1"], mib=48)
    out = vm.sh(f"""
        cd {GUEST_CHECKOUT}
        PYTHONPATH=src python3 -m zferry --stall-timeout 3 --progress-interval 1 {src} {dst} > /tmp/{dst.replace("/", "_")}.log 2>&1 &
        pid=$!
        for i in $(seq 600); do pgrep -f 'zfs receive.* {dst}$' >/dev/null && break; sleep 0.1; done
        pkill -STOP -f 'zfs receive.* {dst}$'
        status=0; wait $pid || status=$?
        cat /tmp/{dst.replace("/", "_")}.log; echo "status=$status"
    """)
    assert "status=0" in out, out
    assert "transfer stalled: no byte moved for 3 s" in out, out
    # A signal takes effect only when the receive's ioctl returns: if the whole stream was already in
    # the pipes when it stopped, the killed receive still completed and the retry finds it up to date.
    assert "resuming" in out or " 1 up to date" in out, out
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
    assert not vm_leftovers(vm, src, dst)
