"""Log files (names, retention, `current`), JSON lines, syslog and secret masking (observe/logs, observe/redact)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.unit.test_cli_ranges import refused
from zferry import engine
from zferry.cli.main import main, parse_arguments
from zferry.errors import UsageError
from zferry.observe import logs
from zferry.observe.logs import LogSettings, SyslogSettings
from zferry.observe.redact import redact

PAIR = ["tank/a", "backup/a"]
STARTED = datetime(2026, 12, 7, 10, 41, 3, 500000, timezone.utc)
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger of its own, its file and syslog handlers closed afterwards."""
    one = logging.getLogger(f"zferry-test-{uuid.uuid4().hex[:8]}")
    yield one
    logs.close_files(one)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path: a unix socket path must fit in 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="zfl", dir="/tmp"))
    yield path
    shutil.rmtree(path)


# --- names and retention -------------------------------------------------------------------------


def test_file_names_carry_utc_time_and_job() -> None:
    assert logs.log_file_name(STARTED, "db-to-nas") == "2026-12-07T10-41-03Z_db-to-nas.log"
    assert logs.log_file_name(STARTED, "db-to-nas", 3) == "2026-12-07T10-41-03Z.3_db-to-nas.log"
    plus_two = datetime.fromisoformat("2026-12-07T12:41:03+02:00")
    assert logs.log_file_name(plus_two, "j") == "2026-12-07T10-41-03Z_j.log"


def test_retention_keeps_the_latest_n_of_this_job_only() -> None:
    names = [
        "2026-12-05T00-00-00Z_db.log",
        "2026-12-06T00-00-00Z_db.log",
        "2026-12-06T00-00-00Z.2_db.log",  # a second run in the same second: newer than the first
        "2026-12-07T00-00-00Z_db.log",  # this run's
        "2026-12-01T00-00-00Z_db.2.log",  # job "db.2", not "db"
        "2026-12-01T00-00-00Z_db-x.log",  # job "db-x"
        "2026-12-01T00-00-00Z_db.log.bak",  # not ours
        "2026-12-01_db.log",  # not ours
        "current",
        "notes.txt",
    ]
    newest = "2026-12-07T00-00-00Z_db.log"
    assert logs.files_to_delete(names, "db", 2, newest) == [
        "2026-12-05T00-00-00Z_db.log",
        "2026-12-06T00-00-00Z_db.log",
    ]
    assert logs.files_to_delete(names, "db", 1, newest) == [
        "2026-12-05T00-00-00Z_db.log",
        "2026-12-06T00-00-00Z_db.log",
        "2026-12-06T00-00-00Z.2_db.log",
    ]
    assert logs.files_to_delete(names, "db", 100, newest) == []
    # this run's file stays even when the clock went back and older-named files exist
    assert newest not in logs.files_to_delete([*names, "2027-01-01T00-00-00Z_db.log"], "db", 1, newest)


def test_retention_never_picks_another_jobs_file() -> None:
    names = ["2026-12-01T00-00-00Z_db.2.log", "2026-12-02T00-00-00Z_db.2.log", "2026-12-03T00-00-00Z_db.log"]
    assert logs.files_to_delete(names, "db.2", 1, "2026-12-02T00-00-00Z_db.2.log") == ["2026-12-01T00-00-00Z_db.2.log"]
    assert logs.files_to_delete(names, "db", 1, "new") == ["2026-12-03T00-00-00Z_db.log"]


def test_a_second_run_in_the_same_second_gets_its_own_file(tmp_path: Path) -> None:
    first, stream1 = logs.open_log_file(str(tmp_path), "j", STARTED)
    second, stream2 = logs.open_log_file(str(tmp_path), "j", STARTED)
    stream1.close()
    stream2.close()
    assert (first, second) == ("2026-12-07T10-41-03Z_j.log", "2026-12-07T10-41-03Z.2_j.log")
    assert stat.S_IMODE(os.stat(tmp_path / first).st_mode) == 0o600


def test_current_is_replaced_by_a_symlink_to_the_newest(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("")
    (tmp_path / "b.log").write_text("")
    logs.point_current(str(tmp_path), "a.log")
    logs.point_current(str(tmp_path), "b.log")
    assert os.readlink(tmp_path / "current") == "b.log"  # relative: the folder may move
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.log", "b.log", "current"]  # no temporary left


# --- the file handler through `install` -----------------------------------------------------------


def test_install_creates_a_private_folder_one_file_and_current(tmp_path: Path, logger: logging.Logger) -> None:
    folder = tmp_path / "logs"
    for _ in range(3):
        logs.install(logger, logging.INFO, LogSettings(str(folder), keep=2), "job1")
        logger.debug("every command goes to the file")
    logs.close_files(logger)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = sorted(p.name for p in folder.iterdir() if p.name != "current")
    assert len(files) == 2 and all(re.fullmatch(r"[0-9T:Z.-]+_job1\.log", n) for n in files)
    current = os.readlink(folder / "current")
    assert current == max(files, key=lambda n: (n.split("_")[0].split(".")[0], n))
    text = (folder / current).read_text()
    assert re.fullmatch(rf"{ISO_MS.pattern} DEBUG every command goes to the file\n", text)


def test_a_folder_others_may_write_is_refused_when_given_and_skipped_by_default(
    tmp_path: Path, logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UsageError, match="writable by group or others"):
        logs.install(logger, logging.INFO, LogSettings(str(shared), explicit_dir=True), "j")
    logs.install(logger, logging.INFO, LogSettings(str(shared)), "j")  # the default folder: a warning
    logger.info("the run goes on")
    assert list(shared.iterdir()) == []
    err = capsys.readouterr().err
    assert "no log file" in err and "--no-log-file" in err and "the run goes on" in err


# --- JSON lines -----------------------------------------------------------------------------------


def test_json_lines_on_stderr_and_in_the_file(
    tmp_path: Path, logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.install(logger, logging.INFO, LogSettings(str(tmp_path), format="json"), "nightly")
    logger.info("%s: send %s", "tank/a", "@s1", extra={"dataset": "tank/a", "bytes": 42})
    logger.debug("run: zfs list")
    try:
        raise RuntimeError("password=hunter2")
    except RuntimeError:
        logger.exception("it broke")
    logs.close_files(logger)
    lines = (tmp_path / "current").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["message"] for r in records] == ["tank/a: send @s1", "run: zfs list", "it broke"]
    for record in records:
        assert {"time", "level", "logger", "job", "pid", "message"} <= set(record)
        assert ISO_MS.fullmatch(record["time"]) and record["job"] == "nightly" and record["pid"] == os.getpid()
        assert record["logger"] == logger.name
    assert (records[0]["level"], records[0]["dataset"], records[0]["bytes"]) == ("INFO", "tank/a", 42)
    assert "RuntimeError: password=***" in records[2]["exc"] and "hunter2" not in "".join(lines)
    console = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [r["message"] for r in console] == ["tank/a: send @s1", "it broke"]  # stderr: INFO and above


def test_text_console_keeps_its_short_format(logger: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    logs.install(logger, logging.INFO, LogSettings(), "j")
    logger.info("hello token=abc")
    assert re.fullmatch(r"\d\d:\d\d:\d\d hello token=\*\*\*\n", capsys.readouterr().err)


# --- secrets ---------------------------------------------------------------------------------------

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQUJD\n-----END OPENSSH PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"key: {KEY} done", "key: -----BEGIN OPENSSH PRIVATE KEY-----***-----END OPENSSH PRIVATE KEY----- done"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE (cut)", "-----BEGIN RSA PRIVATE KEY-----***"),
        ("sshpass -p hunter2 ssh -i /root/.ssh/id_rsa nas", "sshpass -p *** ssh -i /root/.ssh/id_rsa nas"),
        ("sshpass -phunter2 ssh nas", "sshpass -p*** ssh nas"),
        ("sshpass -v -p 'a b' ssh nas", "sshpass -v -p *** ssh nas"),
        ("password=hunter2 user=me", "password=*** user=me"),
        ("--passphrase 'x' PASSPHRASE=abc", "--passphrase 'x' PASSPHRASE=***"),
        ('{"db_password": "a b", "n": 1}', '{"db_password": "***", "n": 1}'),
        ("SSHPASS=hunter2 ssh nas", "SSHPASS=*** ssh nas"),
        ("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer ***"),
        ("authorization=Basic dXNlcjpwYXNz", "authorization=Basic ***"),
        ("curl -H 'X: Bearer abc123'", "curl -H 'X: Bearer ***'"),
        ("GET /metrics?token=abc123&x=1", "GET /metrics?token=***&x=1"),
        ("https://backup:s3cret@nas/path", "https://backup:***@nas/path"),
        ("api_key=AKIA123 access_key=zz", "api_key=*** access_key=***"),
    ],
)
def test_secrets_are_masked(text: str, masked: str) -> None:
    assert redact(text) == masked
    assert redact(masked) == masked  # idempotent: a record may pass several handlers


@pytest.mark.parametrize(
    "text",
    [
        "ssh -i /root/.ssh/id_ed25519 -o IdentityFile=/etc/zferry/key backup@nas",
        "zfs create -o keyformat=passphrase -o keylocation=file:///etc/zfs/tank.key tank/enc",
        "ssh -o PasswordAuthentication=no -o BatchMode=yes nas",
        "tank/secrets: up to date with backup/secrets",
        "zfs send -p -I tank/passwords@s1 tank/passwords@s2",
        "sshpass -e ssh nas zfs send -p tank@s1",
    ],
)
def test_paths_and_ordinary_words_stay(text: str) -> None:
    assert redact(text) == text


def test_no_handler_writes_a_secret(tmp_path: Path, logger: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    logs.install(logger, logging.DEBUG, LogSettings(str(tmp_path)), "j")
    logger.debug("run: sshpass -p %s ssh nas", "hunter2")
    logger.info("loaded %s", KEY, extra={"header": "Authorization: Bearer hunter2"})
    logs.install(logger, logging.DEBUG, LogSettings(str(tmp_path), format="json"), "j")
    logger.info("x", extra={"header": "Authorization: Bearer hunter2"})
    logs.close_files(logger)
    written = "".join(p.read_text() for p in tmp_path.iterdir() if p.name != "current") + capsys.readouterr().err
    assert "hunter2" not in written and "b3BlbnNzaC1rZXktdjEAAAAA" not in written
    assert written.count("***") >= 4


# --- syslog ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("/dev/log", "/dev/log"),
        ("./syslog.sock", "./syslog.sock"),
        ("loghost", ("loghost", 514)),
        ("loghost:1514", ("loghost", 1514)),
        ("10.0.0.1:514", ("10.0.0.1", 514)),
        ("[::1]:5140", ("::1", 5140)),
    ],
)
def test_syslog_addresses(text: str, address: object) -> None:
    assert logs.parse_syslog_address(text) == address


@pytest.mark.parametrize("text", ["loghost:0", "loghost:99999", "loghost:x", "log host", "a;b:514"])
def test_bad_syslog_addresses(text: str) -> None:
    with pytest.raises(UsageError):
        logs.parse_syslog_address(text)


def test_syslog_over_a_unix_socket(short_dir: Path, logger: logging.Logger) -> None:
    path = str(short_dir / "log")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        syslog = SyslogSettings(path, "local3", logs.LEVELS["verbose"])
        logs.install(logger, logging.WARNING, LogSettings(syslog=syslog), "db-to-nas")
        logger.debug("not sent")
        logger.log(logs.VERBOSE, "tank/a: up to date")
        logger.warning("password=hunter2")
        received = [server.recv(4096).decode(), server.recv(4096).decode()]
    local3 = 19
    pid = os.getpid()
    assert received == [
        f"<{local3 * 8 + 7}>zferry[{pid}]: db-to-nas: tank/a: up to date\x00",  # VERBOSE is syslog's debug
        f"<{local3 * 8 + 4}>zferry[{pid}]: db-to-nas: password=***\x00",
    ]


def test_syslog_over_udp(logger: logging.Logger) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        address = logs.parse_syslog_address(f"127.0.0.1:{server.getsockname()[1]}")
        logs.install(logger, logging.INFO, LogSettings(syslog=SyslogSettings(address, "daemon")), "j")
        logger.info("replicated")
        assert server.recv(4096).decode() == f"<{3 * 8 + 6}>zferry[{os.getpid()}]: j: replicated\x00"


def test_a_missing_syslog_socket_warns_once_and_the_run_goes_on(
    short_dir: Path, logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = LogSettings(str(short_dir / "logs"), syslog=SyslogSettings(str(short_dir / "none")))
    logs.install(logger, logging.INFO, settings, "j")
    logger.info("one")
    logger.info("two")
    logs.close_files(logger)
    err = capsys.readouterr().err
    assert err.count("cannot log to syslog") == 1 and "one" in err and "two" in err
    assert "cannot log to syslog" in (short_dir / "logs" / "current").read_text()


def test_syslog_going_away_mid_run_warns_once(
    short_dir: Path, logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(short_dir / "log")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    logs.install(logger, logging.INFO, LogSettings(syslog=SyslogSettings(path)), "j")
    logger.info("sent")
    server.close()
    os.unlink(path)
    for n in range(3):
        logger.info("after %d", n)
    err = capsys.readouterr().err
    assert err.count("cannot log to syslog") == 1 and "after 2" in err


# --- the command line -----------------------------------------------------------------------------


def test_log_syslog_takes_an_address_only_after_equals() -> None:
    args = parse_arguments(["--log-syslog", *PAIR])
    assert (args.log_syslog, args.root_dataset_pairs) == ("/dev/log", PAIR)
    args = parse_arguments([*PAIR, "--log-syslog=loghost:514", "--log-syslog-facility", "local0"])
    settings = logs.settings_from_args(args)
    assert settings.syslog == SyslogSettings(("loghost", 514), "local0", logging.INFO)


def test_log_dir_defaults_to_home_and_can_be_switched_off(tmp_path: Path) -> None:
    assert logs.resolve_log_dir(parse_arguments(PAIR)) == os.path.expanduser("~/zferry-logs")
    assert logs.default_log_dir() == os.path.expanduser("~/zferry-logs")
    assert logs.resolve_log_dir(parse_arguments(["--log-dir", str(tmp_path), *PAIR])) == str(tmp_path)
    assert logs.settings_from_args(parse_arguments(["--no-log-file", *PAIR])).log_dir is None


@pytest.mark.parametrize("argv", [["--log-file-keep", "0"], ["--log-file-keep", "-1"], ["--log-file-keep", "x"]])
def test_log_file_keep_is_at_least_one(argv: list[str], no_zfs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "argument --log-file-keep" in refused(argv, no_zfs, capsys)


def test_a_run_logs_its_command_and_its_error_to_the_file(no_zfs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    argv = ["--lock-dir", str(tmp_path / "l"), "--log-dir", str(folder), "--log-format", "json", *PAIR]
    assert main(argv) == 1  # our fake zfs fails
    records = [json.loads(line) for line in (folder / "current").read_text().splitlines()]
    assert records[0]["level"] == "DEBUG" and "--log-format json tank/a backup/a" in records[0]["message"]
    assert records[-1]["level"] == "ERROR" and "(exit status 1)" in records[-1]["message"]
    assert {r["job"] for r in records} == {"job-" + records[0]["job"][4:]} and len(records[0]["job"]) == 12


def test_bad_usage_writes_no_log_file(no_zfs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--log-dir", str(tmp_path / "logs"), "--job-name", "a/b", *PAIR]) == 2
    assert "invalid job name" in capsys.readouterr().err and not (tmp_path / "logs").exists()
    assert main(["--no-log-file", "--lock-dir", str(tmp_path / "l"), *PAIR]) == 1
    assert not Path(os.path.expanduser("~/zferry-logs")).exists()
    assert main(["--lock-dir", str(tmp_path / "l"), *PAIR]) == 1  # the default: ~/zferry-logs
    assert len(list(Path(os.path.expanduser("~/zferry-logs")).iterdir())) == 2  # a file and current


def test_a_crash_leaves_its_traceback_in_the_log_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug, password=hunter2")

    monkeypatch.setattr(engine, "run", bug)
    with pytest.raises(RuntimeError):
        main(["--lock-dir", str(tmp_path / "l"), "--log-dir", str(tmp_path / "logs"), *PAIR])
    text = (tmp_path / "logs" / "current").read_text()
    assert " CRITICAL crashed:\nTraceback" in text and "RuntimeError: a bug, password=***" in text
