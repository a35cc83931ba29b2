"""The stages of one transfer, from `zfs send` to `zfs receive`: pure, tested by comparing lists.

    src host:    zfs send | [pv] | zstd -c | mbuffer     (compression/buffering only across ssh)
    dst host:    mbuffer | zstd -dc | [pv] | zfs receive

pv (progress, bandwidth limit) runs on this machine: next to `zfs send` when the source is
local, next to `zfs receive` when the destination is, else between the two ssh hops.

Each helper is used only where it is installed; compression only when both ends have it;
nothing but `zfs send | [pv |] zfs receive` when source and destination are on one host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Optional

from zferry.exec.host import LOCAL, Host
from zferry.exec.probe import Capabilities
from zferry.exec.runner import Stage


@dataclass(frozen=True)
class StreamOptions:
    compression: Optional[str] = "zstd"  # None: off
    compression_level: str = "-1"
    mbuffer: Optional[str] = "mbuffer"  # None: off
    mbuffer_size: str = "128M"
    pv: Optional[str] = "pv"  # None: no progress or bandwidth limit
    bwlimit: Optional[str] = None  # e.g. "10m" (bytes per second, pv -L syntax)
    progress_interval: int = 0  # seconds between progress reports; 0: no progress
    # Ask `zfs send -nP` for the size first (for percent and ETA): one more zfs process per send,
    # worth it on a terminal; in logs, bytes and rate come free.
    estimate_size: bool = False


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
) -> list[Stage]:
    """The pipeline for one `zfs send | zfs receive`, with helpers where they help and exist."""
    same_host = src == dst
    crosses_network = not same_host and not (src.is_local and dst.is_local)
    compress = bool(
        crosses_network
        and options.compression
        and src_caps.has(options.compression)
        and dst_caps.has(options.compression)
    )
    # The meter counts uncompressed bytes where it can, so that the size estimate applies.
    metered_compressed = compress and not src.is_local and not dst.is_local
    meter = _meter(options, local_caps, None if metered_compressed else size_hint, on_progress)
    src_side = [Stage(src, tuple(send))]
    dst_side = [Stage(dst, tuple(receive))]
    if meter and src.is_local:
        src_side.append(meter)
    elif meter and dst.is_local:
        dst_side.insert(0, meter)
    if compress:
        assert options.compression is not None
        src_side.append(Stage(src, (options.compression, "-c", options.compression_level, "-T0")))
        dst_side.insert(0, Stage(dst, (options.compression, "-dc")))
    if crosses_network and options.mbuffer:
        buffer = (options.mbuffer, "-q", "-s", "128k", "-m", options.mbuffer_size)
        if src_caps.has(options.mbuffer):
            src_side.append(Stage(src, buffer))
        if dst_caps.has(options.mbuffer):
            dst_side.insert(0, Stage(dst, buffer))
    if meter and not src.is_local and not dst.is_local:
        # Both ends remote: the stream passes through this machine only to be metered or limited;
        # without a meter one ssh runs the whole pipeline on a shared host.
        return [*src_side, meter, *dst_side]
    return [*src_side, *dst_side]


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
