"""Destination locks with real processes and real files: symlinks, folder checks, contention, waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from zferry.cli.main import main
from zferry.errors import EXIT_LOCKED, LockedError, UsageError
from zferry.lock import DestinationLocks, lock_key

SRC = str(Path(__file__).resolve().parents[2] / "src")
HOLDER = """
import sys, time
from zferry.lock import DestinationLocks
with DestinationLocks([(None, sys.argv[2])], sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


@contextmanager
def held_by_other_process(lock_dir: Path, root: str, seconds: float = 30) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of `root` on this machine for `seconds`."""
    env = dict(os.environ, PYTHONPATH=SRC)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_dir), root, str(seconds)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_symlinked_lock_file_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    locks, victim = tmp_path / "locks", tmp_path / "victim"
    locks.mkdir(mode=0o700)
    victim.write_text("precious\n")
    (locks / lock_key(None, "backup/a")).symlink_to(victim)
    with pytest.raises(UsageError, match="symlink"), DestinationLocks([(None, "backup/a")], str(locks)):
        pass
    assert victim.read_text() == "precious\n"


def test_a_hard_linked_lock_file_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    locks, victim = tmp_path / "locks", tmp_path / "victim"
    locks.mkdir(mode=0o700)
    victim.write_text("precious\n")
    os.link(victim, locks / lock_key(None, "backup/a"))
    with pytest.raises(UsageError, match="hard link"), DestinationLocks([(None, "backup/a")], str(locks)):
        pass
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("mode", [0o770, 0o703, 0o1777])
def test_a_folder_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    locks = tmp_path / "locks"
    locks.mkdir()
    locks.chmod(mode)
    with (
        pytest.raises(UsageError, match="writable by group or others"),
        DestinationLocks([(None, "backup/a")], str(locks)),
    ):
        pass
    assert not os.listdir(locks)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    os.chown(locks, 65534, 65534)
    with pytest.raises(UsageError, match="belongs to uid 65534"), DestinationLocks([(None, "backup/a")], str(locks)):
        pass


def test_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "locks").symlink_to(real)
    with (
        pytest.raises(UsageError, match="not a folder"),
        DestinationLocks([(None, "backup/a")], str(tmp_path / "locks")),
    ):
        pass


def test_a_missing_folder_is_created_private(tmp_path: Path) -> None:
    with DestinationLocks([(None, "backup/a")], str(tmp_path / "new")) as locks:
        assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
        assert Path(locks.dir, lock_key(None, "backup/a")).read_text() == f"pid {os.getpid()}\n"


def test_same_destination_with_other_arguments_exits_75_naming_the_holder(
    tmp_path: Path, no_zfs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locks = tmp_path / "locks"
    with held_by_other_process(locks, "backup/a") as holder:
        assert main(["--lock-dir", str(locks), "-v", "tank/other", "backup/a"]) == EXIT_LOCKED == 75
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "backup/a" in err and "--lock-wait" in err
        assert Path(locks, lock_key(None, "backup/a")).read_text() == f"pid {holder.pid}\n"  # not truncated
    assert not no_zfs.exists()  # nothing ran


def test_another_destination_is_not_blocked(tmp_path: Path, no_zfs: Path) -> None:
    locks = tmp_path / "locks"
    with held_by_other_process(locks, "backup/a"):
        assert main(["--lock-dir", str(locks), "tank/a", "backup/b"]) == 1  # our fake zfs fails
    assert no_zfs.exists()


def test_a_dry_run_takes_no_lock(tmp_path: Path, no_zfs: Path) -> None:
    locks = tmp_path / "locks"
    with held_by_other_process(locks, "backup/a"):
        assert main(["--lock-dir", str(locks), "tank/a", "backup/a", "--dryrun"]) == 1
    assert no_zfs.exists()


def test_lock_wait_waits_for_the_holder_then_proceeds(tmp_path: Path, no_zfs: Path) -> None:
    locks = tmp_path / "locks"
    with held_by_other_process(locks, "backup/a", seconds=1.5):
        started = time.monotonic()
        assert main(["--lock-dir", str(locks), "--lock-wait", "20", "tank/a", "backup/a"]) == 1
        assert 0.5 < time.monotonic() - started < 15
    assert no_zfs.exists()  # it ran (and failed on our fake zfs)


def test_lock_wait_gives_up_after_its_time(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    with held_by_other_process(locks, "backup/a"):
        started = time.monotonic()
        with (
            pytest.raises(LockedError, match=r"after waiting 0\.6 s"),
            DestinationLocks([(None, "backup/a")], str(locks), wait=0.6),
        ):
            pass
        assert time.monotonic() - started >= 0.6


def test_several_pairs_take_every_lock_in_sorted_order(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    both = DestinationLocks([("nas", "pool/z"), (None, "backup/b"), ("nas", "pool/z")], str(locks))
    assert both.targets == [(None, "backup/b"), ("nas", "pool/z")]
    with held_by_other_process(locks, "backup/b"), pytest.raises(LockedError, match="backup/b"), both:
        pass
    with both:
        assert len(os.listdir(locks)) == 2


def test_the_lock_of_a_killed_run_is_taken_over_and_the_takeover_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    locks = tmp_path / "locks"
    with held_by_other_process(locks, "backup/a") as holder:
        pass  # kill -9: the kernel drops the flock, the file still names the holder
    taken: list[tuple[str, str, int]] = []
    with DestinationLocks([(None, "backup/a")], str(locks), on_takeover=lambda *args: taken.append(args)):
        assert taken == [(str(locks / lock_key(None, "backup/a")), "backup/a", holder.pid)]
    assert f"taking over the lock for backup/a from pid {holder.pid}" in caplog.text
    assert Path(locks, lock_key(None, "backup/a")).read_text() == ""  # released: emptied


def test_a_lock_released_normally_is_no_takeover(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    locks = tmp_path / "locks"
    with held_by_other_process(locks, "backup/a", seconds=0):
        time.sleep(0.5)  # it releases the lock and exits on its own
    taken: list[tuple[str, str, int]] = []
    with DestinationLocks([(None, "backup/a")], str(locks), on_takeover=lambda *args: taken.append(args)):
        assert taken == []
    assert "taking over" not in caplog.text
