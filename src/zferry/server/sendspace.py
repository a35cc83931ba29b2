"""Send-size estimates through libzfs_core (`lzc_send_space`) on the managed host, when it has pyzfs.

`zfs send -nP` costs a zfs process per estimate. Where Debian's `python3-pyzfs` is installed on the
ZFS host, the server instead starts one helper there, once: a fixed Python program (`HELPER`) that
reads one JSON request per line on stdin and answers one JSON line per request on stdout. Names
travel as data, never as program text, and are validated before they are sent. The first answer
of the helper says whether libzfs_core imports; a host without it keeps using the CLI (asked once
per server). Any failure of the helper makes that one estimate fall back to the CLI, which also
gives the error message the CLI path always gave.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Optional, Union

from zferry import validate, zfs
from zferry.errors import UsageError
from zferry.exec.host import Host
from zferry.exec.runner import kill_group, spawn, terminate_groups

log = logging.getLogger("zferry")

# Runs on the ZFS host as `python3 -c HELPER`: one JSON request a line in, one JSON answer a line out.
HELPER = """\
import json, sys
try:
    from libzfs_core import lzc_send_space
except ImportError:
    print('{"ready": false}', flush=True)
    sys.exit(0)
print('{"ready": true}', flush=True)
for line in sys.stdin:
    try:
        ask = json.loads(line)
        base = ask["from"].encode() if ask["from"] else None
        answer = {"size": lzc_send_space(ask["snapshot"].encode(), base, ask["flags"])}
    except Exception as error:
        answer = {"error": type(error).__name__, "message": str(error)}
    print(json.dumps(answer), flush=True)
"""

START_SECONDS = 60.0  # python's start-up on a busy, emulated host takes seconds
ANSWER_SECONDS = 30.0  # an estimate reads metadata only; longer means the helper is stuck
_LZC_FLAGS = {"-w": "raw", "-c": "compress", "-L": "large_blocks"}  # those checked against the CLI


@dataclass(frozen=True)
class SpaceRequest:
    """What `lzc_send_space` is asked: the snapshot, the incremental base (or None) and stream flags."""

    snapshot: str
    base: Optional[str]
    flags: tuple[str, ...]

    def line(self) -> bytes:
        """The request as the helper reads it: one JSON line."""
        return (json.dumps({"snapshot": self.snapshot, "from": self.base, "flags": list(self.flags)}) + "\n").encode()


def space_request(send: Sequence[str]) -> Optional[SpaceRequest]:
    """The lzc request equal to a `zfs send` argv from `zfs.send_full`/`send_incremental`; None when
    the send asks for something `lzc_send_space` cannot estimate (-I, -R, -p, ...). Pure."""
    parts = zfs.send_parts(send)
    if parts is None:
        return None
    target, base, options = parts
    if any(o not in _LZC_FLAGS for o in options):
        return None
    if not _valid_version(target, "@") or (base is not None and not _valid_version(base, "@#")):
        return None
    return SpaceRequest(target, base, tuple(sorted({_LZC_FLAGS[o] for o in options})))


def _valid_version(name: str, sigils: str) -> bool:
    """Whether `name` is `dataset@snap` (or `dataset#bookmark` when `#` is in `sigils`), validated."""
    at = max(name.rfind(s) for s in sigils)
    if at <= 0:
        return False
    try:
        validate.dataset_name(name[:at])
        validate.snapshot_name(name[at + 1 :])
    except UsageError:
        return False
    return True


def parse_ready(line: bytes) -> bool:
    """Whether the helper's first line says libzfs_core is importable. Pure."""
    try:
        return bool(json.loads(line) == {"ready": True})
    except ValueError:
        return False


def parse_answer(line: bytes) -> Union[int, str]:
    """The size the helper answered, or the reason it gave none (its error). Pure."""
    try:
        answer = json.loads(line)
    except ValueError:
        return f"unreadable answer {line[:200]!r}"
    if isinstance(answer, dict) and isinstance(answer.get("size"), int) and answer["size"] >= 0:
        return int(answer["size"])
    if isinstance(answer, dict) and "error" in answer:
        return f"{answer['error']}: {answer.get('message', '')}"
    return f"unexpected answer {line[:200]!r}"


def helper_argv(host: Host) -> list[str]:
    """The local argv that starts the helper on `host` (with its privilege prefix, like zfs)."""
    return host.command([*host.zfs_prefix, "python3", "-c", HELPER])


class _Helper:
    """One running helper: started from a thread of its own that lives until `stop()`, since the
    death signal fires when the creating thread ends and a request thread (the server's thread
    pool) may end before the helper."""

    def __init__(self, argv: list[str]) -> None:
        reply: queue.Queue[Union[subprocess.Popen[bytes], OSError]] = queue.Queue(maxsize=1)
        self._released = threading.Event()

        def own() -> None:
            try:
                reply.put(spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
            except OSError as error:
                reply.put(error)
                return
            self._released.wait()

        threading.Thread(target=own, name="zferry-sendspace", daemon=True).start()
        result = reply.get()
        if isinstance(result, OSError):
            raise result
        self.proc = result
        assert result.stdin is not None and result.stdout is not None
        self._stdin = result.stdin
        self._lines = _Lines(result.stdout.fileno())

    def first_line(self, seconds: float) -> Optional[bytes]:
        """What the helper says when it starts (None: nothing within `seconds`, or it ended)."""
        return self._lines.read(seconds)

    def ask(self, line: bytes, seconds: float) -> Union[bytes, bool]:
        """The answer line to `line`; False when the helper has ended, True when it did not answer in time."""
        try:
            self._stdin.write(line)
            self._stdin.flush()
        except OSError:
            return False
        answer = self._lines.read(seconds)
        if answer is None:
            return self.proc.poll() is None and not self._lines.ended
        return answer

    def kill(self) -> None:
        """Terminate the helper's process group; whoever waits on it sees its end (thread-safe)."""
        kill_group(self.proc)

    def stop(self) -> None:
        """Terminate the helper (and its ssh) and release its thread."""
        if self.proc.poll() is None:
            terminate_groups([self.proc])
        self.proc.wait()
        self._released.set()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]  # both are pipes
            except OSError:
                pass


class _Lines:
    """Lines from a pipe, each awaited with a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.ended = False

    def read(self, seconds: float) -> Optional[bytes]:
        """The next line; None at the end of the stream or when `seconds` pass without one."""
        deadline = time.monotonic() + seconds
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.ended = True
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


class SendSpace:
    """The helper on the managed host: probed on first use, restarted when it died, else the CLI.

    `estimate` returns None whenever the CLI must answer instead (no pyzfs, a send lzc cannot
    estimate, or any failure of the helper).
    """

    def __init__(self, host: Callable[[], Host]) -> None:
        self._host = host
        self._lock = threading.Lock()
        self._helper: Optional[_Helper] = None
        self._starting: Optional[_Helper] = None
        self.available: Optional[bool] = None  # None until probed
        self._closed = False

    def prepare(self) -> None:
        """Probe (start the helper) in the background, so that the first estimate need not wait for it."""

        def probe() -> None:
            with self._lock:
                if self.available is None and self._helper is None and not self._closed:
                    self._start()

        threading.Thread(target=probe, name="zferry-sendspace-probe", daemon=True).start()

    def estimate(self, send: Sequence[str]) -> Optional[int]:
        """`lzc_send_space` for the send `send`, or None (then ask `zfs send -nP`)."""
        request = space_request(send)
        if request is None or self.available is False:
            return None
        with self._lock:
            answer = self._ask(request.line())
        if answer is None:
            return None
        size = parse_answer(answer)
        if isinstance(size, str):
            log.debug("lzc_send_space: %s; asking zfs send -nP", size)
            return None
        return size

    def _ask(self, line: bytes) -> Optional[bytes]:
        # A helper that ended (its connection dropped, say) is started again once, for this request.
        for _ in range(2):
            if self._closed:
                return None
            helper = self._helper or self._start()
            if helper is None:
                return None
            answer = helper.ask(line, ANSWER_SECONDS)
            if isinstance(answer, bytes):
                return answer
            helper.stop()
            self._helper = None
            if answer:
                log.info("send-size helper gave no answer in %g s; using zfs send -nP", ANSWER_SECONDS)
                return None
        return None

    def _start(self) -> Optional[_Helper]:
        """A new helper, or None (then the CLI serves this server for good): the first start is the probe."""
        try:
            helper = _Helper(helper_argv(self._host()))
        except OSError as error:
            log.info("send-size helper did not start (%s); using zfs send -nP", error)
            self.available = False
            return None
        self._starting = helper
        line = helper.first_line(START_SECONDS)
        self._starting = None
        ready = line is not None and parse_ready(line) and not self._closed
        if ready != self.available:
            log.info("send-size: %s", "libzfs_core on the ZFS host" if ready else "zfs send -nP (no pyzfs there)")
        self.available = ready
        if not ready:
            helper.stop()
            return None
        self._helper = helper
        return helper

    def close(self) -> None:
        """Stop the helper and start no other (at once: an estimate under way gives up)."""
        self._closed = True
        for helper in (self._starting, self._helper):
            if helper is not None:
                helper.kill()
        with self._lock:
            if self._helper is not None:
                self._helper.stop()
                self._helper = None
