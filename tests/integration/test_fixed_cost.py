"""The fixed cost of a run, counted in zfs processes on real OpenZFS (issue 11): a first run of a
one-snapshot dataset starts 8 (three listings, the source's protective hold before the send, send,
receive, the bookmark, the destination's hold), and the protections stay: the source snapshot is
held before it is sent, both sides end with one hold of the pair, the bookmark exists."""

from __future__ import annotations

from tests.integration.vm import Vm
from zferry.exec.host import Host
from zferry.holds import hold_tag
from zferry.inventory import Side


def _holds(vm: Vm, snapshot: str) -> set[str]:
    return {line.split("\t")[1] for line in vm.sh(f"zfs holds -H {snapshot}").splitlines()}


def test_a_first_run_costs_eight_zfs_processes_and_keeps_every_protection(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    name = src.replace("/", "_")
    shim, log, cache = f"/opt/zfs-count-{name}", f"/tmp/zfs-calls-{name}", f"/tmp/zferry-cache-{name}"
    vm.sh(f"""
        zfs snapshot {src}@s1
        mkdir -p {shim}; rm -rf {log} {cache}
        printf '#!/bin/sh\\necho "$*" >> {log}\\nexec /usr/sbin/zfs "$@"\\n' > {shim}/zfs; chmod +x {shim}/zfs
    """)
    vm.zferry("--cache-dir", cache, src, dst, env=f"PATH={shim}:$PATH")  # a cold cache: the first run
    calls = vm.sh(f"cat {log}").splitlines()
    verbs = [c.split()[0] for c in calls]
    assert sorted(verbs) == sorted(["list"] * 3 + ["hold", "send", "receive", "bookmark", "hold"]), calls
    assert verbs.index("hold") < verbs.index("send")  # protected before it is sent
    assert calls[verbs.index("hold")].endswith(f"{src}@s1")
    tag = hold_tag(Side(Host(), dst))
    assert _holds(vm, f"{src}@s1") == {tag} and _holds(vm, f"{dst}@s1") == {tag}
    assert vm.sh(f"zfs list -H -o name -t bookmark {src}").split() == [f"{src}#s1"]
    vm.sh(f"zfs snapshot {src}@s2; rm -f {log}")
    vm.zferry("--cache-dir", cache, src, dst, env=f"PATH={shim}:$PATH")  # the hold moves on both sides
    assert _holds(vm, f"{src}@s2") == {tag} and _holds(vm, f"{dst}@s2") == {tag}
    assert not _holds(vm, f"{src}@s1") and not _holds(vm, f"{dst}@s1")
    assert f"{src}#s2" in vm.sh(f"zfs list -H -o name -t bookmark {src}").split()
