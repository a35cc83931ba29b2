"""Daemon mode on real OpenZFS: zferry runs in the VM for its lifetime, snapshotting and replicating
every second, and ends promptly on SIGTERM."""

from __future__ import annotations

import json
import re
import time

from tests.integration.vm import GUEST_CHECKOUT, Vm
from tests.integration.zferry_holds import release_zferry_holds


def test_secondly_daemon_snapshots_and_replicates_until_its_lifetime_ends(vm: Vm, roots: tuple[str, str]) -> None:
    """60 s at `secondly` with a new snapshot each tick; ticks that overrun skip, none queue up."""
    src, dst = roots
    plan = json.dumps({"db": {"": {"secondly": 1000}}})
    started = time.monotonic()
    result = vm.zferry(
        "--daemon-lifetime",
        "60seconds",
        "--daemon-frequency",
        "secondly",
        "--create-src-snapshots",
        "--create-src-snapshots-plan",
        plan,
        src,
        dst,
        timeout=180,
    )
    elapsed = time.monotonic() - started
    ticks = int(re.findall(r"lifetime over after (\d+) tick", result.output)[0])
    overruns = [(float(s), int(k)) for s, k in re.findall(r"ran ([0-9.]+) s: skipped (\d+) tick", result.output)]
    src_snaps = vm.snapshot_guids(src)
    assert vm.snapshot_guids(dst) == src_snaps  # every snapshot made, the last one too, is on the destination
    assert ticks - 2 <= len(src_snaps) <= ticks, (ticks, sorted(src_snaps))
    # A tick that ran X s skipped the ~X boundaries it overran, and the next one waited for the next
    # boundary: every second of the lifetime was either ticked on or skipped, none was queued.
    assert all(int(ran) - 1 <= skipped <= int(ran) + 1 for ran, skipped in overruns), overruns
    longest = max([ran for ran, _ in overruns] or [1.0])
    assert 59 <= ticks + sum(k for _, k in overruns) <= 61 + longest, (ticks, overruns)
    assert 59 < elapsed < 60 + longest + 15  # the lifetime, a last tick begun before its end, python and ssh
    assert "failed" not in result.output


def test_sigterm_ends_a_daemon_within_two_seconds(vm_hosts: Vm, roots: tuple[str, str]) -> None:
    """Between or during ticks, SIGTERM ends the daemon with 143 and leaves no zfs or ssh behind."""
    vm, (src, dst) = vm_hosts, roots
    marker = "ServerAliveCountMax=7"  # only this test's ssh processes carry it
    log = f"/tmp/{src.replace('/', '_')}.log"
    out = vm.sh(f"""
        zfs snapshot {src}@s1
        cd {GUEST_CHECKOUT}
        PYTHONPATH=src python3 -m zferry --daemon-lifetime 1hours --daemon-frequency secondly \
          --ssh-dst-extra-opts "-o {marker}" {src} hostb:{dst} > {log} 2>&1 &
        pid=$!
        for i in $(seq 300); do grep -q "snapshots sent" {log} && break; sleep 0.1; done
        sleep 1.5
        zfs snapshot {src}@s2
        sleep 0.5
        kill -TERM $pid
        start=$(date +%s.%N); status=0; wait $pid || status=$?; end=$(date +%s.%N)
        echo "status=$status seconds=$(echo "$end - $start" | bc 2>/dev/null || python3 -c "print($end - $start)")"
        sleep 0.5
        echo "left:"; pgrep -af -- "{marker}|{src}|{dst}" | grep -v pgrep || true
        echo "log:"; cat {log}
    """)
    status = re.search(r"status=(\d+) seconds=([0-9.]+)", out)
    assert status, out
    assert int(status.group(1)) == 143, out
    assert float(status.group(2)) < 2.0, out
    assert out.split("left:")[1].split("log:")[0].strip() == "", out
    assert "tick" in out.split("log:")[1] or "snapshots sent" in out
    assert vm.snapshot_guids(dst)["@s1"] == vm.snapshot_guids(src)["@s1"]


def test_a_cached_noop_run_costs_one_zfs_list_per_side(vm: Vm, roots: tuple[str, str]) -> None:
    """What a daemon tick costs when nothing changed: with --cache-snapshots, one `zfs list -o
    ...snapshots_changed` on each side; the source's cached list keeps its bookmarks, so once a
    snapshot is gone its bookmark is still the base of the next incremental."""
    src, dst = roots
    cache, log = f"/tmp/cache-{src.replace('/', '_')}", f"/tmp/zfs-calls-{src.replace('/', '_')}"
    cached = ["-r", "--cache-snapshots", "--cache-dir", cache, src, dst]
    vm.sh(f"""
        zfs create {src}/a; zfs snapshot -r {src}@s1
        mkdir -p /opt/zfs-count-daemon
        printf '#!/bin/sh\\necho "$*" >> {log}\\nexec /usr/sbin/zfs "$@"\\n' > /opt/zfs-count-daemon/zfs
        chmod +x /opt/zfs-count-daemon/zfs
    """)
    vm.zferry(*cached)  # sends, bookmarks #s1
    vm.sh("sleep 2.5")
    vm.zferry(*cached)  # fills the caches, safely after the last change
    vm.sh(f"rm -f {log}")
    vm.zferry(*cached, env="PATH=/opt/zfs-count-daemon:$PATH")
    calls = vm.sh(f"cat {log}").splitlines()
    assert len(calls) == 2 and all("snapshots_changed" in c for c in calls), calls
    # only the root changes: it is listed again on its own (`zfs list -d 1`), its child comes from the cache
    vm.sh(f"zfs snapshot {src}@s2\n{release_zferry_holds(src)}zfs destroy {src}@s1")
    result = vm.zferry("-v", "-v", *cached)
    assert re.search(rf"send -[iI] #s1 {src}@s2 -> {dst}", result.output), [
        line for line in result.output.splitlines() if "send" in line
    ]
    assert vm.snapshot_guids(dst)["@s2"] == vm.snapshot_guids(src)["@s2"]
