"""Resume, retry, dry run, zvols and clones at the edges, on real OpenZFS in the VM.

Partial receives are made the honest way: a real `zfs send` cut short (`head -c`) into
`zfs receive -s`, which leaves the destination with a resume token, as a dropped connection would.
"""

from __future__ import annotations

import json

from tests.integration.test_replication import DR_EXCLUDED, NEW_CHAIN, make
from tests.integration.vm import Vm


def interrupt(vm: Vm, send: str, dst: str, cut: int = 3_000_000) -> str:
    """Receive the first `cut` bytes of `zfs send SEND` into `dst` resumably; return the token left."""
    vm.sh(f"zfs send {send} | head -c {cut} | zfs receive -s -u {dst} || true")
    token = vm.sh(f"zfs get -H -o value receive_resume_token {dst}").strip()
    assert token not in ("", "-")
    return token


def remaining(vm: Vm, token: str) -> int:
    """Bytes a resumed send of `token` would still send."""
    return int(vm.sh(f"zfs send -nP -t {token} | awk '/^size/ {{print $2}}'"))


def test_timeout_while_resuming_keeps_the_partial_receive_and_the_rerun_resumes(vm: Vm, roots: tuple[str, str]) -> None:
    """A --timeout kill is not the token's fault: the partial state stays (and grows); the next run
    sends only what is still missing."""
    src, dst = roots
    make(vm, src, [], ["s1"], mib=24)
    full = int(vm.sh(f"zfs send -nP {src}@s1 | awk '/^size/ {{print $2}}'"))
    interrupt(vm, f"{src}@s1", dst, cut=6_000_000)
    killed = vm.zferry("--bwlimit", "256k", "--timeout", "8", "--retries", "0", src, dst, check=False)
    assert killed.returncode == 1, killed.output
    assert "discarding" not in killed.output, killed.output
    token = vm.sh(f"zfs get -H -o value receive_resume_token {dst}").strip()
    assert token not in ("", "-"), killed.output
    rest = remaining(vm, token)
    assert rest < full - 5_000_000, (rest, full)  # the first 6 MB were kept, not received again
    rerun = vm.zferry("-v", "-v", src, dst)
    assert "zfs send -t" in rerun.output and "discarding" not in rerun.output
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


def test_token_naming_another_source_dataset_is_not_resumed(vm: Vm, roots: tuple[str, str]) -> None:
    """The destination's token names src/other@s1 (a transfer of another dataset was interrupted
    into dst/x): replicating src/x must not send src/other's data; it starts over."""
    src, dst = roots
    vm.sh(f"""
        zfs create {src}/x; zfs create {src}/other
        head -c 8M /dev/urandom > /{src}/other/secret; zfs snapshot {src}/other@s1
        head -c 1M /dev/urandom > /{src}/x/data; zfs snapshot {src}/x@s1
        zfs create {dst}
    """)
    interrupt(vm, f"{src}/other@s1", f"{dst}/x")
    result = vm.zferry("-v", "-v", f"{src}/x", f"{dst}/x")
    assert "zfs send -t" not in result.output
    assert f"names {src}/other@s1" in result.output and "discarding the partial receive" in result.output
    assert vm.snapshot_guids(f"{dst}/x") == vm.snapshot_guids(f"{src}/x")
    vm.sh(f"zfs mount {dst}/x")
    assert vm.sh(f"ls /{dst}/x").split() == ["data"]


def test_non_raw_token_of_an_encrypted_dataset_is_not_resumed(vm: Vm, roots: tuple[str, str]) -> None:
    """An interrupted plain send of an encrypted dataset (key loaded) left a token without rawok:
    resuming it would send the rest decrypted. zferry starts over with a raw send instead."""
    src, dst = roots
    key = f"/tmp/key-{src.replace('/', '_')}"
    vm.sh(f"""
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > {key}
        zfs create -o encryption=on -o keyformat=hex -o keylocation=file://{key} {src}/sec
        head -c 8M /dev/urandom > /{src}/sec/f; zfs snapshot {src}/sec@s1
    """)
    interrupt(vm, f"{src}/sec@s1", dst)
    result = vm.zferry("-v", "-v", "--zfs-send-program-opts=--raw", f"{src}/sec", dst)
    assert "zfs send -t" not in result.output
    assert "non-raw send" in result.output and "discarding the partial receive" in result.output
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(f"{src}/sec")
    assert vm.sh(f"zfs get -H -o value keystatus,encryption {dst}").split() == ["unavailable", "aes-256-gcm"]


def test_no_resume_recv_discards_partial_state_and_starts_over(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    make(vm, src, [], ["s1"], mib=8)
    interrupt(vm, f"{src}@s1", dst)
    result = vm.zferry("--no-resume-recv", src, dst)
    assert "--no-resume-recv" in result.output and "zfs receive -A" in result.output
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
    assert vm.sh(f"zfs get -H -o value receive_resume_token {dst}").strip() == "-"


def test_dryrun_recv_of_a_first_run_with_several_snapshots_and_children(vm: Vm, roots: tuple[str, str]) -> None:
    """The full receive runs as `zfs receive -n`; the incrementals after it and the children (whose
    parent a dry run never creates) are shown, not run. Exit 0, nothing changed."""
    src, dst = roots
    make(vm, src, ["child"], ["s1", "s2", "s3"])
    vm.sh(f"zfs snapshot {src}/child@s4")
    result = vm.zferry("--dryrun=recv", "-r", "-v", "-v", src, dst)
    assert result.returncode == 0
    assert f"zfs receive -u -s -n {DR_EXCLUDED} {dst}" in result.output
    assert f"zfs send {NEW_CHAIN} -I {src}@s1 {src}@s3" in result.output
    assert "showing, not receiving" in result.output
    assert not vm.exists(dst)


def test_zvol_replicated_incrementally_and_pruned(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    vm.sh(f"zfs create -V 16M {src}/vol; zfs snapshot -r {src}@s1; zfs snapshot -r {src}@s2")
    vm.zferry("-r", src, dst)
    assert vm.sh(f"zfs get -H -o value type {dst}/vol").strip() == "volume"
    vm.sh(f"zfs snapshot -r {src}@s3")
    second = vm.zferry("-v", "-v", "-r", src, dst)
    assert f"zfs send {NEW_CHAIN} -i {src}/vol@s2 {src}/vol@s3" in second.output
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
    vm.sh(f"zfs destroy {src}/vol@s1; zfs destroy {src}/vol#s1")  # the bookmark would protect it too
    vm.zferry("-r", "--skip-replication", "--delete-dst-snapshots", "--include-snapshot-regex", "s1", src, dst)
    assert sorted(vm.snapshot_guids(f"{dst}/vol")) == ["@s2", "@s3"]


def test_clone_is_replicated_as_a_clone_of_its_origin(vm: Vm, roots: tuple[str, str]) -> None:
    """The clone sorts before its origin (a_clone < z_origin): the origin is sent first, then the clone
    as an incremental from the origin snapshot, so on the destination it is a clone sharing its blocks."""
    src, dst = roots
    vm.sh(f"""
        zfs create {src}/z_origin; head -c 8M /dev/urandom > /{src}/z_origin/big; zfs snapshot {src}/z_origin@s1
        zfs clone {src}/z_origin@s1 {src}/a_clone; head -c 64K /dev/urandom > /{src}/a_clone/small
        zfs snapshot {src}/a_clone@c1
    """)
    first = vm.zferry("-v", "-v", "-r", src, dst)
    assert f"zfs send {NEW_CHAIN} -i {src}/z_origin@s1 {src}/a_clone@c1" in first.output
    assert vm.sh(f"zfs get -H -o value origin {dst}/a_clone").strip() == f"{dst}/z_origin@s1"
    assert int(vm.sh(f"zfs get -H -p -o value used {dst}/a_clone")) < 2 << 20  # shares the 8 MiB
    vm.sh(f"zfs snapshot {src}/a_clone@c2")
    vm.zferry("-r", src, dst)
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)


RETRY_USER = "zfretry"


def retry_user(vm: Vm, src: str, dst: str) -> None:
    """A user whose ssh sessions run zfs through a wrapper that drops the connection (kills the user's
    sshd) once per marker file in /tmp/zfretry: `probe` before the capability probe, `<subcommand>`
    holding `before` or `after` around that zfs subcommand. Only these tests use this user."""
    u = RETRY_USER
    vm.sh(f"""
        mkdir -p /opt/{u}/bin /tmp/{u}; chmod 777 /tmp/{u}; rm -f /tmp/{u}/*
        cat > /opt/{u}/drop <<'EOF'
#!/bin/sh
# the connection dies: every sshd session of this user
pkill -KILL -f 'sshd: {u}'; exit 255
EOF
        cat > /opt/{u}/shell <<'EOF'
#!/bin/sh
PATH=/opt/{u}/bin:$PATH; export PATH
case "$2" in *uid=*) if [ -e /tmp/{u}/probe ]; then rm -f /tmp/{u}/probe; exec /opt/{u}/drop; fi ;; esac
exec /bin/sh "$@"
EOF
        cat > /opt/{u}/bin/zfs <<'EOF'
#!/bin/sh
m=/tmp/{u}/$1
if mode=$(cat "$m" 2>/dev/null) && rm -f "$m"; then
  [ "$mode" = after ] && /usr/sbin/zfs "$@"
  exec /opt/{u}/drop
fi
exec /usr/sbin/zfs "$@"
EOF
        chmod 755 /opt/{u}/drop /opt/{u}/shell /opt/{u}/bin/zfs
        id {u} >/dev/null 2>&1 || useradd -m -s /opt/{u}/shell {u}
        mkdir -p /home/{u}/.ssh; cat /root/.ssh/id_ed25519.pub > /home/{u}/.ssh/authorized_keys
        chown -R {u}: /home/{u}/.ssh; chmod 700 /home/{u}/.ssh
        zfs create {dst}
        zfs allow -u {u} send,snapshot,hold,bookmark,destroy,mount {src}
        zfs allow -u {u} receive,create,mount,userprop,compression,destroy {dst}
    """)


def test_dropped_connections_are_retried_outside_the_transfer(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    """The connection drops during the capability probe, the first listing, right after `zfs snapshot`
    and `zfs bookmark` did their work, and after `zfs destroy`: each step is retried, a retry that finds
    the snapshot/bookmark made (or the snapshot destroyed) counts as done, and the runs succeed."""
    vm, (src, dst) = vm_hosts, roots
    u = RETRY_USER
    make(vm, src, [], ["s1"])
    retry_user(vm, src, dst)
    plan = json.dumps({"z": {"t": {"hourly": 1}}})
    vm.sh(f"echo before > /tmp/{u}/list; echo after > /tmp/{u}/snapshot; echo after > /tmp/{u}/bookmark")
    vm.sh(f"touch /tmp/{u}/probe")
    common = ["-p", "-v", "--retries", "3", "--retry-min-sleep-secs", "0.5"]
    pair = [f"{u}@hosta:{src}", f"{u}@hostb:{dst}/copy"]
    first = vm.zferry(*common, "--create-src-snapshots", "--create-src-snapshots-plan", plan, *pair, check=False)
    assert first.returncode == 0, first.output
    assert "probe: " in first.output and "zfs list: " in first.output, first.output
    assert "done by an earlier attempt" in first.output and "retry 1 of 3" in first.output
    assert vm.sh(f"ls /tmp/{u}").split() == []  # every drop happened
    created = [n[1:] for n in vm.snapshot_guids(src) if n.startswith("@z_t_")]
    assert len(created) == 1
    bookmarks = vm.sh(f"zfs list -H -t bookmark -o name {src}").split()
    assert sorted(bookmarks) == [f"{src}#s1", f"{src}#{created[0]}"]
    assert vm.snapshot_guids(f"{dst}/copy") == vm.snapshot_guids(src)
    vm.sh(f"zfs snapshot {dst}/copy@extra; echo after > /tmp/{u}/destroy")
    pruned = vm.zferry(
        *common, "--skip-replication", "--delete-dst-snapshots", "--include-snapshot-regex", "extra", *pair, check=False
    )
    assert pruned.returncode == 0, pruned.output
    assert "done by an earlier attempt" in pruned.output
    assert "@extra" not in vm.snapshot_guids(f"{dst}/copy")
