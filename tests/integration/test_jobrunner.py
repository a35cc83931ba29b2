"""zferry-jobrunner against the sandbox VM, run from this machine: `zfvm-a` and `zfvm-b` (the VM twice)
stand for two destination hosts with different targets, `zfvm-dead` for a host that is down.

One source (zfvm-a) replicates `onsite` snapshots to zfvm-a and `offsite` ones to zfvm-b (and to
zfvm-dead, which fails). Then a second run takes snapshots, replicates and prunes both sides.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.vm import PROJECT, Result, Vm

PLAN_ALL = "{'test': {'onsite': {'secondly': 100}, 'offsite': {'secondly': 100}, 'other': {'secondly': 100}}}"
SRC_PLAN = "{'test': {'onsite': {'secondly': 2}, 'offsite': {'secondly': 2}}}"
DST_PLAN = "{'test': {'onsite': {'secondly': 1}, 'offsite': {'secondly': 1}}}"


def jobrunner(*args: str) -> Result:
    """zferry-jobrunner running on this machine, as its own process."""
    env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"))
    command = [sys.executable, "-m", "zferry.cli.jobrunner", *args]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def summary(output: str) -> dict[str, tuple[str, int, float, float]]:
    """The summary table: sub-job -> (status, exit code, start, end), times in seconds from the first start."""
    lines = output[output.index("sub-job ") :].splitlines()[1:]
    table = {}
    for line in lines:
        name, status, code, start, end, _ = line.split()
        table[name] = (status, int(code), float(start.replace("-", "-1")), float(end.replace("-", "-1")))
    return table


def names(vm: Vm, dataset: str) -> set[str]:
    return {name.lstrip("@") for name in vm.snapshot_guids(dataset)}


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most spans overlapping at any start."""
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


def test_targets_barriers_workers_and_a_dead_host(
    vm_hosts: Vm, roots: tuple[str, str], ssh_config: str, tmp_path: Path
) -> None:
    vm, (src, dst) = vm_hosts, roots
    config = tmp_path / "ssh_config"
    config.write_text(
        Path(ssh_config).read_text() + "Host zfvm-dead\n  HostName 127.0.0.1\n  Port 9\n  ConnectTimeout 5\n"
    )
    old = [f"test_{t}_2026-01-01_00:00:0{i}_secondly" for i in (1, 2, 3) for t in ("onsite", "offsite", "other")]
    vm.sh("\n".join([f"zfs create -p {dst}", *(f"zfs snapshot {src}@{n}" for n in [*old, "manual"])]))
    common = [
        src, "data", "--src-hosts", "['zfvm-a']", "--no-log-file", "--retries", "0",
        "--ssh-src-config-file", str(config), "--ssh-dst-config-file", str(config),
        "--dst-root-datasets",
        f"{{'zfvm-a': '{dst}/onsite/^SRC_HOST', 'zfvm-b': '{dst}/^DST_HOST', 'zfvm-dead': 'x/^SRC_HOST'}}",
    ]  # fmt: skip
    onsite, offsite = f"{dst}/onsite/zfvm-a/data", f"{dst}/zfvm-b/data"

    # first the onsite host also gets the `other` target (say, of another job), later no longer
    first = jobrunner(*common, "--dst-hosts", "{'zfvm-a': ['onsite', 'other'], 'zfvm-b': ['offsite']}",
                      "--dst-snapshot-plan", PLAN_ALL, "--replicate")  # fmt: skip
    assert first.returncode == 0, first.output
    assert names(vm, onsite) == {n for n in old if "_offsite_" not in n}  # each target's snapshots to its hosts
    assert names(vm, offsite) == {n for n in old if "_offsite_" in n}

    second = jobrunner(
        *common, "--dst-hosts", "{'zfvm-a': ['onsite'], 'zfvm-b': ['offsite'], 'zfvm-dead': ['offsite']}",
        "--src-snapshot-plan", SRC_PLAN, "--dst-snapshot-plan", DST_PLAN, "--workers", "2",
        "--create-src-snapshots", "--replicate", "--prune-src-snapshots", "--prune-dst-snapshots",
    )  # fmt: skip
    assert second.returncode == 1, second.output  # the dead host's failure is the worst status
    table = summary(second.output)
    assert table["zfvm-a/run/~/replicate/zfvm-dead"][:2] == ("failed", 1)
    assert table["zfvm-a/run/~/replicate/zfvm-dead/~/prune-dst-snapshots"][0] == "skipped"
    assert all(s == "ok" for name, (s, *_) in table.items() if "zfvm-dead" not in name), second.output

    # the barriers: replication after creation, each destination's pruning after its replication
    created = table["zfvm-a/run/create-src-snapshots"][3]
    for host in ("zfvm-a", "zfvm-b", "zfvm-dead"):
        assert table[f"zfvm-a/run/~/replicate/{host}"][2] >= created
    for host in ("zfvm-a", "zfvm-b"):
        assert (
            table[f"zfvm-a/run/~/replicate/{host}/~/prune-dst-snapshots"][2]
            >= table[f"zfvm-a/run/~/replicate/{host}"][3]
        )
    ran = [(start, end) for _, _, start, end in table.values() if start >= 0]
    assert most_at_once(ran) == 2  # three replications and the source's pruning were ready together

    new = names(vm, src) - {*old, "manual"}
    assert len(new) == 2 and all(n.startswith(("test_onsite_", "test_offsite_")) for n in new)
    # the source keeps its plan's latest 2 per target, and what is not the plan's
    others = {n for n in old if "_other_" in n}
    assert names(vm, src) == {old[6], old[7], *new, *others, "manual"}
    # each destination keeps its latest one of its targets; another target's snapshots stay
    newest_onsite = next(n for n in new if "_onsite_" in n)
    assert names(vm, onsite) == {newest_onsite, *others}
    assert names(vm, offsite) == {next(n for n in new if "_offsite_" in n)}
