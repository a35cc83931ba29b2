"""Which streams of a run to compress: asks the source, once and only when a stream may be compressed.

The decision itself is `stream_policy.compression_pays`; this module fetches what it needs (the
source tree's `compression` and `refcompressratio`, in one `zfs get`) the first time a transfer
that crosses the network asks, so that runs with nothing to send, and local runs, pay nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Optional

from zferry import zfs
from zferry.errors import CommandError
from zferry.exec.runner import Runner
from zferry.inventory import Side
from zferry.model import Dataset
from zferry.stream_policy import StoredCompression, compression_pays, parse_stored_compression
from zferry.transfer import StreamOptions, may_compress

log = logging.getLogger(__name__)


class CompressionChoice:
    """Per-run cache of the source's stored compression, and the decision for each stream."""

    def __init__(self, runner: Runner, src: Side, dst: Side, options: StreamOptions, recursive: bool) -> None:
        self._runner = runner
        self._src = src
        self._options = options
        self._recursive = recursive
        self._may = may_compress(src.host, dst.host, src.caps, dst.caps, options)
        self._lock = threading.Lock()
        self._stored: Optional[dict[str, StoredCompression]] = None

    def pays(self, send_argv: Sequence[str], dataset: Optional[Dataset]) -> bool:
        """Should this stream be compressed (where it may be at all)?"""
        if not self._may or self._options.compress_when == "always" or dataset is None:
            return True
        stored = self._stored_compression().get(dataset.name)
        return compression_pays(send_argv, stored, dataset.is_encrypted, self._options.compress_when)

    @property
    def asks_source(self) -> bool:
        """Whether `pays` will ask the source (once) before the first stream."""
        with self._lock:
            unknown = self._stored is None
        return unknown and self._may and self._options.compress_when != "always"

    def fetch(self) -> None:
        """Ask the source now (e.g. while something else runs), not at the first stream."""
        self._stored_compression()

    def _stored_compression(self) -> dict[str, StoredCompression]:
        with self._lock:
            if self._stored is None:
                argv = zfs.get_compression(self._src.root, self._recursive)
                try:
                    out = self._runner.run(self._src.host, argv, classify=zfs.classify_error)
                    self._stored = parse_stored_compression(zfs.parse_properties(out))
                except CommandError as error:  # unknown: compress, as before
                    log.info("%s: compression properties unavailable, compressing streams: %s", self._src, error)
                    self._stored = {}
            return self._stored
