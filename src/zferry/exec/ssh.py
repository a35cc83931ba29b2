"""ssh settings: validated options, one ControlMaster connection per host, cleanup on exit.

Users may pass extra ssh options, but only from an allow-list: options such as
ProxyCommand, LocalCommand or RemoteCommand run programs and are refused.

The masters are zferry's own children (`ssh -M -N -o ControlPersist=no`), started from one
long-lived thread with PR_SET_PDEATHSIG, so that they end with zferry even after a kill -9
(ControlPersist would fork them away and they would outlive us, holding the remote commands'
connections open). Every ssh sends keepalives: a dead peer is noticed within a minute.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shlex
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from zferry import validate
from zferry.errors import CommandError, UsageError
from zferry.exec.control_dirs import new_control_dir
from zferry.exec.host import Host
from zferry.exec.runner import spawn, terminate_groups

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
    control_persist_secs: int = 90  # unused: masters live exactly as long as the run
    connect_timeout: int = 15
    alive_interval: int = 15  # ServerAliveInterval; with alive_count_max, a dead peer ends ssh in ~45 s
    alive_count_max: int = 3
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


class _Spawner:
    """One long-lived thread that starts the masters: PR_SET_PDEATHSIG fires when the creating thread ends."""

    def __init__(self) -> None:
        self._requests: queue.Queue[Optional[tuple[list[str], dict[str, Any], queue.Queue[Any]]]] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="zferry-ssh-masters", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            argv, popen, reply = request
            try:
                reply.put(spawn(argv, signal.SIGTERM, **popen))  # SIGTERM: ssh removes its socket
            except OSError as error:
                reply.put(error)

    def spawn(self, argv: list[str], **popen: Any) -> subprocess.Popen[bytes]:
        reply: queue.Queue[Union[subprocess.Popen[bytes], OSError]] = queue.Queue(maxsize=1)
        self._requests.put((argv, popen, reply))
        result = reply.get()
        if isinstance(result, OSError):
            raise result
        return result

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(timeout=5)


class SshConnections:
    """Builds ssh `Host`s that share one ControlMaster connection per destination, and closes them.

    The control sockets live in a private temporary folder removed by `close()`; main() calls it
    on every exit path, signals included. A master is started the first time a host is asked for,
    and the call returns once its socket is up (or raises with ssh's own error).
    """

    def __init__(
        self, settings: SshSettings, env: Optional[dict[str, str]] = None, cancel: Optional[threading.Event] = None
    ) -> None:
        self.settings = settings
        self.env = env
        self.cancel = cancel or threading.Event()
        self.control_dir = new_control_dir()  # and remove those that killed runs left
        self._sockets: dict[tuple[object, ...], str] = {}
        self._master_of: dict[tuple[object, ...], tuple[str, list[str]]] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._spawner: Optional[_Spawner] = None
        self._lock = threading.Lock()

    def _options(self, side: SshSide) -> list[str]:
        s = self.settings
        options = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={s.connect_timeout}"]
        if s.cipher:
            options += ["-c", s.cipher]
        if side.config_file:
            options += ["-F", side.config_file]
        if side.private_key:
            options += ["-i", side.private_key]
        options += side.extra_opts  # before our keepalive defaults: for ssh, the first value given wins
        options += ["-o", f"ServerAliveInterval={s.alive_interval}", "-o", f"ServerAliveCountMax={s.alive_count_max}"]
        return options

    def host(self, side: SshSide, host: str, user: Optional[str], zfs_prefix: Sequence[str] = ()) -> Host:
        """The `Host` for `user@host` with `side`'s options (pure: `connect` starts its master)."""
        name = validate.hostname(host)
        options = self._options(side)
        key = (name, user, side.port, *options)
        with self._lock:
            if key not in self._sockets:
                self._sockets[key] = os.path.join(self.control_dir, f"m{len(self._sockets)}")
            socket = self._sockets[key]
        client = ("-o", "ControlMaster=no", "-o", f"ControlPath={socket}")
        result = Host(name, user, side.port, self.settings.program, (*options, *client), tuple(zfs_prefix))
        with self._lock:
            self._master_of[(name, user, side.port, result.ssh_options)] = (socket, options)
        return result

    def connect(self, host: Host) -> None:
        """Start `host`'s master connection unless it runs; return once its socket is up.

        Threads may share the connections (the jobrunner's sub-jobs do): a master another thread
        started is waited for, and a master that has ended is started anew."""
        with self._lock:
            socket, options = self._master_of[(host.name, host.user, host.port, host.ssh_options)]
            running = self._procs.get(socket)
            if running is not None and running.poll() is None:
                proc = running
            else:
                proc = self._start(socket, Host(host.name, host.user, host.port, host.ssh_program, tuple(options)))
        self._wait_ready(socket, proc, host.label)

    def _start(self, socket: str, plain: Host) -> subprocess.Popen[bytes]:
        """Spawn the master for `socket` (called with the lock held)."""
        if socket in self._procs and os.path.lexists(socket):
            os.unlink(socket)  # a dead master's socket: ssh would fail to bind it
        if self._spawner is None:
            self._spawner = _Spawner()
        argv = plain.ssh_argv()
        argv[1:1] = ["-M", "-N", "-o", "ControlPersist=no", "-S", socket]
        errors = open(f"{socket}.err", "wb")  # noqa: SIM115 - the master writes to it as long as it lives
        try:
            proc = self._spawner.spawn(argv, stdin=subprocess.DEVNULL, stdout=errors, stderr=errors, env=self.env)
        finally:
            errors.close()
        self._procs[socket] = proc
        return proc

    def _wait_ready(self, socket: str, proc: subprocess.Popen[bytes], label: str) -> None:
        deadline = time.monotonic() + self.settings.connect_timeout + 10
        while not os.path.exists(socket):
            if proc.poll() is not None or time.monotonic() > deadline or self.cancel.wait(0.02):
                if proc.poll() is None:
                    terminate_groups([proc])
                    proc.wait()
                with open(f"{socket}.err", "rb") as handle:
                    text = " ".join(handle.read().decode(errors="replace").split()) or f"exit status {proc.returncode}"
                error = CommandError(f"ssh connection to {label} failed: {text}", [], 255, text)
                error.transport_failure = True
                raise error

    def alive(self) -> bool:
        """True while every master started so far still runs (daemon mode checks before each run)."""
        with self._lock:
            return all(proc.poll() is None for proc in self._procs.values())

    def close(self) -> None:
        """Stop every master connection and remove the control socket folder."""
        with self._lock:
            masters = list(self._procs.values())
            self._procs.clear()
        terminate_groups(masters)
        for proc in masters:
            proc.wait()
        if self._spawner is not None:
            self._spawner.close()
        shutil.rmtree(self.control_dir, ignore_errors=True)
