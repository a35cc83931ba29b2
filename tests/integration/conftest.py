"""Fixtures for tests against real OpenZFS in the project's test VM.

- `vm`: the VM, started once per session (restored from its saved state in seconds) with
  this checkout copied in; stopped at the end unless ZFERRY_KEEP_VM=1 or it was already up.
- `pools`: two file-backed pools in the VM, `src` and `dst`, standing for two hosts.
- `roots`: a fresh pair of dataset roots per test, `src/<name>` and `dst/<name>`.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.vm import VM_SCRIPT, Vm, unique_name

POOL_SIZE = "2G"


@pytest.fixture(scope="session")
def vm() -> Iterator[Vm]:
    env = dict(os.environ)
    already_up = subprocess.run([str(VM_SCRIPT), "status"], env=env, capture_output=True).returncode == 0
    subprocess.run([str(VM_SCRIPT), "up"], env=env, check=True)
    yield Vm(env)
    if not already_up and os.environ.get("ZFERRY_KEEP_VM") != "1":
        subprocess.run([str(VM_SCRIPT), "stop"], env=env, check=False)


@pytest.fixture(scope="session")
def pools(vm: Vm) -> tuple[str, str]:
    vm.sh(f"""
        for pool in src dst; do
          zpool list -H "$pool" >/dev/null 2>&1 && continue
          truncate -s {POOL_SIZE} /pools/$pool.img
          zpool create -O compression=lz4 -O atime=off "$pool" /pools/$pool.img
        done
    """)
    return "src", "dst"


@pytest.fixture
def roots(vm: Vm, pools: tuple[str, str], request: pytest.FixtureRequest) -> tuple[str, str]:
    """`src/<test>` (created, empty) and `dst/<test>` (not created) for one test."""
    name = unique_name(re.sub(r"[^a-z0-9]", "", request.node.name.lower())[:24])
    src, dst = f"{pools[0]}/{name}", f"{pools[1]}/{name}"
    vm.sh(f"zfs create {src}")
    return src, dst


@pytest.fixture(scope="session")
def ssh_config(vm: Vm, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An ssh config on this machine naming the VM twice, `zfvm-a` and `zfvm-b`, like two real hosts."""
    key = subprocess.run([str(VM_SCRIPT), "key"], capture_output=True, text=True, check=True).stdout.strip()
    port = os.environ.get("ZFERRY_VM_PORT", "10022")
    path = tmp_path_factory.mktemp("ssh") / "config"
    path.write_text(
        "Host zfvm-a zfvm-b\n"
        f"  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {key}\n"
        "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
    )
    return str(path)


@pytest.fixture(scope="session")
def vm_hosts(vm: Vm, pools: tuple[str, str]) -> Vm:
    """Inside the VM: ssh aliases `hosta`/`hostb` (the VM itself over real ssh) for root, and two
    non-root users: `zfsudo` (passwordless sudo) and `zfallow` (no sudo; rights via `zfs allow`)."""
    vm.sh("""
        [ -f /root/.ssh/id_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519
        grep -qF "$(cat /root/.ssh/id_ed25519.pub)" /root/.ssh/authorized_keys \
          || cat /root/.ssh/id_ed25519.pub >> /root/.ssh/authorized_keys
        printf 'Host hosta hostb\\n  HostName 127.0.0.1\\n  StrictHostKeyChecking no\\n  UserKnownHostsFile /dev/null\\n  LogLevel ERROR\\n' > /root/.ssh/config
        for u in zfsudo zfallow; do
          id $u >/dev/null 2>&1 || useradd -m -s /bin/bash $u
          mkdir -p /home/$u/.ssh; cp /root/.ssh/id_ed25519 /root/.ssh/id_ed25519.pub /root/.ssh/config /home/$u/.ssh/
          cat /root/.ssh/id_ed25519.pub > /home/$u/.ssh/authorized_keys
          chown -R $u: /home/$u/.ssh; chmod 700 /home/$u/.ssh
        done
        chmod 666 /dev/zfs  # what udev's zfs rule does on a normal system (this VM runs without udev)
        echo 'zfsudo ALL=(root) NOPASSWD: /usr/sbin/zfs, /sbin/zfs' > /etc/sudoers.d/zfsudo
        chmod 440 /etc/sudoers.d/zfsudo
    """)
    return vm
