"""Reject bad input before any process starts: names, hosts, users, ports, extra zfs options.

Every check returns the value unchanged or raises `UsageError` naming the value, what is
wrong with it, and what a valid one looks like.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from zferry.errors import UsageError
from zferry.fencing import DR_PROPERTIES
from zferry.model import Endpoint
from zferry.plan.properties import check_property_names

MAX_NAME_LENGTH = 255  # ZFS_MAX_DATASET_NAME_LEN - 1
# ZFS allows letters, digits and `_ - : . ` and space in each name component. We accept
# exactly those; everything else (`;`, `$`, quotes, newlines, ...) could only be a mistake
# or an attack.
_COMPONENT = re.compile(r"[A-Za-z0-9_.:\- ]+")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_JOB = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


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


def job_name(name: str) -> str:
    """A job name: it names log files, lock keys and metric labels, so letters, digits, '_', '.', '-'."""
    if not _JOB.fullmatch(name):
        raise UsageError(
            f"invalid job name {name!r}: up to 64 letters, digits, '_', '.' and '-', starting with a letter or digit"
        )
    return name


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


# The options of `zfs send` / `zfs receive` a user may add (--zfs-send-program-opts,
# --zfs-recv-program-opts), and for the others the zferry option that does the job. zferry
# plans the snapshots, rollbacks, holds and resumes itself; passing them through would break
# its promises (e.g. `receive -F` would roll back without --force).
_SEND_LONG = {
    "raw": "w",
    "compressed": "c",
    "large-block": "L",
    "embed": "e",
    "props": "p",
    "backup": "b",
    "verbose": "v",
    "parsable": "P",
    "dedup": "D",
    "proctitle": "V",
    "holds": "h",
    "replicate": "R",
    "dryrun": "n",
    "resume": "t",
    "saved": "S",
    "exclude": "X",
    "skip-missing": "s",
    "redact": "d",
}
_SEND_ALLOWED = frozenset("wcLepbvPDV")
_SEND_REFUSED = {
    "h": "zferry manages holds on the snapshots it needs itself",
    "R": "zferry replicates a tree dataset by dataset: use -r/--recursive (and --include-dataset/--exclude-dataset)",
    "I": "zferry plans incremental sends itself: every snapshot in between (-I), or only the latest with --no-stream",
    "i": "zferry plans incremental sends itself: use --no-stream to send only the latest snapshot",
    "n": "use --dryrun (or --dryrun=recv to stream into 'zfs receive -n')",
    "t": "zferry resumes interrupted transfers itself (see --no-resume-recv)",
    "S": "zferry resumes interrupted transfers itself (see --no-resume-recv)",
    "X": "use --exclude-dataset or --exclude-dataset-regex with -r",
    "s": "it only works with -R; use -r/--recursive",
    "d": "redacted sends are not supported",
}
_RECV_ALLOWED = frozenset("oxuvsh")
_RECV_REFUSED = {
    "F": "zferry rolls back or overwrites the destination only when asked: use --force-rollback-to-latest-snapshot, "
    "--force-rollback-to-latest-common-snapshot or --force",
    "n": "use --dryrun=recv",
    "A": "zferry aborts a stale partial receive itself",
    "d": "give the destination dataset explicitly (zferry SRC POOL/PATH/NAME)",
    "e": "give the destination dataset explicitly (zferry SRC POOL/PATH/NAME)",
    "c": "corrective (healing) receives are not supported",
    "M": "zferry receives unmounted (-u); it never needs to unmount a destination",
}
_RECV_VALUE = frozenset("ox")


def zfs_send_options(words: Sequence[str], option: str = "--zfs-send-program-opts") -> tuple[str, ...]:
    """Extra `zfs send` options: only flags that change the stream's form (-w, -c, -L, -e, -p, -b, -v, ...)."""
    return _zfs_options(words, option, _SEND_ALLOWED, _SEND_REFUSED, frozenset(), _SEND_LONG)


def zfs_recv_options(words: Sequence[str], option: str = "--zfs-recv-program-opts") -> tuple[str, ...]:
    """Extra `zfs receive` options: -o PROP=VALUE, -x PROP, -u, -v, -s, -h."""
    return _zfs_options(words, option, _RECV_ALLOWED, _RECV_REFUSED, _RECV_VALUE, {})


def _zfs_options(
    words: Sequence[str],
    option: str,
    allowed: frozenset[str],
    refused: Mapping[str, str],
    with_value: frozenset[str],
    long_names: Mapping[str, str],
) -> tuple[str, ...]:
    """Check option words the way getopt reads them: -abc is -a -b -c; -oVALUE or -o VALUE."""
    known = "".join(sorted(allowed))

    def check(letter: str, shown: str) -> None:
        if letter in refused:
            raise UsageError(f"{option}: {shown} is not allowed: {refused[letter]}")
        if letter not in allowed:
            raise UsageError(
                f"{option}: unknown or unsupported option {shown}; allowed: {_describe(known, long_names)}"
            )

    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word.startswith("--"):
            name = word[2:].split("=", 1)[0]
            letter = long_names.get(name, "")
            check(letter or "?", word)
            if "=" in word:
                raise UsageError(f"{option}: {word!r}: --{name} takes no value")
            continue
        if not word.startswith("-") or word == "-":
            raise UsageError(f"{option}: {word!r} is not an option; zferry gives the snapshot and dataset names itself")
        for position, letter in enumerate(word[1:], 1):
            check(letter, f"-{letter}")
            if letter in with_value:
                value = word[position + 1 :]
                if not value:
                    if index == len(words):
                        raise UsageError(f"{option}: -{letter} needs a value")
                    value = words[index]
                    index += 1
                _check_property_value(letter, value, option)
                break
    return tuple(words)


def _check_property_value(letter: str, value: str, option: str) -> None:
    name, equals, setting = value.partition("=")
    if letter == "o" and not (equals and setting):
        raise UsageError(f"{option}: -o needs PROPERTY=VALUE, got {value!r}")
    if letter == "x" and equals:
        raise UsageError(f"{option}: -x needs a property name, got {value!r}")
    check_property_names([name], option)
    if name in DR_PROPERTIES:
        reason = "a receive never sets or carries the DR state properties (zferry excludes them)"
        raise UsageError(f"{option}: -{letter} {name}: {reason}")
    if letter == "o" and name == "origin":
        raise UsageError(f"{option}: -o origin=... (receiving as a clone) is not supported")


def _describe(letters: str, long_names: Mapping[str, str]) -> str:
    longs = {letter: name for name, letter in long_names.items()}
    return ", ".join(f"-{c}/--{longs[c]}" if c in longs else f"-{c}" for c in letters)
