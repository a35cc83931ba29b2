"""Turn endpoints into `Side`s: which host, reached how, with which privileges and helpers.

Each distinct host gets its ControlMaster connection and is probed once (one more round trip):
are we root there, and which of the configured helpers (zstd, mbuffer, pv) it has. When we are
not root and elevation is allowed, zfs commands on that host get `sudo -n`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from zferry.errors import CommandError
from zferry.exec.background import Background
from zferry.exec.host import LOCAL, Host
from zferry.exec.probe import HELPERS, Capabilities, probe
from zferry.exec.runner import Runner
from zferry.exec.ssh import SshConnections, SshSide
from zferry.inventory import Side
from zferry.model import Endpoint
from zferry.retry import RetryPolicy, call_with_retries


class Connector:
    def __init__(
        self,
        runner: Runner,
        connections: SshConnections,
        elevate: bool = True,
        sudo_program: str = "sudo",
        programs: Sequence[str] = HELPERS,
        retry: Optional[RetryPolicy] = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.runner = runner
        self.programs = tuple(programs)  # the helpers to probe for, as configured
        self.connections = connections
        self.elevate = elevate
        self.sudo_program = sudo_program
        self._known: dict[tuple[Optional[str], Optional[str], Optional[int], SshSide], tuple[Host, Capabilities]] = {}

    def _prefix(self, caps: Capabilities) -> tuple[str, ...]:
        return (self.sudo_program, "-n") if self.elevate and not caps.is_root else ()

    def host(self, endpoint: Endpoint, ssh: SshSide) -> tuple[Host, Capabilities]:
        """The host an endpoint names (options override the endpoint's own user/host/port)."""
        name = ssh.host or endpoint.host
        user = ssh.user or endpoint.user
        port = ssh.port or endpoint.port
        key = (name, user, port, ssh if name else SshSide())
        if key in self._known:
            return self._known[key]
        if name is None:
            caps = probe(self.runner, LOCAL, self.programs)
            host = Host(zfs_prefix=self._prefix(caps))
        else:
            plain = self.connections.host(
                SshSide(port=port, config_file=ssh.config_file, private_key=ssh.private_key, extra_opts=ssh.extra_opts),
                name,
                user,
            )
            try:
                self.connections.connect(plain)
            except CommandError:
                self.runner.check_cancelled()  # a signal cut the connecting short
                raise
            caps = call_with_retries(
                lambda: probe(self.runner, plain, self.programs), self.retry, f"{plain.label}: probe"
            )
            host = (
                self.connections.host(
                    SshSide(
                        port=port, config_file=ssh.config_file, private_key=ssh.private_key, extra_opts=ssh.extra_opts
                    ),
                    name,
                    user,
                    self._prefix(caps),
                )
                if self._prefix(caps)
                else plain
            )
        self._known[key] = (host, caps)
        return host, caps

    def side(self, endpoint: Endpoint, ssh: SshSide) -> Side:
        host, caps = self.host(endpoint, ssh)
        return Side(host, endpoint.dataset, caps, self.retry)

    def sides(
        self, src: Optional[Endpoint], src_ssh: SshSide, dst: Optional[Endpoint], dst_ssh: SshSide
    ) -> tuple[Optional[Side], Optional[Side]]:
        """Both sides of a pair (None for an endpoint not given); two different remote hosts are
        connected and probed at the same time: each ssh handshake costs a second or more."""
        names = [None if e is None else (ssh.host or e.host) for e, ssh in ((src, src_ssh), (dst, dst_ssh))]
        if src is None or dst is None or None in names or names[0] == names[1]:
            src_side = None if src is None else self.side(src, src_ssh)
            return src_side, None if dst is None else self.side(dst, dst_ssh)
        early = Background(lambda: self.side(src, src_ssh), "zferry-connect-src")
        try:
            dst_side = self.side(dst, dst_ssh)
        except BaseException:
            early.result()  # the source's error first, as when they were connected one after the other
            raise
        return early.result(), dst_side

    def local(self) -> Capabilities:
        return self.host(Endpoint("-"), SshSide())[1]
