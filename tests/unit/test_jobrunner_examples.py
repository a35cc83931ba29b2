"""The jobrunner config scripts of examples/ (PRD use cases): each runs, and generates the right sub-jobs."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
EVERY_VERB = [
    "--create-src-snapshots",
    "--replicate",
    "--prune-src-snapshots",
    "--prune-src-bookmarks",
    "--prune-dst-snapshots",
    "--monitor-src-snapshots",
    "--monitor-dst-snapshots",
]


def dryrun(example: str, *args: str) -> dict[str, list[str]]:
    """Run examples/jobrunner_<example>.py with --jobrunner-dryrun: sub-job name -> zferry argv."""
    env = dict(os.environ, PYTHONPATH=str(PROJECT / "src"))
    script = PROJECT / "examples" / f"jobrunner_{example}.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--jobrunner-dryrun", *args], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    jobs = {}
    for line in proc.stdout.splitlines():
        command, _, name = line.rpartition("  # ")
        words = shlex.split(command)
        assert words[0] == "zferry"
        jobs[name] = words[1:]
    return jobs


def test_dana_two_replicas_of_one_database() -> None:
    jobs = dryrun("dana", *EVERY_VERB)
    assert len(jobs) == 1 + 2 * 3 + 2 + 1  # create; per replica: replicate, prune, monitor; src prunes; src monitor
    assert jobs["primary-db/run/~/replicate/standby-db2"][:2] == [
        "primary-db:data/postgres",
        "standby-db2:data/postgres",
    ]
    assert '"10secondly": 2160' in " ".join(jobs["primary-db/run/~/replicate/standby-db1/~/prune-dst-snapshots"])


def test_alex_hundred_sources_two_sites_by_target() -> None:
    jobs = dryrun("alex", "--replicate", "--prune-dst-snapshots")
    assert len(jobs) == 100 * 2 * 2
    onsite = jobs["src042/run/~/replicate/dr-onsite"]
    assert onsite[:2] == ["src042:tank/home", "dr-onsite:backups/src042/home"] and "--recursive" in onsite
    assert "offsite" not in " ".join(onsite) and "hourly" not in " ".join(onsite)  # dailies and weeklies only
    cloud = jobs["src042/run/~/replicate/dr-cloud"]
    assert cloud[1] == "dr-cloud:archives/src042/home" and "onsite" not in " ".join(cloud)


def test_alex_on_one_destination_host_runs_only_its_share() -> None:
    jobs = dryrun("alex", "--replicate", "--dst-host", "dr-cloud", "--localhost", "dr-cloud")
    assert len(jobs) == 100 and all(argv[1] == f"archives/{name.split('/')[0]}/home" for name, argv in jobs.items())


def test_sam_usb_pool_on_the_same_host() -> None:
    jobs = dryrun("sam", *EVERY_VERB)
    replicate = jobs["localhost/run/~/replicate/localhost"]
    assert replicate[:4] == ["tank/media", "usb/backups/media", "tank/documents", "usb/backups/documents"]
    assert not any(":" in w for argv in jobs.values() for w in argv[:4] if w != "dummy")  # no ssh anywhere


@pytest.mark.parametrize("example", ["dana", "alex", "sam"])
def test_options_after_the_script_win_and_pass_through(example: str) -> None:
    jobs = dryrun(example, "--replicate", "--src-hosts", "['zfvm-a']", "--dryrun", "-v")
    assert jobs and all(name.startswith("zfvm-a/") for name in jobs)
    assert all(argv[-4:-2] == ["--dryrun=send", "-v"] for argv in jobs.values())
