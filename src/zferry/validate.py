"""Reject bad names before any process starts: datasets, snapshots, hosts, users, ports.

Every check returns the value unchanged or raises `UsageError` naming the value, what is
wrong with it, and what a valid one looks like.
"""

from __future__ import annotations

import re

from zferry.errors import UsageError
from zferry.model import Endpoint

MAX_NAME_LENGTH = 255  # ZFS_MAX_DATASET_NAME_LEN - 1
# ZFS allows letters, digits and `_ - : . ` and space in each name component. We accept
# exactly those; everything else (`;`, `$`, quotes, newlines, ...) could only be a mistake
# or an attack.
_COMPONENT = re.compile(r"[A-Za-z0-9_.:\- ]+")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def _check_component(component: str, whole: str, what: str) -> None:
    if not component:
        raise UsageError(f"invalid {what} {whole!r}: empty name component (doubled or trailing '/')")
    if component in (".", ".."):
        raise UsageError(f"invalid {what} {whole!r}: '{component}' is not a valid name component")
    if not _COMPONENT.fullmatch(component):
        bad = sorted({c for c in component if not _COMPONENT.fullmatch(c)})
        shown = " ".join(repr(c) for c in bad)
        raise UsageError(
            f"invalid {what} {whole!r}: character(s) {shown} not allowed; "
            "ZFS names use letters, digits and _ - : . and space"
        )
    if component.startswith("-"):
        raise UsageError(f"invalid {what} {whole!r}: a name component must not start with '-'")
    if component != component.strip():
        raise UsageError(f"invalid {what} {whole!r}: leading or trailing spaces in a name component")


def dataset_name(name: str) -> str:
    """A dataset path such as `tank/data/db` (no snapshot or bookmark part)."""
    if len(name) > MAX_NAME_LENGTH:
        raise UsageError(f"invalid dataset name {name[:60]!r}...: longer than {MAX_NAME_LENGTH} characters")
    if "@" in name or "#" in name:
        raise UsageError(
            f"invalid dataset name {name!r}: give the dataset, not a snapshot or bookmark "
            "(use --include-snapshot-regex to choose snapshots)"
        )
    for component in name.split("/"):
        _check_component(component, name, "dataset name")
    return name


def snapshot_name(name: str) -> str:
    """The part of a snapshot or bookmark name after `@` or `#`."""
    _check_component(name, name, "snapshot name")
    return name


def hostname(host: str) -> str:
    """A DNS name, IPv4 address, or bracketed IPv6 address. Never an ssh option."""
    if len(host) > 253 or not _HOST.fullmatch(host):
        raise UsageError(
            f"invalid host name {host!r}: use letters, digits, '.' and '-' (or [IPv6]); it must not start with '-'"
        )
    return host


def username(user: str) -> str:
    """A POSIX user name."""
    if len(user) > 64 or not _USER.fullmatch(user):
        raise UsageError(f"invalid user name {user!r}: use letters, digits, '_', '.' and '-'")
    return user


def port(value: int | str) -> int:
    """A TCP port number 1..65535."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"invalid port {value!r}: give a number from 1 to 65535") from None
    if not 1 <= number <= 65535:
        raise UsageError(f"invalid port {value!r}: give a number from 1 to 65535")
    return number


def endpoint(text: str) -> Endpoint:
    """Parse and check `[[user@]host:]dataset`.

    The text is remote when a `:` comes before the first `/` (a host name has no `/`,
    while a dataset name may contain `:` after its pool).
    """
    host = user = None
    dataset = text
    colon = text.find(":")
    slash = text.find("/")
    if colon >= 0 and (slash < 0 or colon < slash):
        host, dataset = text[:colon], text[colon + 1 :]
        if "@" in host:
            user, host = host.split("@", 1)
            username(user)
        if not host:
            raise UsageError(f"invalid endpoint {text!r}: empty host before ':'")
        hostname(host)
    if not dataset:
        raise UsageError(f"invalid endpoint {text!r}: no dataset given")
    return Endpoint(dataset_name(dataset), host, user)
