"""zferry-jobrunner: the sub-jobs a fleet configuration generates (pure, no ZFS)."""

from __future__ import annotations

import json

import pytest

from zferry import validate
from zferry.cli.jobrunner import plan_jobs
from zferry.cli.main import build_job_config, parse_arguments
from zferry.errors import UsageError
from zferry.jobrunner.subjobs import SubJob, job_name, names_regex
from zferry.select.regex import compile_patterns

SRC_PLAN = {"prod": {"onsite": {"hourly": 36}, "offsite": {"daily": 31}}}
DST_PLAN = {"prod": {"onsite": {"hourly": 72}, "offsite": {"daily": 365}}}
FLEET = [
    "tank/home",
    "home",
    "--src-hosts",
    "['src1', 'src2']",
    "--dst-hosts",
    "{'nas1': ['onsite'], 'dr': ['offsite']}",
    "--dst-root-datasets",
    "{'nas1': 'backups/^SRC_HOST', 'dr': 'archive/^DST_HOST/^SRC_HOST'}",
    "--src-snapshot-plan",
    repr(SRC_PLAN),
    "--dst-snapshot-plan",
    repr(DST_PLAN),
]


def jobs(*extra: str) -> dict[str, SubJob]:
    found, _, _ = plan_jobs([*FLEET, *extra])
    return {job.name: job for job in found}


def option(job: SubJob, name: str) -> str:
    return job.argv[job.argv.index(name) + 1]


def test_two_sources_two_destinations_every_verb() -> None:
    found = jobs(
        "--create-src-snapshots",
        "--replicate",
        "--prune-src-snapshots",
        "--prune-src-bookmarks",
        "--prune-dst-snapshots",
    )
    assert sorted(found) == sorted(
        f"{src}/{name}"
        for src in ("src1", "src2")
        for name in (
            "run/create-src-snapshots",
            "run/~/replicate/nas1",
            "run/~/replicate/nas1/~/prune-dst-snapshots",
            "run/~/replicate/dr",
            "run/~/replicate/dr/~/prune-dst-snapshots",
            "run/~/prune-src-snapshots",
            "run/~/prune-src-snapshots/~/prune-src-bookmarks",
        )
    )
    create = found["src2/run/create-src-snapshots"]
    assert create.argv[:2] == ("src2:tank/home", "dummy")
    assert json.loads(option(create, "--create-src-snapshots-plan")) == SRC_PLAN


def test_targets_route_snapshots_and_hosts_are_substituted() -> None:
    found = jobs("--replicate")
    nas1 = found["src1/run/~/replicate/nas1"]
    assert nas1.argv[:2] == ("src1:tank/home", "nas1:backups/src1/home")
    assert json.loads(option(nas1, "--include-snapshot-plan")) == {"prod": {"onsite": {"hourly": 72}}}
    dr = found["src2/run/~/replicate/dr"]
    assert dr.argv[:2] == ("src2:tank/home", "dr:archive/dr/src2/home")
    assert json.loads(option(dr, "--include-snapshot-plan")) == {"prod": {"offsite": {"daily": 365}}}


def test_pruning_a_destination_keeps_other_targets() -> None:
    """nas1 receives onsite and retains onsite; dr receives offsite but retains nothing of the plan."""
    found = jobs("--prune-dst-snapshots", "--retain-dst-targets", "{'nas1': ['onsite', 'offsite'], 'dr': []}")
    prune = found["src1/run/~/replicate/nas1/~/prune-dst-snapshots"]
    assert prune.argv[:2] == ("dummy", "nas1:backups/src1/home")
    assert json.loads(option(prune, "--delete-dst-snapshots-except-plan")) == DST_PLAN
    assert "src1/run/~/replicate/dr/~/prune-dst-snapshots" not in found  # nothing to keep: not pruned at all
    # what the sub-job keeps, as zferry itself builds its filter: the plan, plus every name outside its targets
    config = build_job_config(parse_arguments(list(prune.argv)))
    assert config.lifecycle.delete_snapshots == "snapshots" and config.lifecycle.delete_except
    assert config.lifecycle.skip_replication


def test_names_considered_for_pruning() -> None:
    pattern = compile_patterns([names_regex({"prod": {}}, ["onsite", ""])], "x")[0]
    assert pattern.matches("prod_onsite_2024-01-01_00:00:00_hourly")
    assert pattern.matches("prod_2024-01-01_00:00:00_daily")  # the empty target
    assert not pattern.matches("prod_offsite_2024-01-01_00:00:00_daily")
    assert not pattern.matches("manual-before-upgrade")


def test_restricting_to_one_host_and_localhost() -> None:
    found = jobs("--replicate", "--dst-host", "nas1", "--localhost", "nas1")
    assert sorted(found) == ["src1/run/~/replicate/nas1", "src2/run/~/replicate/nas1"]
    assert found["src1/run/~/replicate/nas1"].argv[:2] == ("src1:tank/home", "backups/src1/home")  # no ssh to nas1
    found = jobs("--create-src-snapshots", "--src-host", "src2")
    assert list(found) == ["src2/run/create-src-snapshots"]


def test_unknown_options_pass_through_to_every_sub_job() -> None:
    found = jobs("--replicate", "--create-src-snapshots", "-v", "--ssh-src-config-file", "/etc/z/ssh", "--dryrun")
    for job in found.values():
        assert job.argv[-6:-2] == ("-v", "--ssh-src-config-file", "/etc/z/ssh", "--dryrun=send"), job
        parse_arguments(list(job.argv))  # zferry's own parser takes every sub-job


def test_each_sub_job_has_its_own_legal_job_name() -> None:
    found = jobs("--replicate", "--create-src-snapshots", "--prune-dst-snapshots")
    names = {name: build_job_config(parse_arguments(list(job.argv))).name for name, job in found.items()}
    assert (
        names["src1/run/~/replicate/dr/~/prune-dst-snapshots"] == "jobrunner.src1.run.replicate.dr.prune-dst-snapshots"
    )
    assert len(set(names.values())) == len(names)  # log files, audit records, metric labels, lock keys
    given = jobs("--replicate", "--job-name", "nightly", "--job-id", "other")
    assert {job.argv.count("--job-name") for job in given.values()} == {1}  # the passed one is replaced
    assert given["src1/run/~/replicate/nas1"].argv[-1] == "nightly.src1.run.replicate.nas1"
    assert jobs("--replicate", "--job-id", "other")["src2/run/~/replicate/dr"].argv[-1] == "other.src2.run.replicate.dr"


def test_derived_job_names_are_made_legal_and_stay_distinct_when_long() -> None:
    assert job_name("j", "root@db-1.example/run/create-src-snapshots") == "j.root-db-1.example.run.create-src-snapshots"
    long_a, long_b = (job_name("j", f"{'h' * 70}{i}/run/create-src-snapshots") for i in (1, 2))
    assert len(long_a) == len(long_b) == 64 and long_a != long_b
    assert validate.job_name(long_a) == long_a


def test_jitter_shuffles_with_a_seedable_rng() -> None:
    import random

    plain, _, _ = plan_jobs([*FLEET, "--replicate"])
    first, _, _ = plan_jobs([*FLEET, "--replicate", "--jitter"], random.Random(3))
    again, _, _ = plan_jobs([*FLEET, "--replicate", "--jitter"], random.Random(3))
    assert first == again and sorted(first, key=str) == sorted(plain, key=str)
    assert any(plan_jobs([*FLEET, "--replicate", "--jitter"], random.Random(s))[0] != plain for s in range(5))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dst-root-datasets", "{'nas1': 'backups', 'dr': 'x/^SRC_HOST'}", "--replicate"], "^SRC_HOST"),
        (["--replicate", "--src-host", "src9"], "src9"),
        (["--prune-dst-snapshots", "--dst-snapshot-plan", "{'prod': {'onsite': {'hourly': -1}}}"], "hourly"),
        (["--replicate", "--dst-root-datasets", "{'nas1': ''}"], "no root dataset for dr"),
        (["--replicate", "--src-hosts", "['-oProxyCommand=x']"], "invalid host"),
        (["--replicate", "--dst-hosts", "{'nas1': 'onsite'}"], "list of target"),
        (["--replicate", "--src-hosts", "__import__('os')"], "cannot read"),
        (["--monitor-dst-snapshots"], "--monitor-snapshot-plan"),
        (["--replicate", "--delete-dst-snapshots"], "set by the jobrunner"),
        ([], "nothing to do"),
    ],
)
def test_bad_input_is_refused(extra: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("^", r"\^").replace("(", r"\(")):
        plan_jobs([*FLEET, *extra])
