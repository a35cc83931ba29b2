"""One call run in a thread while the caller does something else: two sides listed at once, for instance.

In the test VM every `zfs` process costs a few tenths of a second, most of it waiting; the source
and the destination can be asked at the same time (bench/bench_replication.py, the fixed cost).
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, Optional, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """Start `call` in a thread now; `result()` waits for it and returns its value or raises its error."""

    def __init__(self, call: Callable[[], T], name: str = "zferry-background") -> None:
        self._call = call
        self._value: Optional[T] = None
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as error:  # handed to the caller by result()
            self._error = error

    def result(self) -> T:
        """The call's return value, once it ended; its exception, raised here, if it failed."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set by _run when no error
