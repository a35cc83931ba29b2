"""Snapshot and bookmark names at the edges, on real OpenZFS: the repeated hour when clocks go
back, and bookmark names that bookmarks of other snapshots already hold. zferry runs in the VM."""

from __future__ import annotations

import json
import re
import shlex
from datetime import datetime, timezone

from tests.integration.vm import GUEST_CHECKOUT, Vm


def names(vm: Vm, root: str, kind: str = "snapshot") -> list[str]:
    """Names (`@x`, `/child@x`, `#x`) under `root`, oldest first."""
    out = vm.sh(f"zfs list -H -t {kind} -o name -s createtxg -r {root}")
    return [line[len(root) :] for line in out.splitlines()]


def guids(vm: Vm, root: str, kind: str) -> dict[str, int]:
    out = vm.sh(f"zfs list -H -p -t {kind} -o name,guid -r {root}")
    return {name[len(root) :]: int(guid) for name, guid in (line.split("\t") for line in out.splitlines())}


def fake_clock_runs(vm: Vm, runs: list[tuple[datetime, list[str]]]) -> str:
    """zferry's main once per (time, args), in one python3 process in the VM that fakes the clock."""
    plan = json.dumps([[int(t.timestamp()), args] for t, args in runs])
    return vm.sh(
        f"cd {GUEST_CHECKOUT} && PYTHONPATH=src:. python3 tests/integration/fake_clock.py {shlex.quote(plan)} 2>&1"
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_hourly_snapshots_through_the_repeated_hour_in_vienna(vm: Vm, roots: tuple[str, str]) -> None:
    """Clocks go back at 03:00 CEST (01:00 UTC) on 2026-10-25: 02:00-03:00 happens twice. Runs every
    30 minutes take one hourly per real hour, the second 02:00 as `02:00:00dst`, and the daily at
    02:30 once, at its first occurrence. (Before: the run at the second 02:00 failed with 'dataset
    already exists'.)"""
    src, _ = roots
    plan = json.dumps({"prod": {"onsite": {"hourly": 36, "daily": 7}}})
    runs = [
        utc(2026, 10, 24, 23, 45),
        *(utc(2026, 10, 25, h, m) for h in (0, 1) for m in (0, 30)),
        utc(2026, 10, 25, 2),
    ]
    args = [
        *("--skip-replication", "--create-src-snapshots", "--create-src-snapshots-plan", plan),
        *("--create-src-snapshots-timezone", "Europe/Vienna", "--daily_hour", "2", "--daily_minute", "30"),
        *(src, "dummy"),
    ]
    output = fake_clock_runs(vm, [(t, args) for t in runs])
    assert re.findall(r"^run \d+ exit (\d+)$", output, re.M) == ["0"] * len(runs), output
    assert names(vm, src) == [
        "@prod_onsite_2026-10-25_01:45:00_daily",  # none yet: taken at once
        "@prod_onsite_2026-10-25_01:45:00_hourly",
        "@prod_onsite_2026-10-25_02:00:00_hourly",  # 00:00 UTC, CEST
        "@prod_onsite_2026-10-25_02:30:00_daily",  # the first 02:30 only
        "@prod_onsite_2026-10-25_02:00:00dst_hourly",  # 01:00 UTC, CET
        "@prod_onsite_2026-10-25_03:00:00_hourly",
    ]


def test_taken_bookmark_names_get_part_of_the_guid(vm: Vm, roots: tuple[str, str]) -> None:
    """A bookmark of another snapshot holding the name: the new bookmark gets 8 hex digits of its GUID
    at the end of the timestamp (before `_<period>`). When every name it could take is held: a
    warning, exit 0. (Before: no bookmark at all, and no word.)"""
    src, dst = roots
    hourly = "prod_onsite_2026-10-25_02:00:00_hourly"
    # bookmarks keep their names when snapshots are destroyed and made again: old #s2 and #<hourly>
    vm.sh(f"""
        zfs create {src}/a; zfs create {src}/b
        zfs snapshot -r {src}@s1
        zfs bookmark {src}/a@s1 {src}/a#s2; zfs bookmark {src}/a@s1 {src}/a#{hourly}
        zfs snapshot -r {src}@s2; zfs snapshot {src}/a@{hourly}
    """)
    b_guid = f"{guids(vm, f'{src}/b', 'snapshot')['@s2']:016x}"
    vm.sh(" ; ".join(f"zfs bookmark {src}/b@s1 {src}/b#{n}" for n in ("s2", f"s2-{b_guid[:8]}", f"s2-{b_guid}")))
    result = vm.zferry("-r", "--create-bookmarks=all", src, dst)
    snap_guids = guids(vm, f"{src}/a", "snapshot")
    a_bookmarks = guids(vm, f"{src}/a", "bookmark")
    s2, hourly_guid = (f"{snap_guids[f'@{n}']:016x}" for n in ("s2", hourly))
    assert a_bookmarks[f"#s2-{s2[:8]}"] == snap_guids["@s2"]
    assert a_bookmarks[f"#prod_onsite_2026-10-25_02:00:00-{hourly_guid[:8]}_hourly"] == snap_guids[f"@{hourly}"]
    assert a_bookmarks["#s2"] == a_bookmarks[f"#{hourly}"] == snap_guids["@s1"]  # the old ones, untouched
    assert f"{src}/b: cannot bookmark @s2" in result.output, result.output
    assert int(b_guid, 16) not in guids(vm, f"{src}/b", "bookmark").values()
    assert vm.snapshot_guids(dst) == vm.snapshot_guids(src)
