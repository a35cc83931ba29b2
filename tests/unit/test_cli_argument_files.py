"""`+FILE` (PRD FR-USA-005): dataset pairs, and one pattern per line for every regex option."""

from __future__ import annotations

from pathlib import Path

import pytest

from zferry.cli.lifecycle_options import STEPS, build_snapshot_filter
from zferry.cli.main import build_config, main, parse_arguments
from zferry.cli.options import build_parser
from zferry.errors import UsageError

PAIR = ["tank/a", "backup/a"]


def regex_options() -> list[str]:
    return [s for a in build_parser()._actions for s in a.option_strings if s.endswith("-regex")]


@pytest.fixture
def patterns(tmp_path: Path) -> Path:
    path = tmp_path / "patterns.txt"
    path.write_text("# dataset patterns\nfoo.*\n\n   bar   \r\n#baz\n")
    return path


@pytest.mark.parametrize("option", regex_options())
def test_every_regex_option_reads_one_pattern_per_line(option: str, patterns: Path) -> None:
    args = parse_arguments([option, f"+{patterns}", option, "lit", *PAIR])
    assert getattr(args, option[2:].replace("-", "_")) == ["foo.*", "bar", "lit"]
    assert args.root_dataset_pairs == PAIR


def test_snapshot_regex_files_keep_their_place_in_the_filter_order(patterns: Path) -> None:
    argv = ["--include-snapshot-regex", f"+{patterns}", "--new-snapshot-filter-group"]
    args = parse_arguments([*argv, "--exclude-snapshot-regex", "x", *PAIR])
    assert getattr(args, STEPS) == [
        ("include_snapshot_regex", "foo.*"),
        ("include_snapshot_regex", "bar"),
        ("new_snapshot_filter_group", []),
        ("exclude_snapshot_regex", "x"),
    ]
    groups = build_snapshot_filter(args).groups
    assert len(groups) == 2 and groups[0].names.accepts("foobar") and not groups[0].names.accepts("baz")


def test_dataset_regex_file_selects_datasets(tmp_path: Path) -> None:
    path = tmp_path / "excludes"
    path.write_text("tmp\n(.*/)?cache\n")
    config = build_config(parse_arguments(["--exclude-dataset-regex", f"+{path}", *PAIR]))
    tree = ["tank/a", "tank/a/tmp", "tank/a/x", "tank/a/x/cache", "tank/a/home"]
    assert config.datasets.select("tank/a", tree) == ["tank/a", "tank/a/home", "tank/a/x"]


def test_pairs_file_and_regex_file_together(tmp_path: Path, patterns: Path) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("tank/a\tbackup/a\ntank/b\tbackup/b\n")
    args = parse_arguments(["-r", "--exclude-dataset-regex", f"+{patterns}", f"+{pairs}"])
    assert args.root_dataset_pairs == ["tank/a", "backup/a", "tank/b", "backup/b"]
    assert args.exclude_dataset_regex == ["foo.*", "bar"]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "cannot read --include-dataset-regex file .*: No such file or directory"),
        (b"\xff\xfe", "it is not UTF-8 text"),
        (b"# only a comment\n\n", "holds no pattern"),
        (b"(\n", "--include-dataset-regex"),  # an invalid regex from a file is still named
    ],
)
def test_unreadable_or_empty_pattern_files_are_usage_errors(
    tmp_path: Path, content: bytes | None, error: str, no_zfs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "file"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError, match=error):
        build_config(parse_arguments(["--include-dataset-regex", f"+{path}", *PAIR]))
    assert main(["--include-dataset-regex", f"+{path}", *PAIR]) == 2
    assert not no_zfs.exists()


def test_a_directory_as_pattern_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read --exclude-snapshot-regex file"):
        parse_arguments(["--exclude-snapshot-regex", f"+{tmp_path}", *PAIR])
