"""Where a command runs: this machine, or a remote host reached over ssh.

A `Host` turns a command (an argv list) into the argv that runs it there. For a remote
host that is one `ssh` invocation whose remote command is `sh -c '<shell-quoted words>'`:
the only place a shell is involved, and every word goes through `shlex.quote`. The explicit
`sh -c` makes the command independent of the remote login shell (csh on FreeBSD).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Host:
    """This machine when `name` is None; else an ssh destination with its options."""

    name: Optional[str] = None
    user: Optional[str] = None
    port: Optional[int] = None
    ssh_program: str = "ssh"
    ssh_options: tuple[str, ...] = ()
    # Prepended to zfs commands (e.g. ("sudo", "-n")) when the user is not root.
    zfs_prefix: tuple[str, ...] = field(default=())

    @property
    def is_local(self) -> bool:
        return self.name is None

    @property
    def label(self) -> str:
        if self.name is None:
            return "local"
        return f"{self.user}@{self.name}" if self.user else self.name

    def ssh_argv(self) -> list[str]:
        """ssh and its options up to and including the destination."""
        assert self.name is not None
        argv = [self.ssh_program, *self.ssh_options]
        if self.port:
            argv += ["-p", str(self.port)]
        if self.user:
            argv += ["-l", self.user]
        return [*argv, "--", self.name]

    def with_prefix(self, argv: Sequence[str]) -> list[str]:
        """Add the privilege prefix to zfs commands."""
        if self.zfs_prefix and argv and argv[0] == "zfs":
            return [*self.zfs_prefix, *argv]
        return list(argv)

    def command(self, argv: Sequence[str]) -> list[str]:
        """The local argv that runs `argv` on this host."""
        return self.pipeline([argv])

    def pipeline(self, stages: Sequence[Sequence[str]]) -> list[str]:
        """The local argv that runs `a | b | ...` on this host (one process when local and single)."""
        prefixed = [self.with_prefix(s) for s in stages]
        if self.name is None:
            if len(prefixed) != 1:
                raise ValueError("a local multi-stage pipeline runs as separate processes")
            return prefixed[0]
        if len(prefixed) == 1:
            return [*self.ssh_argv(), *remote_sh(shlex.join(prefixed[0]))]
        # A POSIX sh pipeline exits with its last command's status (dash has no pipefail), so each
        # stage that fails says so on stderr; the runner turns that marker into a stage failure.
        remote = " | ".join(
            f'{{ {shlex.join(s)} || {{ echo "{STAGE_FAILED} $? {i}" >&2; exit 1; }}; }}' for i, s in enumerate(prefixed)
        )
        return [*self.ssh_argv(), *remote_sh(remote)]


def remote_sh(script: str) -> list[str]:
    """The words ssh sends for `script`: `sh -c '<script>'`, whatever the remote login shell is."""
    return ["sh", "-c", shlex.quote(script)]


LOCAL = Host()
STAGE_FAILED = "zferry-stage-failed"
