"""Does compressing a stream that crosses the network pay? Pure decisions, tested without ZFS.

Measured in the test VM (bench/bench_remote.py): `zstd -1 -T0` roughly halves the time of a
push of text-like data, but on incompressible data it only costs (CPU that ssh and zfs need).
ZFS has already tried to compress the data: a dataset with compression on and a refcompressratio
near 1 holds data that zstd will not shrink either, and a raw (`-w`) or compressed (`-c`) send
of a compressed dataset carries blocks that are compressed (or encrypted) already. Only then is
compression skipped; when nothing is known (compression off, no listing) it stays on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

COMPRESS_WHEN = ("auto", "always")
# Below this refcompressratio (with compression on), the data counts as incompressible.
PAYING_RATIO = 1.10


@dataclass(frozen=True)
class StoredCompression:
    """How ZFS stores a dataset: its `compression` property and the ratio it reached."""

    algorithm: str  # "off", "lz4", "zstd-3", ...
    ratio: float  # `refcompressratio` (1.0: nothing saved)

    @property
    def is_compressed(self) -> bool:
        return self.algorithm not in ("off", "")


def parse_stored_compression(props: Mapping[str, Mapping[str, tuple[str, str]]]) -> dict[str, StoredCompression]:
    """`zfs.parse_properties` output of `compression` and `refcompressratio`, per dataset."""
    result = {}
    for name, values in props.items():
        algorithm = values.get("compression", ("", ""))[0]
        ratio = values.get("refcompressratio", ("", ""))[0].rstrip("x")
        try:
            result[name] = StoredCompression(algorithm, float(ratio))
        except ValueError:
            continue
    return result


def sends_stored_blocks(send_argv: Sequence[str]) -> bool:
    """Does this `zfs send` pass blocks as stored (`-c`/`--compressed`, `-w`/`--raw`, or in -Lce...)?"""
    flags = [a for a in send_argv[2:] if a.startswith("-")]
    return any(
        f in ("--compressed", "--raw") or (not f.startswith("--") and ("c" in f[1:] or "w" in f[1:])) for f in flags
    )


def compression_pays(
    send_argv: Sequence[str], stored: Optional[StoredCompression], encrypted: bool = False, when: str = "auto"
) -> bool:
    """Compress this stream on its way across the network? (`when`: "auto" decides, "always" does.)"""
    if when == "always":
        return True
    if encrypted and sends_stored_blocks(send_argv):
        return False  # a raw stream of an encrypted dataset: ciphertext does not compress
    if stored is None or not stored.is_compressed:
        return True
    return stored.ratio >= PAYING_RATIO and not sends_stored_blocks(send_argv)
