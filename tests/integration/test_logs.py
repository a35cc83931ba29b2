"""Log files of real runs in the VM: a private folder, one file kept, `current`, JSON lines with the replication."""

from __future__ import annotations

import json

from tests.integration.vm import Vm, unique_name


def test_two_runs_keep_one_json_log_file(vm: Vm, roots: tuple[str, str]) -> None:
    src, dst = roots
    folder = f"/tmp/{unique_name('zferry-logs')}"
    vm.sh(f"zfs snapshot {src}@s1")
    options = ["--log-dir", folder, "--log-file-keep", "1", "--log-format", "json", "--job-name", "logs-test"]
    first = vm.zferry(*options, src, dst)
    vm.sh(f"zfs snapshot {src}@s2")
    second = vm.zferry(*options, src, dst)
    listing = vm.sh(f"""
        stat -c '%a %U' {folder}
        ls -A {folder}
        readlink {folder}/current
        cat {folder}/current
        rm -r {folder}
    """).splitlines()
    mode, files, current, lines = listing[0], listing[1:3], listing[3], listing[4:]
    assert mode == "700 root"
    assert sorted(files) == sorted(["current", current]) and current.endswith("_logs-test.log")
    records = [json.loads(line) for line in lines]  # every line is JSON
    assert all(r["job"] == "logs-test" and r["time"].endswith("Z") for r in records)
    messages = [r["message"] for r in records]
    assert any(m.startswith(f"{src}: send ") and "@s2" in m and m.endswith(dst) for m in messages), messages
    assert any(m.startswith("run: ") and "zfs" in m for m in messages)  # DEBUG goes to the file
    for result in (first, second):  # stderr too is JSON lines
        assert result.stderr.strip()
        assert all(json.loads(line)["job"] == "logs-test" for line in result.stderr.splitlines())
    assert list(vm.snapshot_guids(dst)) == ["@s1", "@s2"]
