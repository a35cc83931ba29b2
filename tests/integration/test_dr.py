"""zferry-dr against real OpenZFS: two sites are two ssh aliases of the VM (`zfvm-a` with pool src,
`zfvm-b` with pool dst), run from this machine; a third alias, `zfvm-dead`, is a primary whose ssh
fails (connection refused). File checksums show what arrived where, and that divergent data was kept byte for byte."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.integration.test_remote import host_zferry
from tests.integration.vm import PROJECT, Result, Vm


@dataclass
class Sites:
    vm: Vm
    east: str  # dataset on pool src, reached as zfvm-a
    west: str  # dataset on pool dst, reached as zfvm-b
    config: Path  # both sites reachable
    dead: Path  # west unreachable
    ssh: str
    audit: Path

    def dr(self, *args: str, config: Path | None = None, expect: int = 0) -> Result:
        env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"))
        argv = [sys.executable, "-m", "zferry.dr", "-c", str(config or self.config), "--audit-log", str(self.audit)]
        proc = subprocess.run([*argv, *args], capture_output=True, text=True, env=env, timeout=900)
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        assert proc.returncode == expect, f"zferry-dr {' '.join(args)} exited {proc.returncode}:\n{result.output}"
        return result

    def status(self, expect: int = 0) -> dict[str, object]:
        doc = json.loads(self.dr("status", "--json", expect=expect).stdout)
        group: dict[str, object] = doc["groups"][0]
        group["by_site"] = {s["name"]: s for s in group["sites"]}  # type: ignore[attr-defined]
        return group

    def sums(self, path: str) -> dict[str, str]:
        """sha256 of every file under a mounted dataset path, by relative name."""
        out = self.vm.sh(f"cd /{path} && find . -type f | sort | xargs -r sha256sum")
        return {name: digest for digest, name in (line.split(None, 1) for line in out.splitlines())}


def _site_file(path: Path, east: str, west: str, ssh: str, recursive: bool) -> Path:
    path.write_text(
        f'[groups.db]\nrecursive = {"true" if recursive else "false"}\nprimary = "east"\n[groups.db.sites]\n'
        f'east = {{dataset = "{east}", ssh_config_file = "{ssh}"}}\n'
        f'west = {{dataset = "{west}", ssh_config_file = "{ssh}"}}\n'
    )
    return path


def _sites(vm: Vm, roots: tuple[str, str], ssh_config: str, tmp_path: Path, recursive: bool = False) -> Sites:
    east, west = roots
    ssh = tmp_path / "ssh_config"
    ssh.write_text(
        Path(ssh_config).read_text() + "Host zfvm-dead\n  HostName 127.0.0.1\n  Port 1\n  ConnectTimeout 3\n"
    )
    live = _site_file(tmp_path / "dr.toml", f"zfvm-a:{east}", f"zfvm-b:{west}", str(ssh), recursive)
    dead = _site_file(tmp_path / "dead.toml", f"zfvm-a:{east}", f"zfvm-dead:{west}", str(ssh), recursive)
    return Sites(vm, east, west, live, dead, str(ssh), tmp_path / "audit.jsonl")


def test_planned_and_unplanned_failover_fencing_and_failback(
    vm: Vm, roots: tuple[str, str], ssh_config: str, tmp_path: Path
) -> None:
    s = _sites(vm, roots, ssh_config, tmp_path, recursive=True)
    vm.sh(f"zfs create {s.east}/kid && head -c 300K /dev/urandom > /{s.east}/a && echo k > /{s.east}/kid/k")
    s.dr("replicate")
    group = s.status()
    assert group["primary"] == "east" and group["divergent"] is False
    assert group["by_site"]["west"]["role"] == "standby" and group["by_site"]["west"]["epoch"] == 1  # type: ignore[index]

    # planned: a write on the primary just before is on the new primary after (RPO 0)
    vm.sh(f"head -c 200K /dev/urandom > /{s.east}/last")
    before = s.sums(s.east)
    s.dr("failover", "db", "--to", "west")
    group = s.status()
    assert group["primary"] == "west" and group["by_site"]["west"]["epoch"] == 2  # type: ignore[index]
    assert group["by_site"]["east"]["role"] == "standby"  # type: ignore[index]
    assert s.sums(s.west) == before
    vm.sh(f"head -c 100K /dev/urandom > /{s.west}/after && echo k2 > /{s.west}/kid/k2")
    s.dr("replicate")
    after = s.sums(s.west)
    vm.sh(f"zfs mount {s.east} 2>/dev/null || true; zfs mount {s.east}/kid 2>/dev/null || true")
    assert s.sums(s.east) == after and "./after" in after and "./last" in after

    # unplanned: the primary (west) cannot be reached; east is promoted and must fence west on first contact
    s.dr("failover", "db", "--to", "east", config=s.dead, expect=1)  # refused without --force
    s.dr("failover", "db", "--to", "east", "--force", config=s.dead)
    out = s.dr("status", config=s.dead, expect=1).stdout
    assert "UNREACHABLE" in out and "west must be fenced when it returns" in out, out
    # west never learnt: it writes on as a stale primary, with a snapshot and after it; east writes too
    vm.sh(
        f"head -c 150K /dev/urandom > /{s.west}/stale && zfs snapshot -r {s.west}@stale1"
        f" && head -c 50K /dev/urandom > /{s.west}/kid/stale2 && echo e > /{s.east}/east-new"
    )
    stale, east_before = s.sums(s.west), s.sums(s.east)

    # the stale primary cannot overwrite the promoted site: plain zferry, even with --force, is refused
    cfg = ["--ssh-src-config-file", s.ssh, "--ssh-dst-config-file", s.ssh]
    plain = host_zferry(*cfg, "-r", "--force", f"zfvm-b:{s.west}", f"zfvm-a:{s.east}", check=False)
    assert plain.returncode != 0 and "epoch" in plain.output, plain.output
    # first contact (replicate) fences west before anything else, and replicates nothing into it
    rep = s.dr("replicate", expect=1)
    assert "fencing west on first contact" in rep.stderr and "west is fenced" in rep.stderr, rep.stderr
    group = s.status(expect=1)
    assert group["by_site"]["west"]["role"] == "fenced" and group["by_site"]["west"]["diverged"] is True  # type: ignore[index]
    assert group["by_site"]["east"]["epoch"] == 3 and group["by_site"]["east"]["must_fence"] == []  # type: ignore[index]
    plain = host_zferry(*cfg, "-r", "--force", f"zfvm-b:{s.west}", f"zfvm-a:{s.east}", check=False)
    assert plain.returncode != 0 and "fenced" in plain.output, plain.output
    assert s.sums(s.east) == east_before

    # failback: west's divergent data is kept aside byte for byte, west resyncs, then becomes primary again
    s.dr("failback", "db", "--to", "west")
    aside = vm.sh(f"zfs list -H -o name -d 1 dst | grep -F '{s.west}.diverged-'").split()
    assert len(aside) == 1 and s.sums(aside[0]) == stale
    assert "stale1" in vm.sh(f"zfs list -H -o name -t snapshot -r {aside[0]}")
    group = s.status()
    assert group["primary"] == "west" and group["by_site"]["west"]["epoch"] == 4  # type: ignore[index]
    assert group["by_site"]["east"]["role"] == "standby" and group["divergent"] is False  # type: ignore[index]
    assert s.sums(s.east) == s.sums(s.west) and "./east-new" in s.sums(s.west)
    records = [json.loads(line) for line in s.audit.read_text().splitlines()]
    actions = {r["action"] for r in records}
    assert {"property", "dr-snapshot", "dr-rename", "dr-clone", "dr-promote"} <= actions
    assert any(r["action"] == "dr-rename" and aside[0] in r["target"] for r in records)


def test_latest_wins_both_ways(vm: Vm, roots: tuple[str, str], ssh_config: str, tmp_path: Path) -> None:
    s = _sites(vm, roots, ssh_config, tmp_path)
    vm.sh(f"head -c 100K /dev/urandom > /{s.east}/base")
    s.dr("replicate")
    # the standby diverges and is newer: it wins; the primary's divergent data goes aside
    vm.sh(f"echo p > /{s.east}/p-only && zfs snapshot {s.east}@p1")
    time.sleep(1.1)
    vm.sh(
        f"zfs set readonly=off {s.west} && zfs mount {s.west} && echo w > /{s.west}/w-only && zfs snapshot {s.west}@w1"
    )
    p_side = s.sums(s.east)
    refused = s.dr("replicate", expect=1)
    assert "west diverged from east" in refused.stderr
    s.dr("replicate", "--on-divergence", "latest-wins")
    group = s.status()
    assert group["primary"] == "west" and group["divergent"] is False
    kept = vm.sh(f"zfs list -H -o name -d 1 src | grep -F '{s.east}.diverged-'").split()
    assert len(kept) == 1 and s.sums(kept[0]) == p_side
    assert "./w-only" in s.sums(s.east) and "./p-only" not in s.sums(s.east)

    # now the primary (west) is newer than a diverged standby (east): east's divergent data goes aside
    vm.sh(f"zfs set readonly=off {s.east} && echo e > /{s.east}/e-only && zfs snapshot {s.east}@e1")
    e_side = s.sums(s.east)
    time.sleep(1.1)
    vm.sh(f"echo w2 > /{s.west}/w2 && zfs snapshot {s.west}@w2")
    s.dr("replicate", "--on-divergence", "latest-wins")
    group = s.status()
    assert group["primary"] == "west" and group["divergent"] is False
    kept = vm.sh(f"zfs list -H -o name -d 1 src | grep -F '{s.east}.diverged-'").split()
    assert len(kept) == 2
    assert e_side in [s.sums(k) for k in kept]
    assert s.sums(s.east) == s.sums(s.west)


def test_kill_during_failover_then_status_and_rerun(
    vm: Vm, roots: tuple[str, str], ssh_config: str, tmp_path: Path
) -> None:
    s = _sites(vm, roots, ssh_config, tmp_path)
    vm.sh(f"head -c 100K /dev/urandom > /{s.east}/base")
    s.dr("replicate")
    vm.sh(f"head -c 100K /dev/urandom > /{s.east}/last")
    before = s.sums(s.east)
    env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"))
    argv = [sys.executable, "-m", "zferry.dr", "-c", str(s.config), "failover", "db", "--to", "west"]
    with subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "step 4: fence east" in line:
                os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: no child finishes its work
                break
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    out = s.dr("status", expect=1).stdout
    assert "a failover from east to west did not finish: rerun zferry-dr failover db --to west" in out, out
    s.dr("failover", "db", "--to", "west")
    group = s.status()
    assert group["primary"] == "west" and group["by_site"]["east"]["role"] == "standby"  # type: ignore[index]
    assert group["by_site"]["east"]["pending"] == ""  # type: ignore[index]
    assert s.sums(s.west) == before
