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
          truncate -s {POOL_SIZE} /var/tmp/$pool.img
          zpool create -O compression=lz4 -O atime=off "$pool" /var/tmp/$pool.img
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
