"""Injectable clocks: the system clock, and a manual one tests move forward."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "OffsetFileClock", "SystemClock"]


class Clock(Protocol):
    """Wall-clock seconds since the epoch (UTC)."""

    def now(self) -> float: ...


class SystemClock:
    """The real time."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


class OffsetFileClock:
    """The real time plus an offset in seconds read from a file (absent file: no offset).

    Lets end-to-end tests move a running server's domain clock forward (deletion windows,
    rotations) without waiting; never used unless ``serve --clock-offset-file`` is given.
    """

    def __init__(self, path: str) -> None:
        self._path = path

    def now(self) -> float:
        try:
            with open(self._path, encoding="ascii") as handle:
                offset = float(handle.read().strip() or 0)
        except (OSError, ValueError):
            offset = 0.0
        return time.time() + offset
