"""Pre-operational self-tests: known answers and pairwise consistency, run before ``serve`` or
an HSM node answers anything (as FIPS 140-3 asks of a cryptographic module; reliability figure
C5). A failure means the library under Strongroom does not compute what it should; the process
then refuses to start (``serve`` with exit status 3, an HSM node with 4, the failed test named
on standard error), so no cryptographic output ever comes from it.

Every algorithm Strongroom offers is tested, through the library that computes it for the
service (``hashlib``/``hmac`` and ``cryptography`` carry separate OpenSSL builds):

* symmetric (:mod:`._self_test_symmetric`): two draws of the continuously tested random
  generator (:mod:`strongroom.crypto.rng`); SHA-1, SHA-224, SHA-256, SHA-384, SHA-512 (FIPS
  180-2's "abc"); HMAC with each of them (RFC 2202, RFC 4231); HKDF-SHA-256 (RFC 5869);
  AES-256-GCM (the GCM specification's test case 14); AES-256-CBC (NIST SP 800-38A); AES key
  wrap with padding (RFC 5649); Strongroom's own key wrapping, message-key derivation and HSM
  store sealing, through the functions the service uses.
* asymmetric (:mod:`._self_test_asymmetric`): RSA PKCS#1 v1.5 (a NIST vector), RSA-PSS and
  RSA-OAEP (pairwise on that key); ECDSA on P-256, P-384, P-521 and secp256k1 and ECDH P-256
  (pairwise on fresh keys); Ed25519, Ed25519ph (RFC 8032), X25519 (RFC 7748); ML-DSA-44 and
  ML-KEM-768 (NIST's KAT files, and pairwise where the library randomises).

Each test in :data:`NAMES` can be made to fail, for the tests of this behaviour, by naming it
in :data:`FAULT_ENV`. Key pairs generated at run time get their own, conditional, pairwise test
(:mod:`strongroom.crypto.pairwise`). About 13 ms in all on the 2-CPU development VM (median;
ECDSA on four curves and ML-DSA take 5 ms each). They took 42-66 ms before ML-DSA, ML-KEM and
the RSA known answer were added, almost all of it a fresh RSA-2048 key, which is no longer made.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature

__all__ = [
    "FAULT_ENV",
    "MESSAGE",
    "NAMES",
    "SelfTestFailure",
    "accepts",
    "expect",
    "faulted",
    "refuses",
    "run_self_tests",
    "sign_verify",
]

#: every self-test's name, as a failure names it, in the order they run
NAMES = (
    "continuous random number generator test",
    "SHA-1",
    "SHA-224",
    "SHA-256",
    "SHA-384",
    "SHA-512",
    "HMAC-SHA-1",
    "HMAC-SHA-224",
    "HMAC-SHA-256",
    "HMAC-SHA-384",
    "HMAC-SHA-512",
    "HKDF-SHA-256",
    "AES-256-GCM encrypt",
    "AES-256-GCM decrypt",
    "AES-256-CBC encrypt",
    "AES-256-CBC decrypt",
    "AES-KWP wrap",
    "AES-KWP unwrap",
    "key wrapping",
    "message key derivation",
    "HSM store sealing",
    "RSA PKCS#1 v1.5",
    "RSA-PSS",
    "RSA-OAEP",
    "ECDSA P-256",
    "ECDSA P-384",
    "ECDSA P-521",
    "ECDSA secp256k1",
    "ECDH P-256",
    "Ed25519",
    "Ed25519ph",
    "X25519",
    "ML-DSA-44 key generation",
    "ML-DSA-44 signature verification",
    "ML-DSA-44 signature generation",
    "ML-KEM-768 key generation",
    "ML-KEM-768 decapsulation",
    "ML-KEM-768 encapsulation",
)

#: testing: the name of one self-test whose expected answer is altered (a fault that a sound
#: library cannot produce otherwise)
FAULT_ENV = "STRONGROOM_SELF_TEST_FAULT"
#: what the pairwise tests sign
MESSAGE = b"strongroom self-test"


class SelfTestFailure(Exception):
    """A self-test failed; the message names it (never key material)."""


def faulted(name: str) -> bool:
    """Whether the test called ``name`` is to fail (testing only: :data:`FAULT_ENV`)."""
    return os.environ.get(FAULT_ENV) == name


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


def expect(name: str, got: bytes, expected: bytes) -> None:
    """A known answer: ``got`` must be ``expected`` (altered under an injected fault)."""
    if faulted(name):
        expected = _flip(expected)
    if not hmac.compare_digest(got, expected):
        raise SelfTestFailure(name)


def accepts(name: str, verify: Callable[[bytes], object], signature: bytes) -> None:
    """A known valid signature: ``verify(signature)`` must accept it (a flipped one under an
    injected fault). ``verify`` raises :class:`InvalidSignature` or returns False to refuse."""
    try:
        ok = verify(_flip(signature) if faulted(name) else signature)
    except InvalidSignature:
        ok = False
    if ok is False:
        raise SelfTestFailure(name)


def refuses(name: str, verify: Callable[[bytes], object], signature: bytes) -> None:
    """A signature made for another message: ``verify(signature)`` must refuse it (a check
    that accepts everything fails here)."""
    try:
        ok = verify(signature)
    except InvalidSignature:
        return
    if ok is not False:
        raise SelfTestFailure(name)


def sign_verify(
    name: str, sign: Callable[[bytes], bytes], verify: Callable[[bytes, bytes], object]
) -> bytes:
    """Sign :data:`MESSAGE`; the signature must verify, and must not for another message.
    Returns the signature."""
    signature = sign(MESSAGE)
    accepts(name, lambda s: verify(s, MESSAGE), signature)
    refuses(name, lambda s: verify(s, MESSAGE + b"?"), signature)
    return signature


def run_self_tests() -> None:
    """Run every self-test; raise :class:`SelfTestFailure` naming the first that fails (an
    unexpected exception from the library fails the test too, named by its group)."""
    # imported here: the test modules import this one's checks
    from strongroom.crypto import _self_test_asymmetric, _self_test_symmetric

    for test in (*_self_test_symmetric.TESTS, *_self_test_asymmetric.TESTS):
        try:
            test()
        except SelfTestFailure:
            raise
        except Exception as exc:
            group = test.__name__.strip("_").replace("_", " ")
            raise SelfTestFailure(f"{group} ({type(exc).__name__})") from None
