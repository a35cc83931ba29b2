"""ssh settings: validated options, one ControlMaster connection per host, cleanup on exit.

Users may pass extra ssh options, but only from an allow-list: options such as
ProxyCommand, LocalCommand or RemoteCommand run programs and are refused.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

from zferry import validate
from zferry.errors import UsageError
from zferry.exec.host import Host

log = logging.getLogger("zferry")

# `-o Key=value` keys a user may set; compared case-insensitively as ssh does.
ALLOWED_OPTIONS = frozenset(
    k.lower()
    for k in (
        "AddressFamily",
        "BatchMode",
        "BindAddress",
        "Ciphers",
        "Compression",
        "ConnectionAttempts",
        "ConnectTimeout",
        "GlobalKnownHostsFile",
        "HostKeyAlgorithms",
        "HostKeyAlias",
        "IdentitiesOnly",
        "IPQoS",
        "KexAlgorithms",
        "LogLevel",
        "MACs",
        "PubkeyAcceptedAlgorithms",
        "PubkeyAuthentication",
        "ServerAliveCountMax",
        "ServerAliveInterval",
        "StrictHostKeyChecking",
        "TCPKeepAlive",
        "UpdateHostKeys",
        "UserKnownHostsFile",
        "VerifyHostKeyDNS",
    )
)
_FLAGS = frozenset({"-4", "-6", "-C", "-q", "-v", "-T", "-x", "-a"})
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_.,:/@+=\-^*]+")


@dataclass(frozen=True)
class SshSide:
    """ssh settings for one side (source or destination)."""

    user: Optional[str] = None
    host: Optional[str] = None
    port: Optional[int] = None
    config_file: Optional[str] = None
    private_key: Optional[str] = None
    extra_opts: tuple[str, ...] = ()


@dataclass(frozen=True)
class SshSettings:
    program: str = "ssh"
    cipher: Optional[str] = None
    control_persist_secs: int = 90
    connect_timeout: int = 15
    src: SshSide = field(default_factory=SshSide)
    dst: SshSide = field(default_factory=SshSide)


def check_extra_options(text: str, option: str) -> tuple[str, ...]:
    """Split `--ssh-*-extra-opts` and allow only harmless ssh options."""
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise UsageError(f"{option}: {error}") from None
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in _FLAGS:
            out.append(word)
        elif word in ("-o", "-c") or (word.startswith(("-o", "-c")) and len(word) > 2):
            value = word[2:] if len(word) > 2 else (words[i + 1] if i + 1 < len(words) else "")
            if len(word) == 2:
                i += 1
            if word.startswith("-c"):
                _check_value(value, option, "cipher")
                out += ["-c", value]
            else:
                key, _, val = value.partition("=")
                if key.strip().lower() not in ALLOWED_OPTIONS:
                    raise UsageError(
                        f"{option}: ssh option {key!r} is not allowed (it could run commands or change where "
                        f"ssh connects); allowed: {', '.join(sorted(ALLOWED_OPTIONS))}"
                    )
                _check_value(val, option, key)
                out += ["-o", f"{key.strip()}={val}"]
        else:
            raise UsageError(f"{option}: {word!r} is not an allowed ssh option (use -o Key=value, -c, -4, -6, -C)")
        i += 1
    return tuple(out)


def _check_value(value: str, option: str, what: str) -> None:
    if not value or not _SAFE_VALUE.fullmatch(value):
        raise UsageError(f"{option}: invalid value {value!r} for {what}")


def check_file(path: Optional[str], option: str) -> Optional[str]:
    """A config or key file must exist and be a regular file, not a device or a directory."""
    if path is None:
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise UsageError(f"{option}: cannot use {path!r}: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        raise UsageError(f"{option}: {path!r} is not a regular file")
    if "\n" in path or "\0" in path:
        raise UsageError(f"{option}: invalid file name {path!r}")
    return path


class SshConnections:
    """Builds ssh `Host`s that share one ControlMaster connection per destination, and closes them.

    The control sockets live in a private temporary folder removed by `close()`; main() calls it
    on every exit path, signals included.
    """

    def __init__(self, settings: SshSettings) -> None:
        self.settings = settings
        self.control_dir = tempfile.mkdtemp(prefix="zferry-ssh-")
        self._hosts: list[Host] = []

    def host(self, side: SshSide, host: str, user: Optional[str], zfs_prefix: Sequence[str] = ()) -> Host:
        s = self.settings
        options = [
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={s.connect_timeout}",
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={self.control_dir}/%C",
            "-o",
            f"ControlPersist={s.control_persist_secs}",
        ]
        if s.cipher:
            options += ["-c", s.cipher]
        if side.config_file:
            options += ["-F", side.config_file]
        if side.private_key:
            options += ["-i", side.private_key]
        options += side.extra_opts
        result = Host(validate.hostname(host), user, side.port, s.program, tuple(options), tuple(zfs_prefix))
        self._hosts.append(result)
        return result

    def close(self) -> None:
        """Stop every master connection and remove the control socket folder."""
        for host in {h.name: h for h in self._hosts}.values():
            sockets = os.listdir(self.control_dir) if os.path.isdir(self.control_dir) else []
            if not sockets:
                break
            try:
                subprocess.run(
                    [*host.ssh_argv()[:-2], "-O", "exit", "--", host.name or ""],
                    capture_output=True,
                    timeout=10,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.control_dir, ignore_errors=True)
