"""zferry-jobrunner's sub-jobs share one ssh master connection per host (run from this machine)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.test_jobrunner import jobrunner, summary
from tests.integration.vm import Vm

SRC_PLAN = "{'test': {'onsite': {'secondly': 2}, 'offsite': {'secondly': 2}}}"


def test_sub_jobs_share_one_ssh_master_per_host(
    vm_hosts: Vm, roots: tuple[str, str], ssh_config: str, tmp_path: Path
) -> None:
    vm, (src, dst) = vm_hosts, roots
    vm.sh(f"zfs create -p {dst}")
    log = tmp_path / "ssh.log"
    wrapper = tmp_path / "ssh-count"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec ssh "$@"\n')
    wrapper.chmod(0o755)
    result = jobrunner(
        src, "data", "--src-hosts", "['zfvm-a']", "--no-log-file", "--retries", "0", "--workers", "2",
        "--ssh-program", str(wrapper), "--ssh-src-config-file", ssh_config, "--ssh-dst-config-file", ssh_config,
        "--dst-hosts", "{'zfvm-a': ['onsite'], 'zfvm-b': ['offsite']}",
        "--dst-root-datasets", f"{{'zfvm-a': '{dst}/a', 'zfvm-b': '{dst}/b'}}",
        "--src-snapshot-plan", SRC_PLAN, "--create-src-snapshots", "--replicate", "--prune-src-snapshots",
    )  # fmt: skip
    assert result.returncode == 0, result.output
    assert len(summary(result.output)) == 4  # four sub-jobs, each connecting to one or both hosts
    calls = log.read_text().splitlines()
    masters = [line for line in calls if " -M " in f" {line} "]
    assert sorted(line.split()[-1] for line in masters) == ["zfvm-a", "zfvm-b"], masters  # one handshake per host
    assert len(calls) - len(masters) > 8  # every other command went over those two masters
    sockets = {m.group(1) for m in (re.search(r"-S (\S+)/m\d+", line) for line in masters) if m}
    assert len(sockets) == 1 and not Path(sockets.pop()).exists()  # closed and removed at the end
    assert vm.snapshot_guids(f"{dst}/a/data") and vm.snapshot_guids(f"{dst}/b/data")
