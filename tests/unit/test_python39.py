"""zferry supports Python 3.9: every module imports and the CLI validates there too (when a 3.9 is at hand)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def _find_python39() -> str | None:
    candidates = [
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9"))),
        shutil.which("python3.9"),
    ]
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None


PYTHON39 = _find_python39()


@pytest.mark.skipif(PYTHON39 is None, reason="no Python 3.9 interpreter on this machine")
def test_modules_import_and_cli_runs_on_python39() -> None:
    assert PYTHON39 is not None
    env = dict(os.environ, PYTHONPATH=str(SRC))
    code = (
        "import importlib, pkgutil, zferry\n"
        "for m in pkgutil.walk_packages(zferry.__path__, 'zferry.'):\n"
        "    try:\n"
        "        importlib.import_module(m.name)\n"
        "    except ModuleNotFoundError as e:\n"  # the server's web modules need its optional extra
        "        if not (m.name.startswith('zferry.server.') and e.name in ('fastapi', 'starlette')): raise\n"
    )
    subprocess.run([PYTHON39, "-c", code], env=env, check=True)
    bad = subprocess.run([PYTHON39, "-m", "zferry", "tank/a;b", "backup/a"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid dataset name" in bad.stderr
