"""A tiny notation for snapshot histories in tests: "a b c" -> snapshots of one dataset.

`history("a b c")` gives snapshots a, b, c with createtxg 10, 20, 30 and guids derived from
the names, so the same name on two "pools" has the same guid (as a replicated snapshot does).
`#a` is a bookmark of a.
"""

from __future__ import annotations

import zlib

from zferry.model import Version


def guid_of(name: str) -> int:
    return zlib.crc32(name.encode()) + 1


def history(spec: str, dataset: str = "src/ds", start_txg: int = 10) -> list[Version]:
    out = []
    for i, word in enumerate(spec.split()):
        bookmark = word.startswith("#")
        name = word.lstrip("#")
        out.append(Version(dataset, name, guid_of(name), start_txg + 10 * i, 1_700_000_000 + 3600 * i, bookmark))
    return out
