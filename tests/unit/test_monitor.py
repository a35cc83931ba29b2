"""`--monitor-snapshots`: plan parsing, ages against limits, Nagios output and exit codes."""

from __future__ import annotations

import pytest

from zferry.cli.main import main
from zferry.errors import UsageError
from zferry.model import Version
from zferry.observe.monitor import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    Limits,
    check_dataset,
    evaluate,
    extremes,
    parse_monitor_plan,
    perf_label,
    render,
)

PLAN = "{'prod': {'onsite': {'hourly': {'warning': '90 minutes', 'critical': '2 hours', 'oldest_critical': '3 days'}}}}"
NOW = 1_800_000_000.0


def snap(name: str, age: float) -> Version:
    return Version("dst/ds", name, 1, 1, int(NOW - age))


def checks_for(ages: dict[str, float], plan: str = PLAN) -> list:  # type: ignore[type-arg]
    entries = parse_monitor_plan(plan)
    snapshots = [snap(name, age) for name, age in sorted(ages.items(), key=lambda kv: -kv[1])]
    return check_dataset("dst/ds", extremes(snapshots, entries), entries, NOW)


def test_plan_parsing_flat_and_bzfs_nested() -> None:
    (entry,) = parse_monitor_plan(PLAN)
    assert entry.key == "prod_onsite_*_hourly"
    assert entry.latest == Limits(5400, 7200) and entry.oldest == Limits(None, 259_200)
    nested = "{'prod': {'onsite': {'hourly': {'latest': {'warning': '90 minutes', 'critical': '2 hours'}}}}}"
    assert parse_monitor_plan(nested)[0].latest == Limits(5400, 7200)


@pytest.mark.parametrize(
    "plan",
    [
        "{'prod': ",
        "{'prod': {'onsite': {'hourly': 36}}}",
        "{'prod': {'onsite': {'hourly': {'warnin': '1 hours'}}}}",
        "{'prod': {'onsite': {'hourly': {'warning': '1 fortnight'}}}}",
        "{'prod': {'onsite': {'hourly': {'warning': 60}}}}",
        "{'prod': {'onsite': {'hourly': {'warning': '3 hours', 'critical': '2 hours'}}}}",
        "{'1prod': {'onsite': {'hourly': {'warning': '1 hours'}}}}",
        "{}",
    ],
)
def test_bad_plans_are_usage_errors(plan: str) -> None:
    with pytest.raises(UsageError, match="--monitor-snapshots"):
        parse_monitor_plan(plan)


def test_ages_against_limits() -> None:
    limits = Limits(5400, 7200)
    assert [evaluate(a, limits) for a in (0, 5400, 5401, 7200, 7201)] == [OK, OK, WARNING, WARNING, CRITICAL]
    assert evaluate(None, limits) == CRITICAL and evaluate(None, Limits(warning=1)) == WARNING
    assert evaluate(10**9, Limits()) == OK


def test_latest_and_oldest_of_the_entry_only() -> None:
    checks = checks_for(
        {"prod_onsite_2026-01-01_00:00:00_hourly": 4 * 86400, "prod_onsite_x_hourly": 6000, "prod_onsite_y_daily": 1}
    )
    latest, oldest = checks
    assert (latest.kind, latest.snapshot, latest.age, latest.state) == ("latest", "prod_onsite_x_hourly", 6000, WARNING)
    assert (oldest.kind, oldest.state) == ("oldest", CRITICAL)


def test_no_matching_snapshot_is_critical_with_unknown_perfdata() -> None:
    checks = checks_for({"other": 1})
    status, text = render(checks, [])
    assert status == CRITICAL and text.startswith("ZFERRY CRITICAL - ")
    assert "'dst/ds:prod_onsite_*_hourly:latest'=U;5400;7200;0;" in text
    assert "no snapshot prod_onsite_*_hourly" in text


def test_status_line_perfdata_and_exit_codes() -> None:
    fresh = checks_for({"prod_onsite_a_hourly": 60})
    status, text = render(fresh, [])
    assert status == OK
    line = text.splitlines()[0]
    assert line.startswith("ZFERRY OK - 0 critical, 0 warning, 2 ok of 2 checks | ")
    assert line.endswith(
        "'dst/ds:prod_onsite_*_hourly:latest'=60s;5400;7200;0; 'dst/ds:prod_onsite_*_hourly:oldest'=60s;;259200;0;"
    )
    assert render(checks_for({"prod_onsite_a_hourly": 6000}), [])[0] == WARNING
    assert render(checks_for({"prod_onsite_a_hourly": 8000}), [])[0] == CRITICAL
    status, text = render(fresh, ["dst/gone: dataset dst/gone does not exist"])
    assert status == UNKNOWN and text.startswith("ZFERRY UNKNOWN - 1 unknown, ")
    assert render([], [])[0] == UNKNOWN  # nothing checked is no proof of health


def test_dont_warn_and_dont_crit_report_without_alerting() -> None:
    warning = checks_for({"prod_onsite_a_hourly": 6000})
    status, text = render(warning, [], dont_warn=True)
    assert status == OK and "1 warning" in text and "do not alert" in text
    critical = checks_for({"prod_onsite_a_hourly": 8000})
    assert render(critical, [], dont_crit=True)[0] == OK
    assert render(critical, [], dont_warn=True)[0] == CRITICAL


def test_perf_labels_are_quoted() -> None:
    (check, _) = checks_for({"prod_onsite_a_hourly": 1})
    assert perf_label(check) == "'dst/ds:prod_onsite_*_hourly:latest'"
    odd = check.__class__("it's=x", check.key, "latest", None, None, check.limits, OK)
    assert perf_label(odd) == "'it''s_x:prod_onsite_*_hourly:latest'"


def test_every_error_in_monitor_mode_exits_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--monitor-snapshots", "{'prod': ", "tank/a", "dummy"]) == UNKNOWN
    assert capsys.readouterr().out.startswith("ZFERRY UNKNOWN - --monitor-snapshots: cannot read the plan")
    assert main(["--monitor-snapshots", PLAN, "--no-such-option", "tank/a", "dummy"]) == UNKNOWN
    assert main(["--monitor-snapshots", PLAN, "--create-src-snapshots", "tank/a", "dummy"]) == UNKNOWN
    assert "only reads" in capsys.readouterr().out
    assert main(["--monitor-snapshots-dont-warn", "tank/a", "backup/a"]) == UNKNOWN
