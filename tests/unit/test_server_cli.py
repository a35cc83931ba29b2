"""zferry-server's command line: every option has help with an example; bad values exit 2 before anything starts."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from zferry.server import cli


def test_every_option_has_help_with_an_example() -> None:
    actions = [a for a in cli.build_parser()._actions if a.option_strings and a.dest not in ("help", "version")]
    assert actions and all("e.g." in (a.help or "") for a in actions), [a.dest for a in actions]


@pytest.mark.parametrize("expiry", ["0", "-5", "soon", "inf", "nan"])
def test_task_expiry_range(expiry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--token-file", str(tmp_path / "t"), "--task-expiry", expiry])
    assert exit_info.value.code == 2 and "--task-expiry" in capsys.readouterr().err


def test_task_expiry_reaches_the_task_store(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("0123456789abcdef0123\n")
    token.chmod(0o600)
    parse = cli.build_parser().parse_args
    assert cli.build_settings(parse(["--token-file", str(token)])).task_ttl == 3600.0
    assert cli.build_settings(parse(["--token-file", str(token), "--task-expiry", "2.5"])).task_ttl == 2.5


@pytest.mark.parametrize("port", ["0", "65536", "http", "-1"])
def test_port_range(port: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--token-file", str(tmp_path / "t"), "--port", port])
    assert exit_info.value.code == 2 and "--port" in capsys.readouterr().err


def test_bad_settings_exit_2_before_anything_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = tmp_path / "token"
    token.write_text("0123456789abcdef0123\n")
    token.chmod(0o600)
    for argv, says in [
        (["--token-file", str(tmp_path / "missing")], "cannot read"),
        (["--token-file", str(token), "--zfs-host=-oProxyCommand=x"], "invalid host name"),
        (["--token-file", str(token), "--zfs-host", "bad user@nas"], "invalid user name"),
        (["--token-file", str(token), "--export-dir", str(tmp_path / "nope")], "not a folder"),
        (["--token-file", str(token), "--ssh-config-file", str(tmp_path)], "not a regular file"),
    ]:
        assert cli.main(argv) == 2
        assert says in capsys.readouterr().err
    settings = cli.build_settings(
        cli.build_parser().parse_args(["--token-file", str(token), "--zfs-host", "root@nas1", "--import-dir", "."])
    )
    assert (settings.zfs_host, settings.zfs_user, settings.token) == ("nas1", "root", "0123456789abcdef0123")
    assert isinstance(cli.build_parser(), argparse.ArgumentParser) and settings.import_dir == str(Path(".").resolve())
