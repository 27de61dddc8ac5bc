"""Random bytes for keys, IVs and salts, with a continuous test (reliability figure C6; FIPS
140-2's continuous random number generator test): every draw of 8 bytes or more is compared
with the draw before it, and a repeat latches the generator into an error state in which every
later draw fails too (:class:`RngFailure`), so nothing made from a stuck generator leaves. The
source is the operating system's CSPRNG, for which a repeat is a fault, never chance (2⁻⁶⁴).
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["RngFailure", "random_bytes"]

#: the bytes of each draw compared with the previous draw's
_COMPARED = 8
#: testing (:data:`strongroom.crypto.self_test.FAULT_ENV`): a source stuck on one value
_STUCK = "continuous random number generator test"


class RngFailure(Exception):
    """The random generator failed its continuous test (now, or earlier: it stays failed)."""


class _Continuous:
    # No lock: threads racing here can at worst compare a draw with an older one than the
    # last (a repeat missed, never one made up); a lock cost more than the test itself.
    def __init__(self, source: Callable[[int], bytes]) -> None:
        self._source = source
        self._last = b""
        self._failed = False

    def draw(self, count: int) -> bytes:
        if self._failed:
            raise RngFailure("the random generator failed its continuous test")
        out = self._source(count)
        if count >= _COMPARED:
            head = out[:_COMPARED]
            if head == self._last:
                self._failed = True
                raise RngFailure("the random generator failed its continuous test")
            self._last = head
        return out


def _stuck(count: int) -> bytes:
    return bytes(count)


_generator = _Continuous(
    _stuck if os.environ.get("STRONGROOM_SELF_TEST_FAULT") == _STUCK else os.urandom
)


#: ``random_bytes(count)``: ``count`` bytes from the OS CSPRNG; :class:`RngFailure` once a
#: draw repeated (the generator's bound method itself: one call less on every draw)
random_bytes = _generator.draw
