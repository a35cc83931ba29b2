"""Send-size through libzfs_core on real OpenZFS: the server's ZfsHost asks one long-lived helper in
the VM over its ControlMaster, and every estimate equals `zfs send -nP`'s.

Needs Debian's python3-pyzfs in the VM, which the image does not carry: the test skips without it
(`testbed/vm ssh 'apt-get install -y python3-pyzfs'` installs it into a running VM until its next
restore; bench/bench_server.py does that itself).
"""

from __future__ import annotations

import pytest

from tests.integration.vm import Vm
from zferry import zfs
from zferry.errors import DatasetNotFound
from zferry.model import Version
from zferry.server.settings import ServerSettings
from zferry.server.zfshost import ZfsHost

HELPERS = "pgrep -c -f 'from libzfs_core import lzc_send_space' || true"
# sshd ends the helper (its stdin closes) a moment after the ssh session is gone
HELPERS_GONE = "for i in $(seq 75); do pgrep -f 'import lzc_send_space' >/dev/null || exit 0; sleep 0.2; done; exit 1"


def test_send_size_through_libzfs_core_equals_the_cli(vm: Vm, roots: tuple[str, str], ssh_config: str) -> None:
    src, _ = roots
    found = vm.sh(f"""
        python3 -c 'import libzfs_core' 2>/dev/null || {{ echo missing; exit 0; }}
        zfs create -o compression=lz4 -o recordsize=1M {src}/d
        dd if=/dev/urandom of=/{src}/d/random bs=1M count=3 status=none
        zfs snapshot {src}/d@s1
        {{ yes zferry || true; }} | head -c 3M > /{src}/d/text
        zfs snapshot {src}/d@s2; zfs bookmark {src}/d@s1 {src}/d#b1
        echo zferry-sendspace > /run/{src.replace("/", "-")}.key
        zfs create -o encryption=on -o keyformat=passphrase -o keylocation=file:///run/{src.replace("/", "-")}.key {src}/e
        dd if=/dev/urandom of=/{src}/e/random bs=1M count=1 status=none
        zfs snapshot {src}/e@s1
    """)
    if "missing" in found:
        pytest.skip("python3-pyzfs is not installed in the VM (apt-get install -y python3-pyzfs)")
    s1, s2 = (Version(f"{src}/d", n, 0, 0, 0) for n in ("s1", "s2"))
    b1 = Version(f"{src}/d", "b1", 0, 0, 0, is_bookmark=True)
    sends = [zfs.send_full(s2, extra) for extra in ([], ["-c"], ["-L"], ["-w"], ["-c", "-L"])]
    sends += [zfs.send_incremental(s1, s2, False), zfs.send_incremental(s1, s2, False, ["-c"])]
    sends += [zfs.send_incremental(b1, s2, False, ["-L"]), zfs.send_full(Version(f"{src}/e", "s1", 0, 0, 0), ["-w"])]
    host = ZfsHost(ServerSettings(token="t" * 24, zfs_host="zfvm-a", ssh_config_file=ssh_config))
    try:
        cli = [zfs.parse_size_estimate(host.query(zfs.send_size_estimate(send))) for send in sends]
        lzc = [host.send_space.estimate(send) for send in sends]
        assert lzc == cli
        assert host.send_space.available is True
        assert cli[1] < cli[0] and cli[6] < cli[5]  # -c counts the compressed text: the flags reach lzc
        assert host.send_size(sends[0]) == cli[0]
        # lzc cannot say more than "not found": the CLI answers, with the error it always gave
        with pytest.raises(DatasetNotFound, match="does not exist"):
            host.send_size(zfs.send_full(Version(f"{src}/d", "gone", 0, 0, 0)))
        assert host.send_space.estimate(sends[0]) == cli[0]
        assert int(vm.sh(HELPERS)) >= 1
    finally:
        host.close()
    vm.sh(HELPERS_GONE)  # closing the server's ZfsHost ends its helper in the VM
