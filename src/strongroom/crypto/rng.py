"""Random bytes for keys, IVs, salts, tokens and secrets, with a continuous test (reliability
figure C6; FIPS 140-2's continuous random number generator test): every draw of 8 bytes or more
is compared with the draw before it, and a repeat latches the generator into an error state in
which every later draw fails too (:class:`RngFailure`), so nothing made from a stuck generator
leaves. The source is the operating system's CSPRNG, for which a repeat is a fault, never chance
(2⁻⁶⁴).

Every security value Strongroom draws itself comes from here: key material, IVs, nonces and
salts (:func:`random_bytes`), and the tokens, passwords, secret keys and values that must not be
guessed (:func:`token_hex`, :func:`token_urlsafe`, :func:`choice_string`, :func:`random_int`),
each made from one or more tested draws. Identifiers that need only be unique (key IDs, request
and event IDs, HSM key handles, temporary file names) and the bytes that overwrite a zeroised
key file still come from ``os.urandom``/``uuid4`` directly. Not covered: the draws OpenSSL makes
for itself (asymmetric key generation, ECDSA nonces, PSS salts, OAEP seeds, ML-DSA's hedging,
ML-KEM encapsulation, X25519 ephemeral keys).

Testing only, two faults (both read once, when this module is imported):
``STRONGROOM_SELF_TEST_FAULT`` set to ``continuous random number generator test`` makes the
source stuck from the start (the start-up self-test then fails); and
:data:`REPEAT_FILE_ENV` names a file: while that file exists, each draw repeats the previous
one, which latches the generator of a running process. Unset, the source is ``os.urandom``
itself, with no test hook on the path of a draw.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Callable

__all__ = [
    "REPEAT_FILE_ENV",
    "RngFailure",
    "choice_string",
    "random_bytes",
    "random_int",
    "token_hex",
    "token_urlsafe",
]

log = logging.getLogger(__name__)

#: the bytes of each draw compared with the previous draw's
_COMPARED = 8
#: testing (:data:`strongroom.crypto.self_test.FAULT_ENV`): a source stuck on one value
_STUCK = "continuous random number generator test"
#: testing only: while the file this names exists, every draw repeats the one before it
REPEAT_FILE_ENV = "STRONGROOM_TESTING_RNG_REPEAT_FILE"


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
                log.critical(
                    "the random generator repeated a draw: it is latched, and every call "
                    "that needs random bytes fails until the process is restarted"
                )
                raise RngFailure("the random generator failed its continuous test")
            self._last = head
        return out


def _stuck(count: int) -> bytes:
    return bytes(count)


def _repeating_while(trigger: str) -> Callable[[int], bytes]:
    """The OS source, except that while ``trigger`` exists a draw begins with the previous
    compared draw (a repeated block, as a failing source would give)."""
    last = b""

    def source(count: int) -> bytes:
        nonlocal last
        out = os.urandom(count)
        if last and os.path.exists(trigger):
            out = (last + out)[:count]
        if count >= _COMPARED:
            last = out
        return out

    return source


def _source() -> Callable[[int], bytes]:
    if os.environ.get("STRONGROOM_SELF_TEST_FAULT") == _STUCK:
        return _stuck
    trigger = os.environ.get(REPEAT_FILE_ENV)
    return _repeating_while(trigger) if trigger else os.urandom


_generator = _Continuous(_source())


#: ``random_bytes(count)``: ``count`` bytes from the OS CSPRNG; :class:`RngFailure` once a
#: draw repeated (the generator's bound method itself: one call less on every draw)
random_bytes = _generator.draw


def token_hex(nbytes: int) -> str:
    """``nbytes`` tested random bytes as ``2 * nbytes`` hex digits (``secrets.token_hex``)."""
    return random_bytes(nbytes).hex()


def token_urlsafe(nbytes: int) -> str:
    """``nbytes`` tested random bytes in unpadded URL-safe base64 (``secrets.token_urlsafe``)."""
    return base64.urlsafe_b64encode(random_bytes(nbytes)).rstrip(b"=").decode("ascii")


def choice_string(alphabet: str, length: int) -> str:
    """``length`` characters of ``alphabet`` (at most 256), each equally likely and independent:
    one byte a character, the bytes that would bias the choice (those at or above the largest
    multiple of ``len(alphabet)`` up to 256) rejected: ``secrets.choice`` in a loop, with tested
    draws."""
    size = len(alphabet)
    if not 0 < size <= 256:
        raise ValueError("the alphabet must have 1 to 256 characters")
    limit = 256 - 256 % size
    out: list[str] = []
    while len(out) < length:
        wanted = length - len(out)
        for byte in random_bytes(max(_COMPARED, wanted + wanted // 2)):
            if byte < limit:
                out.append(alphabet[byte % size])
                if len(out) == length:
                    break
    return "".join(out)


def random_int(bits: int) -> int:
    """A non-negative integer of at most ``bits`` tested random bits (drawn as whole bytes, at
    least 8 of them, so that the draw is compared)."""
    nbytes = max(_COMPARED, -(-bits // 8))
    return int.from_bytes(random_bytes(nbytes), "big") >> (8 * nbytes - bits)
