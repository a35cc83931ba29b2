"""What the first record of a `zfs send` stream says: raw (encrypted) or not, and what it carries. Pure.

The stream starts with a `dmu_replay_record` of type DRR_BEGIN (OpenZFS include/sys/zfs_ioctl.h):
    uint32 drr_type, uint32 drr_payloadlen,
    uint64 drr_magic, uint64 drr_versioninfo, uint64 drr_creation_time,
    uint32 drr_type, uint32 drr_flags, uint64 drr_toguid, uint64 drr_fromguid, char drr_toname[256]
in the sender's byte order (the magic tells which). Feature flags are bits 2..31 of versioninfo.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional

DMU_BACKUP_MAGIC = 0x2F5BACBAC
FEATURE_RAW = 1 << 24
HEADER_BYTES = 8 + 8 * 3 + 4 * 2 + 8 * 2 + 256  # 312
_LAYOUT = "IIQQQIIQQ256s"


@dataclass(frozen=True)
class StreamHeader:
    raw: bool
    toname: str
    toguid: int
    fromguid: int
    compound: bool  # a replication (-R) stream: its own records follow


def parse_header(data: bytes) -> Optional[StreamHeader]:
    """The BEGIN record of a send stream, or None when `data` does not start with one."""
    if len(data) < HEADER_BYTES:
        return None
    for order in ("<", ">"):
        fields = struct.unpack_from(order + _LAYOUT, data)
        record_type, _, magic, versioninfo, _, _, _, toguid, fromguid, toname = fields
        if record_type == 0 and magic == DMU_BACKUP_MAGIC:
            features = (versioninfo >> 2) & ((1 << 30) - 1)
            name = toname.split(b"\0", 1)[0].decode(errors="replace")
            return StreamHeader(bool(features & FEATURE_RAW), name, toguid, fromguid, versioninfo & 3 == 2)
    return None
