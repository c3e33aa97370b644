"""A background thread that repeats one call at a fixed period while a block of work runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self


class Periodic:
    """Calls ``tick`` every ``period_s`` in a daemon thread from ``__enter__`` until ``__exit__`` (which waits for
    a call in progress) or until ``tick`` returns False. Leases are renewed this way, a third of their length apart,
    so one slow database round-trip does not lose them."""

    def __init__(self, tick: Callable[[], bool], period_s: float, name: str) -> None:
        self._tick = tick
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._period_s) and self._tick():
            pass
