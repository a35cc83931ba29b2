"""The audit trail: records, the before/after pair around real commands, refusal when the file
cannot be written, lock takeovers, `zferry audit tail`, and that nothing bypasses the audited path."""

from __future__ import annotations

import ast
import json
import os
import pathlib
import subprocess
from datetime import datetime

import pytest

from tests.unit.fixtures import history
from zferry import destructive, engine
from zferry.cli import audit_cli
from zferry.cli.main import main
from zferry.errors import CommandError
from zferry.exec.host import Host
from zferry.exec.runner import Runner
from zferry.lock import DestinationLocks, lock_key
from zferry.model import Endpoint, Version
from zferry.observe import audit
from zferry.observe.audit import AuditLog, AuditUnavailable, Intent, Origin
from zferry.plan import guard
from zferry.replicate import ReplicationConfig

ORIGIN = Origin("backup1", "root", 4242, "job-1234abcd")
INTENT = Intent(
    audit.DESTROY, "local", ("dst/x@a", "dst/x@b"), "--delete-dst-snapshots", ("zfs", "destroy", "dst/x@a,b")
)
SRC = pathlib.Path(__file__).resolve().parents[2] / "src" / "zferry"


def read(path: pathlib.Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_record_has_every_field_in_order() -> None:
    fields = audit.record(ORIGIN, INTENT, audit.STARTED, "abc", 1_765_000_000.25)
    assert list(fields) == [
        *("time", "host", "user", "pid", "job", "action", "target_host", "target", "reason", "argv", "result", "id")
    ]
    assert fields["time"] == "2025-12-06T05:46:40.250Z"
    assert datetime.fromisoformat(str(fields["time"]).replace("Z", "+00:00")).timestamp() == 1_765_000_000.25
    assert fields["argv"] == ["zfs", "destroy", "dst/x@a,b"] and fields["target"] == ["dst/x@a", "dst/x@b"]
    failed = audit.record(ORIGIN, INTENT, audit.FAILED, "abc", 0, {"exit_status": 1, "error": "busy"})
    assert failed["result"] == "failed" and failed["exit_status"] == 1 and failed["error"] == "busy"


def test_records_survive_a_json_round_trip_as_one_ascii_line() -> None:
    odd = Intent(audit.DESTROY_TREE, "u@h", ("pool/dätä\nx",), "why", ("zfs", "destroy", "-r", "pool/dätä\nx"))
    fields = audit.record(ORIGIN, odd, audit.OK, "id1", 0)
    line = audit.encode(fields)
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and line.isascii()
    assert audit.decode(line.decode()) == fields
    assert audit.decode("not json") is None and audit.decode("[1, 2]") is None


def test_started_and_outcome_records_surround_a_real_command(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "logs" / "audit.jsonl"
    runner = Runner(audit=AuditLog(str(path), ORIGIN))
    marker = tmp_path / "ran"
    destructive.run(runner, Host(), ["touch", str(marker)], audit.PROPERTY, ["dst/x"], "a test")
    with pytest.raises(CommandError):
        destructive.run(runner, Host(), ["sh", "-c", "echo 'cannot: busy' >&2; echo more >&2; exit 3"], "x", [], "")
    assert marker.exists() and oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    first, second, third, fourth = read(path)
    assert (first["result"], second["result"], first["id"]) == ("started", "ok", second["id"])
    assert first["argv"] == ["touch", str(marker)] and first["action"] == "property" and "seconds" in second
    assert (third["result"], fourth["result"], third["id"]) == ("started", "failed", fourth["id"])
    assert fourth["exit_status"] == 3 and fourth["error"] == "cannot: busy" and third["id"] != first["id"]


@pytest.mark.parametrize("kind", ["directory", "missing folder in /proc"])
def test_an_unwritable_audit_log_refuses_to_run_anything(tmp_path: pathlib.Path, kind: str) -> None:
    path = str(tmp_path) if kind == "directory" else "/proc/self/no/audit.jsonl"
    trail = AuditLog(path, ORIGIN)
    runner = Runner(audit=trail)
    marker = tmp_path / "ran"
    for _ in range(2):  # the second attempt is refused as well
        with pytest.raises(AuditUnavailable) as refused:
            destructive.run(runner, Host(), ["touch", str(marker)], audit.DESTROY, ["d"], "")
        assert f"cannot write the audit log {path!r}" in str(refused.value) and "--audit-log" in str(refused.value)
        assert not marker.exists()
    assert trail.error is not None
    assert engine.JobReport("j", 0, audit_error=trail.error).exit_code == 1
    assert engine.JobReport("j", 0).exit_code == 0


def test_a_refused_destruction_is_recorded_once_and_runs_nothing(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.jsonl"
    runner = Runner(audit=AuditLog(str(path), ORIGIN))
    doomed = tuple(history("a b", "dst/x"))
    protected = guard.Destruction(
        guard.Action.DESTROY_VERSIONS, "dst/x", "--delete-dst-snapshots", guard.Facts(asked=True, selected=True,
        on_source=True), versions=doomed,
    )  # fmt: skip
    decision = destructive.check(runner, Host(), protected)
    assert not decision.allowed
    (only,) = read(path)
    assert only["result"] == "refused" and only["target"] == ["dst/x@a", "dst/x@b"] and "source" in str(only["error"])


def test_intents_name_what_goes() -> None:
    host = Host("b", "u")
    versions = (*history("a b", "d"), Version("d", "bm", 9, 9, 0, is_bookmark=True))
    facts = guard.Facts(asked=True, selected=True)
    destroy = guard.decide(guard.Destruction(guard.Action.DESTROY_VERSIONS, "d", "why", facts, versions=versions))
    intents = [destructive.intent_of(destroy.destruction, host, argv) for argv in destroy.commands()]
    assert [i.target for i in intents] == [("d@a", "d@b"), ("d#bm",)]
    assert intents[0].target_host == "u@b" and intents[0].argv == ("zfs", "destroy", "d@a,b")
    rollback = guard.Destruction(
        guard.Action.ROLLBACK, "d", "r", facts, versions=(versions[1],), rollback_to=versions[0]
    )
    assert destructive.intent_of(rollback, host).target == ("d@a", "d@b")
    tree = guard.Destruction(guard.Action.DESTROY_TREE, "d", "t", facts, datasets=("d", "d/c"))
    assert destructive.intent_of(tree, host).action == "destroy-tree"
    assert destructive.intent_of(tree, host).target == ("d", "d/c")


def test_a_dry_run_records_nothing(tmp_path: pathlib.Path) -> None:
    pair = (Endpoint("tank/a"), Endpoint("backup/a"))
    settings = engine.ExecutionSettings(audit_log=str(tmp_path / "audit.jsonl"))
    dry = engine.JobConfig((pair,), ReplicationConfig(dryrun="send"), execution=settings)
    assert engine.make_runner(dry).audit is None
    assert engine.make_runner(engine.JobConfig((pair,), execution=settings)).audit is not None
    assert engine.make_runner(engine.JobConfig((pair,))).audit is None  # the Python API opts in


def test_a_lock_whose_holder_is_gone_is_taken_over_and_recorded(tmp_path: pathlib.Path) -> None:
    locks, path = tmp_path / "locks", tmp_path / "audit.jsonl"
    locks.mkdir(mode=0o700)
    gone = subprocess.Popen(["true"])
    gone.wait()
    (locks / lock_key(None, "backup/a")).write_text(f"pid {gone.pid}\n")
    trail = AuditLog(str(path), ORIGIN)
    seen: list[int] = []

    def takeover(file: str, where: str, pid: int) -> None:
        seen.append(pid)
        destructive.record_lock_takeover(trail, file, where, pid)

    with DestinationLocks([(None, "backup/a")], str(locks), on_takeover=takeover):
        assert (locks / lock_key(None, "backup/a")).read_text() == f"pid {os.getpid()}\n"
    with DestinationLocks([(None, "backup/a")], str(locks), on_takeover=takeover):
        pass  # a clean end names no holder: no takeover the next time
    assert seen == [gone.pid]
    started, ok = read(path)
    assert started["action"] == "lock-takeover" and started["target"] == ["backup/a"] and ok["result"] == "ok"
    assert f"pid {gone.pid}" in str(started["reason"]) and started["argv"] == []


def test_audit_tail_prints_the_latest_records(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    lines = [audit.encode(audit.record(ORIGIN, INTENT, r, str(i), 0)) for i, r in enumerate(["started", "ok"] * 3)]
    path.write_bytes(b"".join(lines) + b'{"partial": ')  # a record still being written is not shown
    assert main(["audit", "tail", "-n", "2", "--audit-log", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "1970-01-01T00:00:00.000Z  job-1234abcd  destroy  dst/x@a dst/x@b  started  [--delete-dst-snapshots]",
        "1970-01-01T00:00:00.000Z  job-1234abcd  destroy  dst/x@a dst/x@b  ok  [--delete-dst-snapshots]",
    ]
    assert main(["audit", "tail", "--json", "-n", "1", "--audit-log", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "5"
    assert audit_cli.last_lines(str(path), 100, block=7)[0] == [line.decode().rstrip("\n") for line in lines]
    assert main(["audit", "tail", "--audit-log", str(tmp_path / "none")]) == 1
    with pytest.raises(SystemExit):
        main(["audit", "tail", "-n", "-1"])


def test_follow_sees_appended_and_rotated_files(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"a": 1}\n')
    follower = audit_cli.Follower(str(path), path.stat().st_size)
    assert follower.poll() == []
    with path.open("a") as handle:
        handle.write('{"b": 2}\n{"c":')
    assert follower.poll() == ['{"b": 2}']
    with path.open("a") as handle:
        handle.write(" 3}\n")
    assert follower.poll() == ['{"c": 3}']
    path.unlink()
    assert follower.poll() == []
    path.write_text('{"d": 4}\n')  # logrotate made a new file
    assert follower.poll() == ['{"d": 4}']


def test_audit_log_option(tmp_path: pathlib.Path) -> None:
    assert audit_cli.audit_path(None) == os.path.expanduser("~/zferry-logs/audit.jsonl")
    assert audit_cli.audit_path("~/a.jsonl") == os.path.expanduser("~/a.jsonl")
    assert audit_cli.audit_path(None, "/var/log/zferry") == "/var/log/zferry/audit.jsonl"
    assert os.path.isabs(audit_cli.audit_path("rel.jsonl"))
    assert main(["--audit-log", "", "tank/a", "backup/a"]) == 2


def _calls(tree: ast.AST) -> list[tuple[ast.Call, list[ast.AST]]]:
    """Every call with its ancestors (outermost first)."""
    found: list[tuple[ast.Call, list[ast.AST]]] = []

    def visit(node: ast.AST, parents: list[ast.AST]) -> None:
        if isinstance(node, ast.Call):
            found.append((node, parents))
        for child in ast.iter_child_nodes(node):
            visit(child, [*parents, node])

    visit(tree, [])
    return found


def _name(call: ast.Call) -> str:
    return ast.unparse(call.func)


def test_destructive_commands_run_only_through_the_audited_path() -> None:
    """Callers cannot skip the audit log: a guard decision is asked and executed only in destructive.py;
    `zfs receive -A`, `zfs set`/`inherit` run inside a destructive.* call; a forced receive goes
    through destructive.pipeline."""
    offenders = []
    for path in SRC.rglob("*.py"):
        where = path.relative_to(SRC).as_posix()
        if where in ("zfs.py", "plan/guard.py", "destructive.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call, parents in _calls(tree):
            name = _name(call)
            if name.endswith(".commands") or name == "guard.check":
                offenders.append(f"{where}:{call.lineno}: {name}")
            changes = name in ("zfs.receive_abort", "zfs.clear_placeholder") or name.startswith(
                ("zfs.set", "zfs.inherit")
            )
            if changes and not any(isinstance(p, ast.Call) and _name(p).startswith("destructive.") for p in parents):
                offenders.append(f"{where}:{call.lineno}: {name} outside destructive.*")
            if name == "zfs.receive" and any(k.arg == "force" for k in call.keywords):
                function = next(p for p in reversed(parents) if isinstance(p, ast.FunctionDef))
                if not any(_name(c) == "destructive.pipeline" for c, _ in _calls(function)):
                    offenders.append(f"{where}:{call.lineno}: a forced receive not run by destructive.pipeline")
    assert offenders == []
