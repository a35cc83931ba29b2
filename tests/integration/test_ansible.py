"""examples/ansible/zferry.yml against the sandbox VM as its one inventory host (zfvm-a).

The playbook installs zferry from a wheel built from this checkout, the Sam example's config
script and its units into test-only folders of the VM; then zferry-jobrunner must work from where
it was installed and the units must be where the playbook put them, pointing at that install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.vm import PROJECT, Vm, unique_name

PLAYBOOK = PROJECT / "examples" / "ansible" / "zferry.yml"
ANSIBLE = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or shutil.which("ansible-playbook")


@pytest.mark.skipif(ANSIBLE is None, reason="ansible-core is a test dependency: pip install -e '.[test]'")
def test_playbook_installs_zferry_the_config_script_and_the_units(vm: Vm, ssh_config: str, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(PROJECT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("zferry-*.whl")
    base = f"/tmp/{unique_name('ansible')}"
    home, bin_dir, systemd, logrotate = f"{base}/opt", f"{base}/bin", f"{base}/systemd", f"{base}/logrotate.d"
    vm.sh(f"mkdir -p {bin_dir} {systemd} {logrotate}")  # the playbook fills folders that exist
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"zfvm-a ansible_python_interpreter=/usr/bin/python3 ansible_ssh_common_args='-F {ssh_config}'\n"
    )
    variables = {
        "zferry_wheel": str(wheel),
        "zferry_config_script": str(PROJECT / "examples" / "jobrunner_sam.py"),
        "zferry_home": home,
        "zferry_config_dir": f"{base}/etc",
        "zferry_bin_dir": bin_dir,
        "zferry_systemd_dir": systemd,
        "zferry_logrotate_dir": logrotate,
    }
    env = dict(
        os.environ,
        ANSIBLE_HOME=str(tmp_path / "ansible"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOST_KEY_CHECKING="0",
        ANSIBLE_PIPELINING="1",
    )
    try:
        run = subprocess.run(
            [str(ANSIBLE), "-i", str(inventory), str(PLAYBOOK), "-e", repr(variables).replace("'", '"')],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert "failed=0" in run.stdout
        out = vm.sh(f"""
            {bin_dir}/zferry-jobrunner --help | grep -c -- --emit-systemd
            {bin_dir}/zferry --version
            ls {systemd} {logrotate}
            grep '^ExecStart=' {systemd}/zferry-sam-usb.service
            ls {base}/etc/jobrunner_sam.py
        """)
    finally:
        vm.sh(f"rm -rf {base}")
    lines = out.split()
    assert lines[0] != "0"  # --help works from the installed place
    assert "zferry-sam-usb.service" in lines and "zferry-sam-usb.timer" in lines
    assert "zferry-sam-usb" in lines  # the logrotate file, named as logrotate wants it
    assert f"ExecStart={home}/venv/bin/python3" in out  # the service runs the installed zferry
