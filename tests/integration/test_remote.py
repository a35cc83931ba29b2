"""Remote replication over real ssh: push, pull, pull-push, resume, raw encryption, properties,
privileges, failures. Inside the VM, `hosta`/`hostb` are the VM itself reached over ssh; from this
machine, `zfvm-a`/`zfvm-b` (an ssh config) are the VM, so pull-push crosses a real network hop."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.integration.test_replication import DR_EXCLUDED, NEW_CHAIN, make
from tests.integration.vm import GUEST_CHECKOUT, PROJECT, Result, Vm


def host_zferry(*args: str, check: bool = True) -> Result:
    """zferry running on this machine (not in the VM)."""
    env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"))
    proc = subprocess.run([sys.executable, "-m", "zferry", *args], capture_output=True, text=True, env=env, timeout=600)
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"zferry {' '.join(args)} exited {proc.returncode}:\n{result.output}")
    return result


@pytest.mark.one_zfs  # the pipeline's helpers
def test_push_compresses_where_it_pays_and_buffers(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    """FR-REP-001.2 and FR-PERF-004.1: mbuffer on both ends of the ssh hop; zstd only for data that
    compresses (the pools have compression on: random data shows a refcompressratio of 1.00)."""
    vm, (src, dst) = vm_hosts, roots
    vm.sh(f"""
        zfs create {src}/text
        yes 'a line of text that compresses well, 0123456789' | head -c 2M > /{src}/text/f || true
        head -c 2M /dev/urandom > /{src}/random
        zfs snapshot -r {src}@s1; echo more >> /{src}/text/f; zfs snapshot -r {src}@s2
    """)

    def pipelines(output: str) -> dict[str, str]:
        """Each dataset's pipelines (a full and an incremental send, or one incremental), joined."""
        lines = [line for line in output.splitlines() if "pipeline:" in line]
        found = {name: "\n".join(line for line in lines if f"{src}{name}@" in line) for name in ("/text", "")}
        assert all(found.values()), output
        return found

    # Plain chains: a -c send (the default of new chains) keeps ZFS's own compression, and zstd
    # would not pay on top of it, whatever the data.
    first = pipelines(vm.zferry("-v", "-v", "-r", "--zfs-send-default-flags", "none", src, f"hostb:{dst}").output)
    assert "zstd -c -1 -T0" in first["/text"] and "zstd -dc ||" in first["/text"]
    assert "zstd" not in first[""] and first[""].count("mbuffer -q") >= 2  # buffered, not compressed
    vm.sh(f"head -c 1M /dev/urandom >> /{src}/random; zfs snapshot -r {src}@s3")
    forced = pipelines(vm.zferry("-v", "-v", "-r", "--compress-when", "always", src, f"hostb:{dst}").output)
    assert "zstd -c -1 -T0" in forced[""] and "zstd -c -1 -T0" in forced["/text"]
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_pull_then_incremental(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    """FR-REP-001.3."""
    vm, (src, dst) = vm_hosts, roots
    make(vm, src, [], ["s1"])
    vm.zferry(f"root@hosta:{src}", dst)
    vm.sh(f"zfs snapshot {src}@s2")
    vm.zferry(f"root@hosta:{src}", dst)
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_pull_push_through_this_machine(vm_hosts: Vm, roots: tuple[str, str], ssh_config: str) -> None:
    """FR-REP-001.4: the initiator (this machine, no ZFS at all) streams from one host to another."""
    vm, (src, dst) = vm_hosts, roots
    make(vm, src, ["kid"], ["s1", "s2"], mib=1)
    cfg = ["--ssh-src-config-file", ssh_config, "--ssh-dst-config-file", ssh_config]
    first = host_zferry(*cfg, "-v", "-v", "-r", f"zfvm-a:{src}", f"zfvm-b:{dst}")
    assert "zfvm-a" in first.output and "zfvm-b" in first.output
    vm.sh(f"zfs snapshot -r {src}@s3")
    host_zferry(*cfg, "-r", f"zfvm-a:{src}", f"zfvm-b:{dst}")
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_both_sides_on_one_remote_host_stream_stays_there(
    vm_hosts: Vm, roots: tuple[str, str], ssh_config: str
) -> None:
    vm, (src, dst) = vm_hosts, roots
    make(vm, src, [], ["s1"])
    result = host_zferry(
        "--ssh-src-config-file",
        ssh_config,
        "--ssh-dst-config-file",
        ssh_config,
        "--no-progress",
        "-v",
        "-v",
        f"zfvm-a:{src}",
        f"zfvm-a:{dst}",
    )
    pipeline = next(line for line in result.output.splitlines() if "pipeline:" in line)
    assert pipeline.count("ssh ") == 1 and f"zfs send {NEW_CHAIN} {src}@s1" in pipeline  # one remote pipeline
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


@pytest.mark.one_zfs  # ssh connection reuse
def test_one_ssh_handshake_per_host(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    """FR-PERF-003: every command to a host after the first reuses the master connection."""
    vm, (src, dst) = vm_hosts, roots
    make(vm, src, [f"d{i}" for i in range(4)], ["s1", "s2"])
    vm.sh("""
        cat > /usr/local/bin/ssh-count <<'SH'
#!/bin/bash
# record whether a master connection already existed for this destination
cp=""; dest=""; prev=""
for a in "$@"; do
  case "$prev" in -o) case "$a" in ControlPath=*) cp=${a#ControlPath=};; esac;; --) [ -z "$dest" ] && dest=$a;; esac
  prev=$a
done
case " $* " in *" -M "*) echo new >> /tmp/ssh-count; exec ssh "$@";; esac  # zferry starting the master
if ssh -o ControlPath="$cp" -O check "$dest" 2>/dev/null; then echo reuse >> /tmp/ssh-count; else echo new >> /tmp/ssh-count; fi
exec ssh "$@"
SH
        chmod +x /usr/local/bin/ssh-count; rm -f /tmp/ssh-count
    """)
    result = vm.zferry("-v", "-v", "--ssh-program", "/usr/local/bin/ssh-count", "-r", src, f"hostb:{dst}")
    calls = vm.sh("cat /tmp/ssh-count").split()
    assert len(calls) > 5 and calls.count("new") == 1, calls
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
    sockets = re.search(r"ControlPath=(/tmp/zferry-ssh-[^/]+)/", result.output)
    assert sockets and not vm.exists_path(sockets.group(1))  # control sockets cleaned up


def test_resume_after_killing_the_pipeline(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    """FR-REP-004: kill mid-stream; a token remains; the next run sends only the rest."""
    vm, (src, dst) = vm_hosts, roots
    make(vm, src, [], ["s1"], mib=24)
    vm.sh(f"""
        cd {GUEST_CHECKOUT}
        (PYTHONPATH=src setsid python3 -m zferry --bwlimit 3m {src} hostb:{dst} >/tmp/resume.log 2>&1 &)
        for i in $(seq 300); do pgrep -f "zfs receive .*{dst}" >/dev/null && break; sleep 0.1; done
        sleep 3  # the stream has started (a slow VM can take seconds to get there): cut it mid-way
        pkill -9 -f 'python3 -m zferry' || true; pkill -9 -f 'zfs send' || true; pkill -9 -f 'pv -' || true
        for i in $(seq 50); do pgrep -f 'zfs receive' >/dev/null || break; sleep 0.2; done
    """)
    token = vm.sh(f"zfs get -H -o value receive_resume_token {dst}").strip()
    assert token not in ("", "-"), vm.sh("cat /tmp/resume.log")
    full = int(vm.sh(f"zfs send -nP {src}@s1 | awk '/^size/ {{print $2}}'"))
    rest = int(vm.sh(f"zfs send -nP -t {token} | awk '/^size/ {{print $2}}'"))
    assert rest < full * 0.9, (rest, full)
    result = vm.zferry("-v", "-v", src, f"hostb:{dst}")
    assert "zfs send -t" in result.output
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_raw_encrypted_replication_then_incremental(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    vm, (src, dst) = vm_hosts, roots
    vm.sh(f"""
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /tmp/key-{src.replace("/", "_")}
        zfs create -o encryption=on -o keyformat=hex -o keylocation=file:///tmp/key-{src.replace("/", "_")} {src}/secret
        head -c 1M /dev/urandom > /{src}/secret/f; zfs snapshot {src}/secret@s1
    """)
    refused = vm.zferry(f"{src}/secret", f"hostb:{dst}", check=False)
    assert refused.returncode == 1 and "--zfs-send-program-opts=--raw" in refused.output
    assert not vm.exists(dst)
    vm.zferry("--zfs-send-program-opts=--raw", f"{src}/secret", f"hostb:{dst}")
    vm.sh(f"zfs snapshot {src}/secret@s2")
    vm.zferry("--zfs-send-program-opts=--raw", f"{src}/secret", f"hostb:{dst}")
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(f"{src}/secret")
    # the destination never needed the key: it holds the data encrypted, key not loaded
    assert vm.sh(f"zfs get -H -o value keystatus,encryption {dst}").split() == ["unavailable", "aes-256-gcm"]


def test_property_preservation_and_explicit_properties(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    """FR-REP-007.1-3 and FR-SEC-004."""
    vm, (src, dst) = vm_hosts, roots
    vm.sh(f"""
        zfs create -o mountpoint=/mnt/evil-{src.split("/")[1]} -o exec=off -o myapp:tier=gold -o other:x=1 {src}/p
        zfs snapshot {src}/p@s1
    """)
    vm.zferry("--zfs-send-program-opts=--props", "--preserve-properties", "mountpoint,exec", f"{src}/p", f"hostb:{dst}")
    got = dict(
        line.split("\t")[:2]
        for line in vm.sh(f"zfs get -H -o property,value,source mountpoint,exec,myapp:tier {dst}").splitlines()
    )
    assert got["mountpoint"] == f"/{dst}" and got["exec"] == "on"  # not taken from the stream
    assert got["myapp:tier"] == "gold"  # --props sent the rest
    vm.sh(f"zfs snapshot {src}/p@s2")
    vm.zferry("--zfs-recv-o-include-regex", "myapp:.*", f"{src}/p", f"{dst}2")
    props = vm.sh(f"zfs get -H -o property,value,source myapp:tier,other:x {dst}2").splitlines()
    assert props[0].split("\t") == ["myapp:tier", "gold", "local"] and props[1].split("\t")[1] == "-"


def test_non_root_with_sudo(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    """FR-SEC-001.2: sudo is prepended to zfs on both ends (locally and over ssh)."""
    vm, (src, dst) = vm_hosts, roots
    make(vm, src, [], ["s1"])
    out = vm.sh(
        f"cd {GUEST_CHECKOUT} && su zfsudo -c 'PYTHONPATH=src python3 -m zferry -v -v {src} zfsudo@hostb:{dst}' 2>&1"
    )
    assert "sudo -n zfs send" in out and "sudo -n zfs receive" in out
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_non_root_with_zfs_allow_and_no_privilege_elevation(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    """FR-SEC-001.1: delegated rights, no sudo anywhere."""
    vm, (src, dst) = vm_hosts, roots
    make(vm, src, [], ["s1", "s2"])
    vm.sh(f"""
        zfs create {dst}
        zfs allow -u zfallow send,snapshot,hold,bookmark {src}
        zfs allow -u zfallow receive,create,mount,userprop,compression {dst}
    """)
    out = vm.sh(
        f"cd {GUEST_CHECKOUT} && su zfallow -c 'PYTHONPATH=src python3 -m zferry -p -v -v {src} zfallow@hostb:{dst}/copy' 2>&1"
    )
    assert "sudo" not in out
    assert vm.snapshot_guids(f"{dst}/copy") == vm.snapshot_guids(src)


def test_ssh_failure_is_reported_clearly(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    vm, (src, dst) = vm_hosts, roots
    make(vm, src, [], ["s1"])
    result = vm.zferry("--ssh-dst-port", "1", src, f"hostb:{dst}", check=False)
    assert result.returncode == 1
    assert "ssh" in result.output and "refused" in result.output.lower()


@pytest.mark.one_zfs  # signal handling; resuming is tested on every OpenZFS
def test_sigterm_stops_every_child_and_the_rerun_converges(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    """FR-REL-003: SIGTERM terminates the pipeline (local and remote side) and cleans up."""
    vm, (src, dst) = vm_hosts, roots
    make(vm, src, [], ["s1"], mib=16)
    out = vm.sh(f"""
        cd {GUEST_CHECKOUT}
        PYTHONPATH=src python3 -m zferry -v -v --bwlimit 2m {src} hostb:{dst} >/tmp/term.log 2>&1 &
        pid=$!
        for i in $(seq 100); do pgrep -f "zfs receive -u -s {DR_EXCLUDED} .*{dst}" >/dev/null && break; sleep 0.1; done
        sleep 2; children=$(pgrep -P $pid | tr '\n' ' '); remote=$(pgrep -f "zfs receive -u -s {DR_EXCLUDED} .*{dst}" | tr '\n' ' ')
        kill -TERM $pid; wait $pid || echo "exit=$?"
        sleep 2; left=""; for c in $children $remote; do kill -0 $c 2>/dev/null && left="$left $c"; done
        [ -n "$children" ] && [ -z "$left" ] && echo "no children left" || ps -o pid,args -p "$children $remote"
        sockets=$(grep -o 'ControlPath=/tmp/zferry-ssh-[^/]*' /tmp/term.log | head -1 | cut -d= -f2)
        [ -n "$sockets" ] && [ ! -e "$sockets" ] && echo "sockets removed"
    """)
    assert "exit=143" in out and "no children left" in out, out + vm.sh("cat /tmp/term.log")
    assert "sockets removed" in out  # no control sockets left behind
    assert vm.snapshot_guids(dst) == {}  # the transfer really was cut short (2 MiB/s for 16 MiB)
    vm.zferry(src, f"hostb:{dst}")
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_excluded_environment_variables_do_not_reach_children(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    """FR-SEC-005."""
    vm, (src, dst) = vm_hosts, roots
    make(vm, src, [], ["s1"])
    vm.sh("""
        mkdir -p /opt/zfs-env
        printf '#!/bin/sh\\nenv >> /tmp/zfs-env\\nexec /usr/sbin/zfs "$@"\\n' > /opt/zfs-env/zfs
        chmod +x /opt/zfs-env/zfs; rm -f /tmp/zfs-env
    """)
    vm.zferry(
        "--exclude-envvar-regex",
        "ZF_SECRET.*",
        src,
        dst,
        env="ZF_SECRET_TOKEN=hunter2 ZF_OTHER=1 PATH=/opt/zfs-env:$PATH",
    )
    seen = vm.sh("cat /tmp/zfs-env")
    assert "ZF_OTHER=1" in seen and "hunter2" not in seen


@pytest.mark.parametrize("value", ["-o ProxyCommand=touch /tmp/pwned", "-oLocalCommand=id"])
def test_refused_ssh_options_never_reach_ssh(vm_hosts: Vm, value: str) -> None:
    result = vm_hosts.zferry(f"--ssh-dst-extra-opts={value}", "src/x", "hostb:dst/x", check=False)
    assert result.returncode == 2 and "not allowed" in result.output
    assert vm_hosts.sh("ls /tmp/pwned 2>/dev/null || echo absent").strip() == "absent"


def test_dropped_connection_is_retried_and_resumes_in_the_same_run(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    """A network drop mid-transfer (the remote sshd dies): the run retries, resumes, and succeeds."""
    vm, (src, dst) = vm_hosts, roots
    make(vm, src, [], ["s1"], mib=16)
    out = vm.sh(f"""
        cd {GUEST_CHECKOUT}
        PYTHONPATH=src python3 -m zferry -v --bwlimit 2m --retries 3 {src} zfsudo@hostb:{dst} >/tmp/drop.log 2>&1 &
        pid=$!
        for i in $(seq 100); do pgrep -f "zfs receive -u -s {DR_EXCLUDED} .*{dst}" >/dev/null && break; sleep 0.1; done
        sleep 3; pkill -f 'sshd: zfsudo' || true
        wait $pid && echo "exit=0"
        cat /tmp/drop.log
    """)
    assert "exit=0" in out and "retry 1 of 3" in out, out
    assert "resuming an interrupted transfer" in out
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
