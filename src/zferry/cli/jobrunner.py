"""`zferry-jobrunner`: fleet orchestration. Not implemented yet."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Optional


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Placeholder until the jobrunner lands."""
    print("zferry-jobrunner: not implemented yet", file=sys.stderr)
    return 2
