"""ssh option hardening, endpoint and option validation, the child environment: no process runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zferry.cli.main import main
from zferry.errors import UsageError
from zferry.exec.ssh import SshConnections, SshSettings, SshSide, check_extra_options, check_file


def test_allowed_ssh_options_pass() -> None:
    assert check_extra_options("-o ConnectTimeout=5 -oServerAliveInterval=10 -4 -c aes128-ctr", "x") == (
        "-o",
        "ConnectTimeout=5",
        "-o",
        "ServerAliveInterval=10",
        "-4",
        "-c",
        "aes128-ctr",
    )


@pytest.mark.parametrize(
    "opts",
    [
        "-o ProxyCommand=nc evil 22",
        "-oProxyCommand=x",
        "-o LocalCommand=id",
        "-o PermitLocalCommand=yes",
        "-o RemoteCommand=id",
        "-o Include=/etc/passwd",
        "-F /tmp/x",
        "-L 8080:x:80",
        "-o ConnectTimeout=$(id)",
        "--",
        "-o",
        "somehost",
    ],
)
def test_dangerous_or_unknown_ssh_options_are_refused(opts: str) -> None:
    with pytest.raises(UsageError):
        check_extra_options(opts, "--ssh-dst-extra-opts")


def test_key_and_config_files_must_be_regular_files(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k")
    assert check_file(str(key), "--ssh-src-private-key") == str(key)
    with pytest.raises(UsageError, match="not a regular file"):
        check_file(str(tmp_path), "--ssh-src-private-key")
    with pytest.raises(UsageError, match="cannot use"):
        check_file(str(tmp_path / "missing"), "--ssh-src-private-key")


def test_hosts_share_one_control_socket_folder_that_close_removes() -> None:
    conns = SshConnections(SshSettings(control_persist_secs=30))
    host = conns.host(SshSide(port=2222, private_key="/k"), "backup.example.org", "zf")
    argv = host.ssh_argv()
    assert f"ControlPath={conns.control_dir}/m0" in argv and "ControlMaster=no" in argv
    assert "ServerAliveInterval=15" in argv and "ServerAliveCountMax=3" in argv  # keepalive on every ssh
    assert not any("ControlPersist" in word for word in argv)  # masters are our own children
    again = conns.host(SshSide(port=2222, private_key="/k"), "backup.example.org", "zf", ["sudo", "-n"])
    assert again.ssh_argv() == argv  # one master per destination
    assert argv[-4:] == ["-l", "zf", "--", "backup.example.org"] and argv[-6:-4] == ["-p", "2222"]
    assert os.path.isdir(conns.control_dir)
    conns.close()
    assert not os.path.exists(conns.control_dir)


@pytest.mark.parametrize(
    "argv",
    [
        ["--ssh-dst-extra-opts", "-o ProxyCommand=sh -c id", "a/b", "h:c/d"],
        ["--ssh-src-user", "root;id", "h:a/b", "c/d"],
        ["--ssh-src-host=-oProxyCommand=id", "h:a/b", "c/d"],
        ["--ssh-dst-port", "99999", "a/b", "h:c/d"],
        ["--ssh-cipher", "aes;id", "a/b", "h:c/d"],
        ["--ssh-program", "ssh -o x", "a/b", "h:c/d"],
        ["--sudo-program", "sudo;id", "a/b", "h:c/d"],
        ["--bwlimit", "fast", "a/b", "h:c/d"],
        ["--preserve-properties", "mount point", "a/b", "h:c/d"],
        ["--zfs-recv-o-targets", "sometimes", "a/b", "h:c/d"],
        ["--", "evil host:a/b", "c/d"],
        ["--", "a/b", "u$er@h:c/d"],
    ],
)
def test_malicious_values_rejected_before_ssh_runs(
    argv: list[str], no_zfs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.strip()
    assert not no_zfs.exists()


def test_envvar_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from zferry.cli.ssh_options import child_environment

    monkeypatch.setenv("LD_PRELOAD", "/evil.so")
    monkeypatch.setenv("ZF_KEEP", "1")
    env = child_environment(argparse.Namespace(include_envvar_regex=[], exclude_envvar_regex=["LD_.*"]))
    assert env is not None and "LD_PRELOAD" not in env and env["ZF_KEEP"] == "1"
    only = child_environment(argparse.Namespace(include_envvar_regex=["ZF_.*"], exclude_envvar_regex=[]))
    assert only is not None and set(only) == {"ZF_KEEP", "PATH"}
