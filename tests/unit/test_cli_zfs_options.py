"""--zfs-send-program-opts / --zfs-recv-program-opts: an allow-list per command, refusals say what to use."""

from __future__ import annotations

from pathlib import Path

import pytest

from zferry import validate
from zferry.cli.main import main
from zferry.errors import UsageError


@pytest.mark.parametrize(
    "words",
    [
        ["-w"],
        ["--raw"],
        ["-c", "--compressed"],
        ["-L", "--large-block"],
        ["-e", "--embed"],
        ["-p", "--props"],
        ["-b", "--backup"],
        ["-v", "--verbose"],
        ["-wc"],
        ["-wLce"],
        ["-P", "-D", "-V"],
    ],
)
def test_send_allows_the_flags_that_shape_the_stream(words: list[str]) -> None:
    assert validate.zfs_send_options(words) == tuple(words)


@pytest.mark.parametrize(
    ("words", "hint"),
    [
        (["-h"], "holds"),
        (["--holds"], "holds"),
        (["-wh"], "holds"),  # hidden in a combined flag
        (["-R"], "--recursive"),
        (["--replicate"], "--recursive"),
        (["-I"], "--no-stream"),
        (["-i"], "--no-stream"),
        (["-n"], "--dryrun"),
        (["--dryrun"], "--dryrun"),
        (["-t"], "resumes"),
        (["-S"], "resumes"),
        (["-X"], "--exclude-dataset"),
        (["-s"], "--recursive"),
        (["-d"], "redacted"),
        (["-F"], "allowed: "),
        (["--bogus"], "allowed: "),
        (["tank/a@s1"], "not an option"),
        (["--raw=yes"], "takes no value"),
    ],
)
def test_send_refuses_the_rest_naming_the_zferry_way(words: list[str], hint: str) -> None:
    with pytest.raises(UsageError, match="--zfs-send-program-opts") as error:
        validate.zfs_send_options(words)
    assert hint in str(error.value)


@pytest.mark.parametrize(
    "words",
    [
        ["-o", "compression=zstd"],
        ["-ocompression=zstd"],
        ["-x", "mountpoint"],
        ["-xmountpoint", "-x", "com.corp:owner"],
        ["-u", "-v", "-s", "-h"],
        ["-uvo", "atime=off"],
    ],
)
def test_receive_allows_properties_and_harmless_flags(words: list[str]) -> None:
    assert validate.zfs_recv_options(words) == tuple(words)


@pytest.mark.parametrize(
    ("words", "hint"),
    [
        (["-F"], "--force-rollback-to-latest-common-snapshot"),
        (["-uF"], "--force"),  # hidden in a combined flag
        (["-n"], "--dryrun=recv"),
        (["-A"], "aborts a stale partial receive itself"),
        (["-d"], "give the destination dataset explicitly"),
        (["-e"], "give the destination dataset explicitly"),
        (["-c"], "corrective"),
        (["-M"], "unmounted"),
        (["-o", "origin=tank/a@s"], "clone"),
        (["-o"], "needs a value"),
        (["-o", "compression"], "PROPERTY=VALUE"),
        (["-x", "a=b"], "property name"),
        (["-o", "Bad=1"], "not a ZFS property name"),
        (["--raw"], "allowed: -h, -o, -s, -u, -v, -x"),
        (["backup/a"], "not an option"),
    ],
)
def test_receive_refuses_the_rest_naming_the_zferry_way(words: list[str], hint: str) -> None:
    with pytest.raises(UsageError, match="--zfs-recv-program-opts") as error:
        validate.zfs_recv_options(words)
    assert hint in str(error.value)


@pytest.mark.parametrize(
    "option",
    [
        "--zfs-recv-program-opts=-F",
        "--zfs-recv-program-opts=-d",
        "--zfs-recv-program-opts=-e",
        "--zfs-recv-program-opts=-A",
        "--zfs-recv-program-opts=-n",
        "--zfs-send-program-opts=-h",
        "--zfs-send-program-opts=-R",
        "--zfs-send-program-opts=-I tank/a@s1",
    ],
)
def test_refused_options_exit_2_before_any_process(
    option: str, no_zfs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([option, "tank/a", "backup/a"]) == 2
    assert "is not allowed" in capsys.readouterr().err
    assert not no_zfs.exists()
