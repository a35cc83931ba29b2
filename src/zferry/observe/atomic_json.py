"""Write a JSON file so that readers see the old or the new content, never half of it."""

from __future__ import annotations

import json
import os
import tempfile


def write_json_atomically(path: str, data: object) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`. Raises OSError."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
