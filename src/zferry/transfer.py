"""The stages of one transfer, from `zfs send` to `zfs receive`: pure, tested by comparing lists.

    src host:    zfs send | [pv] | zstd -c | mbuffer     (compression/buffering only across ssh)
    dst host:    mbuffer | zstd -dc | [pv] | zfs receive

pv (progress, bandwidth limit) runs on this machine: next to `zfs send` when the source is
local, next to `zfs receive` when the destination is, else between the two ssh hops. Progress
alone needs no pv when `zfs send` runs here without sudo: the kernel counts what it writes
(`exec.iocount`), and the stream is not copied once more only to be counted.

Each helper is used only where it is installed; compression only when both ends have it;
nothing but `zfs send | [pv |] zfs receive` when source and destination are on one host.
Without pv, `--bwlimit` is enforced by an mbuffer with `-r` (and refused when there is none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Optional

from zferry.errors import ZferryError
from zferry.exec.host import LOCAL, Host
from zferry.exec.iocount import WriteMeter
from zferry.exec.probe import Capabilities
from zferry.exec.runner import Stage

MBUFFER_BLOCK = 128 * 1024
MBUFFER_MIN_SIZE = 5 * MBUFFER_BLOCK  # mbuffer: "Number of blocks must be at least 5"
# Large blocks where the buffer has room for them: each block is a hand-over between mbuffer's
# reader and writer, and at 128k a 1 GiB push took 5-18 % longer in the test VM (bench/README.md).
MBUFFER_LARGE_BLOCK = 1024 * 1024
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def byte_count(text: str) -> int:
    """A size or rate such as `500k`, `10m`, `1.5G` in bytes (binary units, as pv and mbuffer read them)."""
    number, unit = (text[:-1], text[-1].lower()) if text[-1:].isalpha() else (text, "")
    return int(float(number) * _UNITS[unit])


@dataclass(frozen=True)
class StreamOptions:
    compression: Optional[str] = "zstd"  # None: off
    compression_level: str = "-1"
    mbuffer: Optional[str] = "mbuffer"  # None: off
    mbuffer_size: str = "128M"
    pv: Optional[str] = "pv"  # None: no progress or bandwidth limit
    bwlimit: Optional[str] = None  # e.g. "10m" (bytes per second, pv -L syntax)
    progress_interval: float = 0  # seconds between progress reports; 0: no progress
    # Ask `zfs send -nP` for the size first (for percent and ETA): one more zfs process per send,
    # worth it on a terminal; in logs, bytes and rate come free.
    estimate_size: bool = False
    # "auto": compress only where it pays (see stream_policy); "always": whenever it may.
    compress_when: str = "auto"
    # No meter on this machine (no pv, not counted): pv on the source or destination host instead,
    # so that progress still comes (the server's live task bytes); it costs a copy on that host.
    remote_meter: bool = False

    def programs(self) -> tuple[str, ...]:
        """The helper programs configured (names or paths), for the capability probe."""
        return tuple(p for p in (self.compression, self.mbuffer, self.pv) if p)


def transfer_stages(
    send: Sequence[str],
    receive: Sequence[str],
    src: Host,
    dst: Host,
    src_caps: Capabilities,
    dst_caps: Capabilities,
    local_caps: Capabilities,
    options: StreamOptions,
    size_hint: Optional[int] = None,
    on_progress: Optional[Callable[[int], None]] = None,
    count_writes: bool = False,
    compressible: bool = True,
) -> list[Stage]:
    """The pipeline for one `zfs send | zfs receive`, with helpers where they help and exist.

    `count_writes`: this machine can read a process's write counter (`exec.iocount.available()`).
    `compressible`: False when compressing would not pay (`stream_policy.compression_pays`).
    """
    crosses_network = _crosses_network(src, dst)
    compress = compressible and may_compress(src, dst, src_caps, dst_caps, options)
    # The meter counts uncompressed bytes where it can, so that the size estimate applies.
    metered_compressed = compress and not src.is_local and not dst.is_local
    if on_progress is not None and count_writes and counts_sender(send, src, options):
        meter, write_meter = None, WriteMeter(on_progress, options.progress_interval)
    else:
        meter, write_meter = _meter(options, local_caps, None if metered_compressed else size_hint, on_progress), None
    src_side = [Stage(src, tuple(send), write_meter=write_meter)]
    dst_side = [Stage(dst, tuple(receive))]
    far = None if meter or write_meter else _remote_meter(src, dst, src_caps, dst_caps, options, on_progress)
    if far is not None and far.host == src:
        src_side.append(far)
    elif far is not None:
        dst_side.insert(0, far)
    if meter and src.is_local:
        src_side.append(meter)
    elif meter and dst.is_local:
        dst_side.insert(0, meter)
    if compress:
        assert options.compression is not None
        src_side.append(Stage(src, (options.compression, "-c", options.compression_level, "-T0")))
        dst_side.insert(0, Stage(dst, (options.compression, "-dc")))
    rate = byte_count(options.bwlimit) if options.bwlimit and not _has_pv(options, local_caps) else None
    src_buffer, dst_buffer = _buffers(src, dst, src_caps, dst_caps, options, crosses_network, rate)
    src_side += src_buffer
    dst_side[:0] = dst_buffer
    if meter and not src.is_local and not dst.is_local:
        # Both ends remote: the stream passes through this machine only to be metered or limited;
        # without a meter one ssh runs the whole pipeline on a shared host.
        return [*src_side, meter, *dst_side]
    return [*src_side, *dst_side]


def counts_sender(send: Sequence[str], src: Host, options: StreamOptions) -> bool:
    """Can progress come from the kernel's count of what `zfs send` writes, instead of pv?

    Only for a send on this machine run directly (sudo's child is not ours to read), with
    progress wanted and no `--bwlimit` (pv limits the rate), and no -v/-P (their text on
    stderr would be counted as stream)."""
    verbose = any(
        w in ("--verbose", "--parsable") or (w.startswith("-") and not w.startswith("--") and set(w[1:]) & set("vP"))
        for w in send
    )
    return bool(
        src.is_local and not src.zfs_prefix and options.progress_interval and not options.bwlimit and not verbose
    )


def _crosses_network(src: Host, dst: Host) -> bool:
    return src != dst and not (src.is_local and dst.is_local)


def may_compress(src: Host, dst: Host, src_caps: Capabilities, dst_caps: Capabilities, options: StreamOptions) -> bool:
    """Would a stream from src to dst be compressed (it crosses the network, both ends have the program)?"""
    program = options.compression
    return bool(_crosses_network(src, dst) and program and src_caps.has(program) and dst_caps.has(program))


def _has_pv(options: StreamOptions, local_caps: Capabilities) -> bool:
    return bool(options.pv and local_caps.has(options.pv))


def _buffers(
    src: Host,
    dst: Host,
    src_caps: Capabilities,
    dst_caps: Capabilities,
    options: StreamOptions,
    crosses_network: bool,
    rate: Optional[int],
) -> tuple[list[Stage], list[Stage]]:
    """mbuffer at the source end and the destination end of a network hop, where installed.

    Without pv, `--bwlimit` falls back to mbuffer's read rate limit (`-r BYTES`), on the
    source's mbuffer if it has one, else the destination's, even when no network is crossed.
    """
    program = options.mbuffer
    src_has = bool(program and src_caps.has(program))
    dst_has = bool(program and dst_caps.has(program))
    buffer = _mbuffer_argv(program or "mbuffer", options.mbuffer_size, rate_limited=rate is not None)
    src_stages = [Stage(src, buffer)] if crosses_network and src_has else []
    dst_stages = [Stage(dst, buffer)] if crosses_network and dst_has else []
    if rate is None:
        return src_stages, dst_stages
    if src_has:
        return [Stage(src, (*buffer, "-r", str(rate)))], dst_stages
    if dst_has:
        return src_stages, [Stage(dst, (*buffer, "-r", str(rate)))]
    raise ZferryError(
        f"--bwlimit {options.bwlimit}: limiting the rate needs {options.pv or 'pv'} on this machine or "
        f"{program or 'mbuffer'} on the source or destination host; install one, or drop --bwlimit"
    )


def _mbuffer_argv(program: str, size: str, rate_limited: bool) -> tuple[str, ...]:
    """`mbuffer -q -s BLOCK -m SIZE`: 1 MiB blocks when SIZE holds five of them (mbuffer's least),
    else 128k; 128k also under a rate limit, where smaller steps give a smoother rate."""
    large = not rate_limited and byte_count(size) >= 5 * MBUFFER_LARGE_BLOCK
    block = MBUFFER_LARGE_BLOCK if large else MBUFFER_BLOCK
    return (program, "-q", "-s", f"{block // 1024}k", "-m", size)


def _remote_meter(
    src: Host,
    dst: Host,
    src_caps: Capabilities,
    dst_caps: Capabilities,
    options: StreamOptions,
    on_progress: Optional[Callable[[int], None]],
) -> Optional[Stage]:
    """`pv -n -b` next to `zfs send` on the source host, else next to `zfs receive` (`remote_meter`)."""
    program = options.pv
    if not (options.remote_meter and program and options.progress_interval and on_progress):
        return None
    argv = (program, "-f", "-n", "-b", "-i", str(options.progress_interval))
    hosts = [h for h, caps in ((src, src_caps), (dst, dst_caps)) if not h.is_local and caps.has(program)]
    return Stage(hosts[0], argv, on_progress) if hosts else None


def _meter(
    options: StreamOptions,
    local_caps: Capabilities,
    size_hint: Optional[int],
    on_progress: Optional[Callable[[int], None]],
) -> Optional[Stage]:
    """pv on this machine: `-n -b` prints bytes so far, one line per interval, for our progress reporter."""
    if not options.pv or not local_caps.has(options.pv):
        return None
    if not options.progress_interval and not options.bwlimit:
        return None
    argv = [options.pv, "-q" if not options.progress_interval else "-f"]
    if options.progress_interval:
        argv += ["-n", "-b", "-i", str(options.progress_interval)]
    if options.bwlimit:
        argv += ["-L", options.bwlimit]
    if size_hint:
        argv += ["-s", str(size_hint)]
    return Stage(LOCAL, tuple(argv), on_progress if options.progress_interval else None)
