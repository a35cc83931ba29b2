"""zferry-dr's pure parts: the site file, site state parsing, the plan (primary, fencing, divergence,
latest-wins), the status report and metrics, the CLI's usage errors and help."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Optional

import pytest

from zferry.dr import cli, plan
from zferry.dr.config import Group, Site, load, parse, replication_argv
from zferry.dr.metrics import render
from zferry.dr.state import DatasetState, SiteState, parse_site
from zferry.dr.status import group_status, to_json, to_text
from zferry.dr.steps import utc_stamp, with_recv_excludes
from zferry.errors import ConflictError, UsageError
from zferry.model import Endpoint, Version

SITE_FILE = """
[groups.db]
recursive = true
primary = "east"
[groups.db.sites]
east = "root@db-east:tank/db"
west = {dataset = "db-west:tank/db", ssh_config_file = "CONFIG"}
[groups.db.options]
extra_args = ["--threads", "2"]
"""


def _data(**db: Any) -> dict[str, Any]:
    group: dict[str, Any] = {"primary": "a", "sites": {"a": "h1:p/x", "b": "h2:p/x"}}
    group.update(db)
    return {"groups": {"db": group}}


def test_site_file_is_read_and_checked_with_zferrys_parser(tmp_path: Path) -> None:
    ssh = tmp_path / "ssh_config"
    ssh.write_text("")
    path = tmp_path / "dr.toml"
    path.write_text(SITE_FILE.replace("CONFIG", str(ssh)))
    config = load(str(path), cli._check_argv)
    group = config.group("db")
    assert group.recursive and group.primary == "east" and group.extra_args == ("--threads", "2")
    east, west = group.site("east"), group.site("west")
    assert east.endpoint == Endpoint("tank/db", "db-east", "root") and west.ssh_config_file == str(ssh)
    argv = replication_argv(group, west, east, ["--job-name", "j"])
    assert argv == [
        "--threads",
        "2",
        "--ssh-src-config-file",
        str(ssh),
        "--recursive",
        "--job-name",
        "j",
        "db-west:tank/db",
        "root@db-east:tank/db",
    ]
    path.write_text(SITE_FILE.replace("CONFIG", str(ssh)).replace('"2"]', '"0"]'))
    with pytest.raises(UsageError, match="extra_args"):
        load(str(path), cli._check_argv)  # zferry's own range check of --threads


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"groups": {}}, "no groups"),
        ({"group": {}}, "unknown top-level"),
        (_data(primary="c"), "primary must name"),
        (_data(sites={"a": "h1:p/x"}), "at least two sites"),
        (_data(sites={"a": "h1:p/x", "b": "h1:p/x"}), "same dataset"),
        (_data(sites={"a": "h1:p/x", "b": "h2:p/x; rm -rf /"}), "invalid"),
        (_data(sites={"a": "h1:p/x", "b": {"dataset": "h2:p/x", "ssh_config_file": "/nonexistent"}}), "cannot use"),
        (_data(sites={"a": "h1:p/x", "b": {"datasett": "h2:p/x"}}), "unknown key"),
        (_data(recursive="yes"), "true or false"),
        (_data(options={"extra_args": ["--force"]}), "not allowed"),
        (_data(options={"extra_args": "--threads 2"}), "list of strings"),
        (_data(colour="red"), "unknown key"),
        ({"groups": {"d b": _data()["groups"]["db"]}}, "group name"),
    ],
)
def test_bad_site_files_are_usage_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(data)


def test_extra_args_must_not_name_datasets() -> None:
    with pytest.raises(UsageError, match="options only"):
        parse(_data(options={"extra_args": ["p/y", "p/z"]}), check_argv=cli._check_argv)


def _snap(ds: str, name: str, guid: int, txg: int, creation: int = 0) -> Version:
    return Version(ds, name, guid, txg, creation)


def _state(
    site: str,
    snaps: Optional[dict[str, list[tuple[str, int, int]]]] = None,
    written: Optional[dict[str, int]] = None,
    **fields: Any,
) -> SiteState:
    snaps = snaps or {"": []}
    written = written or {}
    datasets = {rel: DatasetState(written.get(rel, 0)) for rel in snaps}
    versions = {rel: tuple(_snap(f"p/{site}{rel}", n, g, t, c) for n, g, t, c in vs) for rel, vs in snaps.items()}  # type: ignore[misc]
    return SiteState(site, exists=True, datasets=datasets, snapshots=versions, **fields)


GROUP = Group("db", "a", (Site("a", Endpoint("p/a", "h1")), Site("b", Endpoint("p/b", "h2"))), recursive=True)


def test_divergence_by_snapshots_after_the_common_one_and_by_writes() -> None:
    primary = _state("a", {"": [("s1", 1, 10, 100), ("s2", 2, 20, 200)], "/k": [("s1", 3, 10, 100)]})
    same = _state("b", {"": [("s1", 1, 5, 100)], "/k": [("s1", 3, 5, 100)]})
    assert not plan.divergence(primary, same).diverged  # behind, not diverged
    written = _state("b", {"": [("s1", 1, 5, 100)], "/k": [("s1", 3, 5, 100)]}, {"/k": 4096})
    div = plan.divergence(primary, written)
    assert div.reasons.keys() == {"/k"} and "4096 bytes written since the common @s1" in div.describe()
    extra = _state("b", {"": [("s1", 1, 5, 100), ("x", 9, 6, 300)], "/k": [("s1", 3, 5, 100)]})
    div = plan.divergence(primary, extra)
    assert div.common[""] is not None and div.common[""].name == "s1"
    assert div.reasons == {"": "1 snapshot(s) after the common @s1 (newest @x)"}
    alien = _state("b", {"": [("y", 7, 5, 100)]})
    assert "none in common" in plan.divergence(primary, alien).describe()


def test_primary_fencing_and_epochs() -> None:
    fresh = {"a": _state("a"), "b": _state("b")}
    assert plan.current_primary(GROUP, fresh) == "a" and not plan.initialised(fresh)
    states = {"a": _state("a", role="primary", epoch=3), "b": _state("b", role="primary", epoch=4, must_fence=("a",))}
    assert plan.current_primary(GROUP, states) == "b"
    assert plan.must_fence(states, "b") == ["a"] and plan.new_epoch(states) == 5
    states["a"] = _state("a", role="standby", epoch=4)
    assert plan.must_fence(states, "b") == ["a"]  # named in must-fence: fenced whatever it says
    states["a"] = _state("a", role="fenced", epoch=3)
    assert plan.must_fence(states, "b") == []
    gone = {"a": SiteState("a", reachable=False), "b": _state("b", role="standby", epoch=3)}
    assert plan.current_primary(GROUP, gone) is None
    split = {"a": _state("a", role="primary", epoch=4), "b": _state("b", role="primary", epoch=4)}
    with pytest.raises(ConflictError, match="split brain"):
        plan.current_primary(GROUP, split)


def test_latest_wins_among_the_highest_epoch_only() -> None:
    older = _state("a", {"": [("s", 1, 1, 1000)]}, role="primary", epoch=2)
    newer = _state("b", {"": [("t", 2, 1, 2000)]}, role="standby", epoch=2)
    assert plan.latest_wins(older, newer, now=3000) == "b"
    assert plan.latest_wins(newer, older, now=3000) == "b"
    stale = _state("b", {"": [("t", 2, 1, 2000)]}, role="standby", epoch=1)
    assert plan.latest_wins(older, stale, now=3000) == "a"  # a lower epoch never wins
    tie = _state("b", {"": [("t", 2, 1, 1000)]}, role="standby", epoch=2)
    with pytest.raises(ConflictError, match="same time"):
        plan.latest_wins(older, tie, now=3000)
    with pytest.raises(ConflictError, match="skewed"):
        plan.latest_wins(older, newer, now=1000)


def test_site_state_from_zfs_output() -> None:
    props = "\n".join(
        [
            "p/db\tzferry:dr-role\tprimary\tlocal",
            "p/db\tzferry:dr-epoch\t7\tlocal",
            "p/db\tzferry:dr-must-fence\twest,north\tlocal",
            "p/db\tzferry:dr-pending\t-\t-",
            "p/db\treadonly\ton\tlocal",
            "p/db\twritten\t0\t-",
            "p/db\torigin\t-\t-",
            "p/db\tmounted\tno\t-",
            "p/db\tcanmount\ton\tdefault",
            "p/db/k\twritten\t512\t-",
            "p/db/k\tmounted\tyes\t-",
            "p/db/k\tcanmount\ton\tdefault",
            "p/db.diverged-x\twritten\t1\t-",
        ]
    )
    snaps = "p/db@s1\t11\t5\t1000\t0\np/db/k@s1\t12\t5\t1000\t1\np/db#s1\t11\t5\t1000\t-\n"
    state = parse_site("east", "p/db", props, snaps, "ONLINE\n")
    assert (state.role, state.epoch, state.must_fence, state.pending) == ("primary", 7, ("north", "west"), "")
    assert state.readonly and state.exists and state.health == "ONLINE"
    assert set(state.datasets) == {"", "/k"} and state.datasets["/k"].written == 512
    assert state.datasets[""].mountable and not state.datasets["/k"].mountable
    assert [v.name for v in state.snapshots[""]] == ["s1"] and state.latest("/k") is not None
    assert not parse_site("east", "p/db", "", "", "").exists


def test_status_report_json_text_and_metrics() -> None:
    states = {
        "a": SiteState("a", reachable=False, error="ssh: connect refused"),
        "b": _state("b", {"": [("s1", 1, 5, 100)]}, role="primary", epoch=2, must_fence=("a",), health="ONLINE"),
    }
    status = group_status(GROUP, states, now=160)
    assert status.primary == "b" and not status.divergent and not status.healthy
    assert any("a must be fenced when it returns" in n for n in status.notes)
    doc = json.loads(to_json([status]))["groups"][0]
    assert {"name", "primary", "divergent", "sites"} <= doc.keys()
    site = doc["sites"][0]
    assert {"name", "role", "epoch", "reachable", "lag_seconds"} <= site.keys()
    assert site["name"] == "a" and site["reachable"] is False
    assert doc["sites"][1]["lag_seconds"] == 0.0
    assert "UNREACHABLE" in to_text([status])
    text = render([status])
    assert 'zferry_dr_role{group="db",site="b",role="primary"} 1' in text
    assert 'zferry_dr_epoch{group="db",site="b"} 2' in text and 'zferry_dr_reachable{group="db",site="a"} 0' in text


def test_status_explains_an_interrupted_failover() -> None:
    states = {
        "a": _state("a", role="fenced", epoch=2, pending="failover:b:3"),
        "b": _state("b", role="standby", epoch=2),
    }
    status = group_status(GROUP, states, now=0)
    assert status.primary is None
    assert any("rerun zferry-dr failover db --to b" in n for n in status.notes)


def test_receive_excludes_merge_with_the_groups_own_options() -> None:
    assert with_recv_excludes(["a", "b"])[0] == "--zfs-recv-program-opts=-x zferry:dr-must-fence -x zferry:dr-pending"
    merged = with_recv_excludes(["--zfs-recv-program-opts", "-o compression=on", "a", "b"])
    assert merged[1] == "-o compression=on -x zferry:dr-must-fence -x zferry:dr-pending"
    assert utc_stamp(0) == "19700101T000000Z"


def test_cli_usage_errors_exit_2_and_every_option_has_help(tmp_path: Path) -> None:
    assert cli.main(["status"]) == 2  # no site file
    assert cli.main(["-c", str(tmp_path / "missing.toml"), "status"]) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[groups.db\n")
    assert cli.main(["-c", str(bad), "status"]) == 2
    assert cli.main(["failover", "db"]) == 2  # --to missing
    assert cli.main(["replicate", "--on-divergence", "maybe"]) == 2
    good = tmp_path / "dr.toml"
    good.write_text(SITE_FILE.replace(', ssh_config_file = "CONFIG"', ""))
    assert cli.main(["status", "-c", str(good), "nosuchgroup"]) == 2
    assert cli.main(["-c", str(good), "failover", "db", "--to", "north"]) == 2
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for sub in [parser, *subparsers.choices.values()]:
        missing = [a.dest for a in sub._actions if not (a.help or "").strip()]
        assert missing == []
        assert all(
            "e.g." in (a.help or "") for a in sub._actions if a.option_strings and a.dest not in ("help", "version")
        )


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "failover db --to west --force" in out
