"""The destroy guard: every combination of the protecting facts, per action kind; emptiness;
and that no module but the guard builds a destroy or rollback argv."""

from __future__ import annotations

import dataclasses
import itertools
import pathlib
import re
from typing import Optional

import pytest

from zferry.model import Dataset, Version
from zferry.plan import guard
from zferry.plan.guard import Action, Decision, Destruction, Facts

FLAGS = [f.name for f in dataclasses.fields(Facts) if f.type in ("bool", bool)]
SNAP = Version("dst/ds", "s1", 1, 10, 0)
OLD = Version("dst/ds", "s0", 2, 5, 0)


def expected_allowed(action: Action, f: Facts) -> bool:
    """The rules, stated independently of the implementation's order."""
    protected = f.on_source or f.latest_common or f.held
    orphan_blocked = f.source_lacks_dataset and not f.orphans_allowed
    data_blocked = f.holds_data and not f.data_allowed
    live_tree = action is Action.DESTROY_TREE and f.holds_data and not f.source_lacks_dataset
    return f.asked and f.selected and not (protected or orphan_blocked or data_blocked or live_tree)


def destruction(action: Action, facts: Facts) -> Destruction:
    return Destruction(action, "dst/ds", "--test", facts, versions=(OLD,), rollback_to=SNAP)


@pytest.mark.parametrize("action", list(Action))
def test_every_combination_of_facts(action: Action) -> None:
    assert len(FLAGS) == 9
    for values in itertools.product([False, True], repeat=len(FLAGS)):
        facts = Facts(**dict(zip(FLAGS, values)))
        decision = guard.decide(destruction(action, facts))
        assert decision.allowed == expected_allowed(action, facts), facts
        if decision.allowed:
            assert "REFUSED" not in decision.message()
        else:
            assert all(reason.strip() for reason in decision.refusals)
            assert "REFUSED" in decision.message()
            with pytest.raises(PermissionError):
                decision.commands()


def test_each_protecting_fact_alone_refuses_with_its_own_reason() -> None:
    allowed = Facts(asked=True, selected=True, data_allowed=True, orphans_allowed=True)
    reasons = {
        "on_source": "still exists on the source",
        "latest_common": "latest common snapshot",
        "held": "held by another",
    }
    for flag, text in reasons.items():
        decision = guard.decide(destruction(Action.DESTROY_VERSIONS, dataclasses.replace(allowed, **{flag: True})))
        assert not decision.allowed and any(text in r for r in decision.refusals)
    lacks = Facts(asked=True, selected=True, source_lacks_dataset=True)
    assert "--delete-dst-datasets" in guard.decide(destruction(Action.DESTROY_VERSIONS, lacks)).refusals[0]
    unasked = guard.decide(destruction(Action.ROLLBACK, Facts(selected=True)))
    assert unasked.refusals == ("--test does not apply",)


def test_allowed_decisions_build_the_commands_of_their_kind() -> None:
    ok = Facts(asked=True, selected=True, data_allowed=True, source_lacks_dataset=True, orphans_allowed=True)
    versions = guard.decide(destruction(Action.DESTROY_VERSIONS, ok))
    assert versions.commands() == [["zfs", "destroy", "dst/ds@s0"]]
    assert guard.decide(destruction(Action.DESTROY_TREE, ok)).commands() == [["zfs", "destroy", "-r", "dst/ds"]]
    rollback = guard.decide(destruction(Action.ROLLBACK, ok))
    assert rollback.commands() == [["zfs", "rollback", "-r", "dst/ds@s1"]]
    plain = Destruction(Action.ROLLBACK, "dst/ds", "--x", ok, rollback_to=SNAP)
    assert guard.decide(plain).commands() == [["zfs", "rollback", "dst/ds@s1"]]
    assert guard.decide(destruction(Action.FORCED_RECEIVE, ok)).commands() == []


def test_check_reports_every_decision_to_one_listener() -> None:
    seen: list[Decision] = []
    ok = Facts(asked=True, selected=True, data_allowed=True)
    guard.check(destruction(Action.DESTROY_VERSIONS, ok), seen.append)
    guard.check(destruction(Action.DESTROY_VERSIONS, Facts()), seen.append)
    assert [d.allowed for d in seen] == [True, False]


def test_decisions_are_logged_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="zferry")
    guard.check(destruction(Action.DESTROY_TREE, Facts()))
    assert caplog.records[0].levelname == "WARNING" and "REFUSED" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("used", "snapshots", "children", "placeholder", "empty"),
    [
        (0, False, False, False, True),
        (64 * 1024, False, False, False, True),
        (64 * 1024 + 1, False, False, False, False),  # no other size threshold: 64 KiB and a byte is data
        (None, False, False, False, False),  # unknown size counts as data
        (0, True, False, False, False),
        (0, False, True, False, False),
        (0, False, True, True, True),  # zferry's placeholder parent: its children are the replicas
        (0, True, True, True, False),  # a placeholder that received snapshots is not empty
        (1 << 20, False, False, True, False),  # nor one that received data
    ],
)
def test_empty_means_placeholder_or_no_snapshots_no_children_and_at_most_64k(
    used: Optional[int], snapshots: bool, children: bool, placeholder: bool, empty: bool
) -> None:
    dataset = Dataset("dst/ds", used_by_dataset=used, is_placeholder=placeholder)
    assert guard.is_empty(dataset, [SNAP] if snapshots else [], children) == empty


def test_only_the_guard_builds_destroy_and_rollback_commands() -> None:
    """Callers cannot skip the guard: the zfs argv for a destroy or rollback is built only in plan/guard.py."""
    src = pathlib.Path(__file__).resolve().parents[2] / "src" / "zferry"
    pattern = re.compile(r"zfs\.(destroy\w*|rollback)\(")
    offenders = [
        str(path.relative_to(src))
        for path in src.rglob("*.py")
        if path.name != "zfs.py" and path.relative_to(src).as_posix() != "plan/guard.py"
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    forced = [
        str(path.relative_to(src))
        for path in src.rglob("*.py")
        if re.search(r"force=True", path.read_text(encoding="utf-8"))
    ]
    assert forced == []


def test_placeholder_marker_counts_only_on_the_dataset_it_names() -> None:
    from zferry import zfs

    line = "\t".join(["p/a", "filesystem", "1", "24576", "-", "off", "24576", "p/a", "-", "-"])
    inherited = "\t".join(["p/a/b", "filesystem", "2", "24576", "-", "off", "garbage", "p/a", "-", "Lce"])
    parsed = zfs.parse_datasets(line + "\n" + inherited + "\n")
    assert parsed["p/a"].is_placeholder and parsed["p/a"].used_by_dataset == 24576
    assert not parsed["p/a/b"].is_placeholder and parsed["p/a/b"].used_by_dataset is None
    assert zfs.create_placeholder("p/a") == [
        "zfs",
        "create",
        "-o",
        "zferry:placeholder=p/a",
        "-o",
        "canmount=off",
        "p/a",
    ]
