"""The test bed's own pure helpers (no VM)."""

from __future__ import annotations

import pytest

from tests.integration.vm import parse_zfs_version


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("zfs-2.1.11-1+deb12u1\nzfs-kmod-2.1.11-1+deb12u1\n", (2, 1, 11)),
        ("zfs-2.3.2-2~bpo12+1\nzfs-kmod-2.3.2-2~bpo12+1\n", (2, 3, 2)),
    ],
)
def test_parse_zfs_version(text: str, version: tuple[int, int, int]) -> None:
    assert parse_zfs_version(text) == version
    assert parse_zfs_version(text)[:2] >= (2, 1)


def test_parse_zfs_version_refuses_other_text() -> None:
    with pytest.raises(AssertionError, match="cannot read the OpenZFS version"):
        parse_zfs_version("zfs: command not found")
