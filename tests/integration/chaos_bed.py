"""The chaos test bed: a tree replicated pull-push through this machine with lifecycle options on,
zferry runs killed at random moments, and the invariants every crash must leave intact.

The destination is reached as `zfvm-c`, the VM's root under another name (`zfchaos`, uid 0) whose
login shell puts a counting `zfs` first on PATH: every `zfs receive` it runs is fed through `dd`,
which appends the bytes it handed to the receive (also when the receive or the connection dies) to
/var/tmp/zfchaos/count-<pool>_<root>. "Re-sent" bytes are then measured honestly: the total that
`zfs receive` got over every run, minus what one clean replication of the same tree gets.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tests.integration.test_crash import local_leftovers, vm_leftovers
from tests.integration.vm import PROJECT, Vm

COUNTER = "/var/tmp/zfchaos"
# Created once per VM: the uid-0 alias `zfchaos` (root's home and keys) with a login shell that puts
# the counting zfs first on PATH. Only ssh sessions as zfchaos see it; other tests are not affected.
SETUP_COUNTER = f"""
    mkdir -p {COUNTER}/bin
    cat > {COUNTER}/shell <<'EOF'
#!/bin/sh
PATH={COUNTER}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
exec /bin/sh "$@"
EOF
    cat > {COUNTER}/bin/zfs <<'EOF'
#!/bin/sh
# zfs for the chaos tests: dd feeds every `zfs receive` and appends how many bytes it handed over
case "$1" in
  receive|recv)
    for last; do :; done
    key=$(printf '%s' "$last" | cut -d/ -f1-2 | tr / _)
    trap '' PIPE
    dd bs=1M 2>>"{COUNTER}/count-$key" | /usr/sbin/zfs "$@"
    exit $?
    ;;
esac
exec /usr/sbin/zfs "$@"
EOF
    chmod 755 {COUNTER}/shell {COUNTER}/bin/zfs
    id zfchaos >/dev/null 2>&1 || useradd -o -u 0 -g 0 -M -d /root -s {COUNTER}/shell zfchaos
    usermod -p '*' zfchaos
"""


def counting_ssh_config(ssh_config: str, into: Path) -> str:
    """A copy of the tests' ssh config that also names `zfvm-c`: the VM as the counting `zfchaos`."""
    text = Path(ssh_config).read_text()
    extra = text.replace("Host zfvm-a zfvm-b", "Host zfvm-c").replace("User root", "User zfchaos")
    path = into / "ssh_config"
    path.write_text(text + extra)
    return str(path)


def received_bytes(vm: Vm, dst: str) -> int:
    """What every `zfs receive` into `dst` (pool/root) was given so far, by the counting zfs."""
    key = "_".join(dst.split("/")[:2])
    out = vm.sh(f"cat {COUNTER}/count-{key} 2>/dev/null || true")
    return sum(int(m.group(1)) for m in re.finditer(r"^(\d+) bytes", out, re.M))


def make_tree(vm: Vm, src: str, datasets: int, mib_each: float, snapshots: Sequence[str], round_: int = 1) -> None:
    """`datasets` children `d0`..`dN` of `src` (two levels), each with `mib_each` MiB of random data
    (written anew per round), and recursive snapshots; all in one VM script."""
    kib = int(mib_each * 1024)
    lines = []
    for name in tree_names(datasets):
        if round_ == 1:
            lines.append(f"zfs create -p {src}/{name}")
        lines.append(f"head -c {kib}K /dev/urandom > /{src}/{name}/data{round_}")
    lines += [f"zfs snapshot -r {src}@{snap}" for snap in snapshots]
    vm.sh("\n".join(lines))


def tree_names(datasets: int) -> list[str]:
    """A two-level tree: every fifth dataset has the next four as children."""
    names: list[str] = []
    for index in range(datasets):
        parent = index - index % 5
        names.append(f"d{index}" if index == parent else f"d{parent}/e{index}")
    return names


def descendants(pid: int) -> list[int]:
    """Every process below `pid` on this machine (from ps)."""
    ps = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in ps.splitlines():
        child, parent = (int(w) for w in line.split())
        children.setdefault(parent, []).append(child)
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(pid: int) -> int:
    """SIGKILL `pid` and every descendant at once; return how many processes were killed."""
    pids = [pid, *descendants(pid)]
    for each in pids:
        try:
            os.kill(each, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


class Run:
    """zferry on this machine in a session of its own; its log goes to a file (never a full pipe)."""

    def __init__(self, bed: ChaosBed, argv: Sequence[str], name: str) -> None:
        self.log = bed.tmp / f"{name}.log"
        env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"), TMPDIR=str(bed.run_tmp))
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "zferry", "--lock-dir", str(bed.lock_dir), *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.started = time.monotonic()

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, timeout: float = 120) -> bool:
        """Poll the log until it contains `text`; False if the run ended or the time ran out first."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return text in self.output()
            time.sleep(0.1)
        return True

    def wait(self, timeout: float = 900) -> int:
        return self.proc.wait(timeout=timeout)


@dataclass
class ChaosBed:
    """One chaos scenario: a source tree in the VM, its replica's root, and the runs so far."""

    vm: Vm
    ssh_config: str
    src: str
    dst: str
    tmp: Path
    plan: str = '{"chaos": {"": {"secondly": 2}}}'
    threads: int = 4
    history: list[str] = field(default_factory=list)
    count: int = 0

    @property
    def run_tmp(self) -> Path:
        """TMPDIR of every run (ssh control folders land here): one for all, as runs follow one another."""
        path = self.tmp / "t"
        path.mkdir(exist_ok=True)
        return path

    @property
    def lock_dir(self) -> Path:
        return self.tmp / "locks"

    def _ssh(self) -> list[str]:
        return ["--ssh-src-config-file", self.ssh_config, "--ssh-dst-config-file", self.ssh_config]

    def replicate_argv(self) -> list[str]:
        """Replication with lifecycle: create due snapshots, bookmark every sent one; the root is left
        out, so its copy is a placeholder (a property change when created)."""
        return [
            *self._ssh(),
            "-r",
            "--threads",
            str(self.threads),
            "--include-dataset-regex",
            ".+",
            "--create-src-snapshots",
            "--create-src-snapshots-plan",
            self.plan,
            "--create-bookmarks",
            "all",
            "--progress-interval",
            "1",
            f"zfvm-a:{self.src}",
            f"zfvm-c:{self.dst}",
        ]

    def plain_argv(self, dst: str, *extra: str) -> list[str]:
        """A plain replication of the same datasets (no lifecycle option): the clean reference."""
        return [*self._ssh(), *extra, "-r", "--include-dataset-regex", ".+", f"zfvm-a:{self.src}", f"zfvm-c:{dst}"]

    def receiving(self) -> bool:
        """True while a `zfs receive` into this destination runs in the VM."""
        return bool(self.vm.sh(f"pgrep -f '/usr/sbin/zfs receive .*{self.dst}' || true").strip())

    def prune_argv(self) -> list[str]:
        """Pruning by the plan, first the source (the hold keeps each latest common snapshot), then the
        destination (never what the source still has); `s<N>` snapshots are kept."""
        return [
            *self._ssh(),
            "-r",
            "--threads",
            str(self.threads),
            "--skip-replication",
            "--delete-dst-snapshots",
            "--delete-dst-snapshots-no-crosscheck",  # the bookmarks of every sent snapshot would keep them all
            "--include-snapshot-regex",
            "s[0-9]+",
            "--delete-dst-snapshots-except-plan",
            self.plan,
            "dummy",
            f"zfvm-a:{self.src}",
            f"zfvm-a:{self.src}",
            f"zfvm-c:{self.dst}",
        ]

    def start(self, argv: Sequence[str]) -> Run:
        self.count += 1
        return Run(self, argv, f"r{self.count}")

    def leftovers(self, seconds: float = 20, sockets: bool = True) -> list[str]:
        """Processes (here and in the VM) of these runs that outlive `seconds`, and (with `sockets`) the
        control sockets (a SIGKILLed ssh master cannot remove its own: the next run does)."""
        deadline = time.monotonic() + seconds
        while True:
            left = local_leftovers(self.tmp) + vm_leftovers(self.vm, self.src, self.dst) + self.vm_ssh_sessions()
            if not sockets:
                left = [line for line in left if not line.startswith("/")]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.5)

    def vm_ssh_sessions(self) -> list[str]:
        """The counting zfs (and dd) still running in the VM for this destination."""
        out = self.vm.sh(f"pgrep -af '{COUNTER}/bin/zfs .*{self.dst}' | grep -v pgrep || true")
        return [line for line in out.splitlines() if line.strip()]


Killer = Callable[[ChaosBed, Run, float], bool]


def kill_whole_tree(bed: ChaosBed, run: Run, at: float) -> bool:
    """kill -9 zferry and all its descendants `at` seconds into the run; False if it ended first."""
    if _sleep_unless_done(run, at):
        return False
    killed = kill_tree(run.proc.pid)
    bed.history.append(f"kill -9 of {killed} processes at {time.monotonic() - run.started:.1f} s")
    run.wait()
    return True


def kill_remote_receive(bed: ChaosBed, run: Run, at: float) -> bool:
    """kill -9 the remote `zfs receive` (the real one, not the counting shell) of the next transfer
    that runs `at` seconds into the run or later; False if the run ended with none seen."""
    return _kill_when(bed, run, at, f"/usr/sbin/zfs receive .*{bed.dst}", "remote zfs receive", remote=True)


def kill_ssh(bed: ChaosBed, run: Run, at: float) -> bool:
    """kill -9 one of zferry's ssh processes (a master or a client), chosen at random."""
    return _kill_when(bed, run, at, "^ssh ", "ssh", remote=False)


def kill_receive_or_ssh(bed: ChaosBed, run: Run, at: float) -> bool:
    """Alternately the remote `zfs receive` and one ssh (one bed, fewer runs than one test each)."""
    done = sum(1 for line in bed.history if line.startswith("kill -9"))
    return (kill_remote_receive, kill_ssh)[done % 2](bed, run, at)


def _kill_when(bed: ChaosBed, run: Run, at: float, pattern: str, what: str, remote: bool) -> bool:
    if _sleep_unless_done(run, at):
        return False
    rand = random.Random(int(at * 1000))
    while run.proc.poll() is None:
        if remote:
            script = f"for p in $(pgrep -f '{pattern}'); do [ \"$(cat /proc/$p/comm)\" = zfs ] && echo $p; done; true"
            pids = bed.vm.sh(script).split()
            if pids:
                bed.vm.sh(f"kill -9 {' '.join(pids)} 2>/dev/null || true")
        else:
            pids = [str(p) for p in descendants(run.proc.pid) if re.search(pattern, _args(p))]
            if pids:
                os.kill(int(rand.choice(pids)), signal.SIGKILL)
        if pids:
            bed.history.append(f"kill -9 of {what} at {time.monotonic() - run.started:.1f} s")
            return True
        time.sleep(0.2)
    return False


def _args(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _sleep_unless_done(run: Run, seconds: float) -> bool:
    """Sleep until `seconds` into the run; True if it ended before."""
    try:
        run.proc.wait(timeout=max(0.0, run.started + seconds - time.monotonic()))
        return True
    except subprocess.TimeoutExpired:
        return False
