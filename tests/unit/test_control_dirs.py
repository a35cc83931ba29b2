"""Control socket folders: a killed run's folder is removed by the next run, a live run's never."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from zferry.exec.control_dirs import new_control_dir, remove_stale, stale_names


def test_stale_names_are_those_of_gone_runs_only() -> None:
    names = [
        "zferry-ssh-100-abc",
        "zferry-ssh-200-x_y",
        "zferry-ssh-300-q",
        "zferry-ssh-abc",
        "other-1-2",
        "zferry-ssh-7-",
    ]
    assert stale_names(names, alive=lambda pid: pid == 200, own_pid=300) == ["zferry-ssh-100-abc"]


def test_a_killed_runs_folder_and_socket_go_a_live_ones_stay(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = tmp_path / f"zferry-ssh-{dead.stdout.strip()}-abc"
    live = tmp_path / f"zferry-ssh-{os.getppid()}-def"
    for folder in (gone, live):
        folder.mkdir()
        with socket.socket(socket.AF_UNIX) as sock:  # what a SIGKILLed ssh master leaves
            sock.bind(str(folder / "m0"))
    foreign = tmp_path / "zferry-ssh-1x"
    foreign.mkdir()
    assert remove_stale(str(tmp_path)) == [str(gone)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, foreign.name])


def test_a_symlink_is_never_followed(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.mkdir()
    (target / "file").write_text("keep")
    (tmp_path / "zferry-ssh-999999999-link").symlink_to(target)
    remove_stale(str(tmp_path), alive=lambda pid: False)
    assert (target / "file").read_text() == "keep"


def test_new_folder_is_private_and_named_after_this_process(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    (tmp_path / "zferry-ssh-999999999-old").mkdir()
    path = Path(new_control_dir())
    assert path.parent == tmp_path and path.name.startswith(f"zferry-ssh-{os.getpid()}-")
    assert oct(path.stat().st_mode & 0o777) == "0o700"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
