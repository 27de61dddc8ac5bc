"""Random bytes for keys, IVs and salts, with a continuous test (reliability figure C6; FIPS
140-2's continuous random number generator test): every draw of 8 bytes or more is compared
with the draw before it, and a repeat latches the generator into an error state in which every
later draw fails too (:class:`RngFailure`), so nothing made from a stuck generator leaves. The
source is the operating system's CSPRNG, for which a repeat is a fault, never chance (2⁻⁶⁴).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

__all__ = ["RngFailure", "random_bytes"]

#: the bytes of each draw compared with the previous draw's
_COMPARED = 8
#: testing (:data:`strongroom.crypto.self_test.FAULT_ENV`): a source stuck on one value
_STUCK = "continuous random number generator test"


class RngFailure(Exception):
    """The random generator failed its continuous test (now, or earlier: it stays failed)."""


class _Continuous:
    def __init__(self, source: Callable[[int], bytes]) -> None:
        self._source = source
        self._last = b""
        self._failed = False
        self._lock = threading.Lock()

    def draw(self, count: int) -> bytes:
        if self._failed:
            raise RngFailure("the random generator failed its continuous test")
        out = self._source(count)
        if count < _COMPARED:
            return out
        head = out[:_COMPARED]
        with self._lock:
            if self._failed or head == self._last:
                self._failed = True
                raise RngFailure("the random generator failed its continuous test")
            self._last = head
        return out


def _stuck(count: int) -> bytes:
    return bytes(count)


_generator = _Continuous(
    _stuck if os.environ.get("STRONGROOM_SELF_TEST_FAULT") == _STUCK else os.urandom
)


def random_bytes(count: int) -> bytes:
    """``count`` bytes from the OS CSPRNG; :class:`RngFailure` once a draw repeated."""
    return _generator.draw(count)
