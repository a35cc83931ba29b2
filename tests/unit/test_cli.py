"""The command line without ZFS: validation, argument files, the lock, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from zferry import validate
from zferry.cli.main import expand_argument_files, main, parse_pairs, program_options
from zferry.errors import UsageError


@pytest.mark.parametrize(
    "bad",
    [
        "tank/data; rm -rf /",
        "tank/$(reboot)",
        "tank/`id`",
        "tank/a\nb",
        "tank/a|b",
        "tank//a",
        "tank/-x",
        "tank/a@snap",
        "tank/..",
        "bad host:tank/a",
        "-oProxyCommand=x:tank/a",
        "us er@host:tank/a",
        ":tank",
    ],
)
def test_bad_names_exit_2_and_run_nothing(bad: str, no_zfs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--", bad, "backup/x"]) == 2
    assert "invalid" in capsys.readouterr().err
    assert not no_zfs.exists()


def test_injection_example_from_the_spec(no_zfs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tank/data; rm -rf /", "dst/x"]) == 2
    err = capsys.readouterr().err
    assert "invalid dataset name 'tank/data; rm -rf /'" in err and "';'" in err
    assert not no_zfs.exists()


def test_bad_regex_and_option_values_are_usage_errors(no_zfs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--include-snapshot-regex", "(", "a/b", "c/d"]) == 2
    assert "--include-snapshot-regex" in capsys.readouterr().err
    assert main(["--zfs-send-program-opts", "--raw; reboot", "a/b", "c/d"]) == 2
    assert main(["--exclude-dataset-property", "no colon", "a/b", "c/d"]) == 2
    assert not no_zfs.exists()


def test_endpoints_parse_user_host_and_colons_in_dataset_names() -> None:
    e = validate.endpoint("backup@nas.example.org:tank/data")
    assert (e.user, e.host, e.dataset) == ("backup", "nas.example.org", "tank/data")
    assert validate.endpoint("tank/a:b").host is None  # a ':' after the first '/' is part of the name
    assert validate.endpoint("tank/with space").dataset == "tank/with space"


def test_pairs_must_be_even_and_not_overlap() -> None:
    with pytest.raises(UsageError, match="pairs"):
        parse_pairs(["a/b"])
    with pytest.raises(UsageError, match="overlap"):
        parse_pairs(["tank/a", "tank/a/copy"])
    assert len(parse_pairs(["tank/a", "backup/a", "h:tank/a", "tank/a"])) == 2


def test_argument_file(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("src1\tdst1\n# comment\n\nsrc2\tdst2\n")
    assert expand_argument_files(["-r", f"+{pairs}"]) == ["-r", "src1", "dst1", "src2", "dst2"]
    pairs.write_text("only-one-column\n")
    with pytest.raises(UsageError, match="SRC<TAB>DST"):
        expand_argument_files([f"+{pairs}"])
    with pytest.raises(UsageError, match="cannot read"):
        expand_argument_files([f"+{tmp_path}/missing"])


def test_program_options_split_and_refuse_shell_words() -> None:
    assert program_options("--raw -o compression=zstd", "x") == ("--raw", "-o", "compression=zstd")
    with pytest.raises(UsageError):
        program_options("-o x=$(id)", "x")


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "--force-rollback-to-latest-common-snapshot" in out


def test_exit_status_2_for_bad_usage_and_1_for_an_error(no_zfs: Path, tmp_path: Path) -> None:
    """The exit codes of DESIGN: 0 ok, 1 error, 2 usage, 75 locked (test_lock), 130/143 signals (test_runner)."""
    from zferry.errors import EXIT_ERROR, EXIT_LOCKED, EXIT_USAGE

    assert (EXIT_ERROR, EXIT_USAGE, EXIT_LOCKED) == (1, 2, 75)
    assert main(["--lock-dir", str(tmp_path / "l"), "tank/a;id", "backup/a"]) == 2
    assert main(["--lock-dir", str(tmp_path / "l"), "--stall-timeout", "-1", "tank/a", "backup/a"]) == 2
    assert not no_zfs.exists()
    assert main(["--lock-dir", str(tmp_path / "l"), "tank/a", "backup/a"]) == 1  # our fake zfs fails
