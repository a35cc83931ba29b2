"""The process runner with ordinary programs (no ZFS): pipelines, failures, timeouts, dry run."""

from __future__ import annotations

import time

import pytest

from zferry.errors import CommandError
from zferry.exec.host import LOCAL
from zferry.exec.runner import Runner, Stage


def test_run_returns_stdout() -> None:
    assert Runner().run(LOCAL, ["echo", "hello"]) == "hello\n"


def test_failure_carries_stderr_and_status() -> None:
    with pytest.raises(CommandError) as info:
        Runner().run(LOCAL, ["sh", "-c", "echo broken >&2; exit 3"])
    assert info.value.returncode == 3 and "broken" in str(info.value)


def test_pipeline_streams_between_processes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    Runner().pipeline([Stage(LOCAL, ("printf", "abc")), Stage(LOCAL, ("sh", "-c", f"cat > {out}"))])
    assert out.read_text() == "abc"


def test_pipeline_names_the_stage_that_failed_for_its_own_reason() -> None:
    with pytest.raises(CommandError) as info:
        Runner().pipeline(
            [Stage(LOCAL, ("yes",)), Stage(LOCAL, ("sh", "-c", "head -c 10 >/dev/null; echo disk full >&2; exit 1"))]
        )
    message = str(info.value)
    assert "disk full" in message and "sh -c" in message
    assert "yes -> exit" in message  # every stage's status is reported


def test_timeout_kills_the_command() -> None:
    started = time.monotonic()
    with pytest.raises(CommandError, match="timed out"):
        Runner(timeout=0.5).run(LOCAL, ["sleep", "30"])
    assert time.monotonic() - started < 10


def test_dry_run_runs_nothing_that_changes_anything(tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "touched"
    runner = Runner(dry_run=True)
    assert runner.run(LOCAL, ["touch", str(marker)], changes=True) == ""
    runner.pipeline([Stage(LOCAL, ("echo", "x")), Stage(LOCAL, ("touch", str(marker)))])
    assert not marker.exists()
    assert runner.run(LOCAL, ["echo", "read-only"]) == "read-only\n"  # reads still run


def test_terminate_all_stops_running_children_and_refuses_new_ones() -> None:
    import threading

    runner = Runner()
    errors: list[BaseException] = []

    def slow() -> None:
        try:
            runner.pipeline([Stage(LOCAL, ("sleep", "30")), Stage(LOCAL, ("cat",))])
        except CommandError as error:
            errors.append(error)

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.5)
    runner.terminate_all()
    worker.join(timeout=10)
    assert not worker.is_alive() and errors
    with pytest.raises(CommandError, match="stopping"):
        runner.run(LOCAL, ["true"])
