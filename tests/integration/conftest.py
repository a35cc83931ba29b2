"""Fixtures for tests against real OpenZFS in the project's test VM.

- `vm`: the VM, started once per session (restored from its saved state in seconds) with
  this checkout copied in; stopped at the end unless ZFERRY_KEEP_VM=1 or it was already up.
- `pools`: two file-backed pools in the VM, `src` and `dst`, standing for two hosts.
- `roots`: a fresh pair of dataset roots per test, `src/<name>` and `dst/<name>`.

Which VM: ZFERRY_VM_ZFS=2.1 selects the OpenZFS 2.1 one (default 2.3; see testbed/vm). Tests of
features newer than some OpenZFS say so with `@pytest.mark.needs_zfs(2, 2, reason="...")` (or call
`vm.require_zfs(...)`); files in EVERY_ZFS_FILES, and any with `pytestmark = pytest.mark.every_zfs`,
run on every supported OpenZFS (`pytest -m every_zfs`), but their tests marked `one_zfs` (zferry's
own logic at scale, ssh and signal handling: nothing the OpenZFS version changes) run on the
default VM only. ZFERRY_COVERAGE=1 measures the zferry runs
inside the VM too (testbed/guest_coverage.py); their data files land in this checkout at the end.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.vm import GUEST_CHECKOUT, PROJECT, VM_SCRIPT, Vm, unique_name

POOL_SIZE = "3G"  # sparse files on the 8 GiB data disk; the suite leaves its roots behind
EVERY_ZFS_FILES = ("test_replication.py", "test_remote.py", "test_lifecycle.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in EVERY_ZFS_FILES and item.get_closest_marker("one_zfs") is None:
            item.add_marker(pytest.mark.every_zfs)


@pytest.fixture(autouse=True)
def _needs_zfs(request: pytest.FixtureRequest) -> None:
    """Skip a test marked `needs_zfs(major, minor, reason=...)` on an older OpenZFS."""
    marker = request.node.get_closest_marker("needs_zfs")
    if marker is not None:
        vm: Vm = request.getfixturevalue("vm")
        vm.require_zfs(*marker.args, reason=marker.kwargs.get("reason", ""))


@pytest.fixture(scope="session")
def vm() -> Iterator[Vm]:
    env = dict(os.environ)
    already_up = subprocess.run([str(VM_SCRIPT), "status"], env=env, capture_output=True).returncode == 0
    subprocess.run([str(VM_SCRIPT), "up"], env=env, check=True)
    coverage = os.environ.get("ZFERRY_COVERAGE") == "1"
    if coverage:
        _install_guest_coverage(env)
    yield Vm(env)
    if coverage:
        _collect_guest_coverage(env)
    if not already_up and os.environ.get("ZFERRY_KEEP_VM") != "1":
        subprocess.run([str(VM_SCRIPT), "stop"], env=env, check=False)


def _pipe(producer: list[str], consumer: list[str], env: dict[str, str]) -> None:
    """`producer | consumer`, both checked."""
    with subprocess.Popen(producer, stdout=subprocess.PIPE, env=env) as first:
        second = subprocess.run(consumer, stdin=first.stdout, env=env, check=False)
    if first.returncode != 0 or second.returncode != 0:
        raise AssertionError(f"{producer} | {consumer} failed ({first.returncode}, {second.returncode})")


def _install_guest_coverage(env: dict[str, str]) -> None:
    """This venv's coverage.py and the starter (as src/sitecustomize.py) into the guest checkout."""
    import coverage

    lib = Path(coverage.__file__).parent
    starter = PROJECT / "testbed" / "guest_coverage.py"
    target = f"{GUEST_CHECKOUT}/.coverage-lib"
    _pipe(
        ["tar", "-C", str(lib.parent), "--exclude=__pycache__", "-cf", "-", lib.name],
        [str(VM_SCRIPT), "ssh", f"mkdir -p {target} && tar -xf - -C {target}"],
        env,
    )
    script = f"install -d -m 1777 {GUEST_CHECKOUT}/.coverage-data && cat > {GUEST_CHECKOUT}/src/sitecustomize.py"
    subprocess.run([str(VM_SCRIPT), "ssh", script], input=starter.read_bytes(), env=env, check=True)


def _collect_guest_coverage(env: dict[str, str]) -> None:
    """The guest's coverage data files into this checkout (for `coverage combine`).

    Their names get the VM's port: instances restored from one saved state start with the same
    process ids and random state, so two of them (run-tests' lanes) could name files alike.
    """
    data = f"{GUEST_CHECKOUT}/.coverage-data"
    port = subprocess.run([str(VM_SCRIPT), "port"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    _pipe(
        [str(VM_SCRIPT), "ssh", f"cd {data} && ls -A | grep '^.coverage[.]' | tar -cf - -T - && rm -f .coverage.*"],
        [
            "tar",
            "-xf",
            "-",
            "--no-same-owner",
            f"--transform=s/^[.]coverage[.]/.coverage.port{port}./",
            "-C",
            str(PROJECT),
        ],
        env,
    )


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
    port = subprocess.run([str(VM_SCRIPT), "port"], capture_output=True, text=True, check=True).stdout.strip()
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
