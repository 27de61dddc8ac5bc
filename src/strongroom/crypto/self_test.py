"""Pre-operational self-tests: known answers and pairwise consistency, run before ``serve`` or
an HSM node answers anything (as FIPS 140-3 asks of a cryptographic module; reliability figure
C5). A failure means the library under Strongroom does not compute what it should; the process
then refuses to start (``serve`` with exit status 3, an HSM node with 4, the failed test named
on standard error), so no cryptographic output ever comes from it.

Known answers are published vectors: SHA-256 of "abc" (FIPS 180-2, B.1), HMAC-SHA-256 (RFC
4231, test case 1), HKDF-SHA-256 (RFC 5869, test case 1), AES-256-GCM encryption and
decryption (the GCM specification's test case 14: zero key, zero IV, one zero block). Two draws
go through the continuously tested random generator (:mod:`strongroom.crypto.rng`). Sign and
verify with each asymmetric family, RSA-OAEP and ECDH are checked pairwise on fresh keys.
Strongroom's own key derivation and sealing are checked through the functions the service uses.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.crypto import rng, symmetric

__all__ = ["FAULT_ENV", "NAMES", "SelfTestFailure", "run_self_tests"]

#: every self-test's name, as a failure names it
NAMES = (
    "SHA-256",
    "HMAC-SHA-256",
    "HKDF-SHA-256",
    "AES-256-GCM encrypt",
    "AES-256-GCM decrypt",
    "key wrapping",
    "message key derivation",
    "ECDSA P-256",
    "Ed25519",
    "RSA-PSS",
    "RSA-OAEP",
    "ECDH P-256",
    "continuous random number generator test",
)

#: testing: the name of one self-test whose expected answer is altered (a fault that a sound
#: library cannot produce otherwise)
FAULT_ENV = "STRONGROOM_SELF_TEST_FAULT"


class SelfTestFailure(Exception):
    """A self-test failed; the message names it (never key material)."""


def _expect(name: str, got: bytes, expected: bytes) -> None:
    if os.environ.get(FAULT_ENV) == name:
        expected = bytes([expected[0] ^ 1]) + expected[1:]
    if not hmac.compare_digest(got, expected):
        raise SelfTestFailure(name)


def _sha256() -> None:
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    _expect("SHA-256", hashlib.sha256(b"abc").digest(), bytes.fromhex(expected))


def _hmac_sha256() -> None:
    expected = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    got = hmac.digest(b"\x0b" * 20, b"Hi There", hashlib.sha256)
    _expect("HMAC-SHA-256", got, bytes.fromhex(expected))


def _hkdf_sha256() -> None:
    expected = (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    salt, info = bytes(range(13)), bytes(range(0xF0, 0xFA))
    got = HKDF(hashes.SHA256(), 42, salt, info).derive(b"\x0b" * 22)
    _expect("HKDF-SHA-256", got, bytes.fromhex(expected))


def _aes_gcm() -> None:
    expected = "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
    key, iv = bytes(32), bytes(12)
    sealed = AESGCM(key).encrypt(iv, bytes(16), None)
    _expect("AES-256-GCM encrypt", sealed, bytes.fromhex(expected))
    try:
        opened = AESGCM(key).decrypt(iv, bytes.fromhex(expected), None)
    except InvalidTag:
        raise SelfTestFailure("AES-256-GCM decrypt") from None
    _expect("AES-256-GCM decrypt", opened, bytes(16))
    tampered = bytes.fromhex(expected)[:-1] + b"\x00"
    try:
        AESGCM(key).decrypt(iv, tampered, None)
    except InvalidTag:
        return
    raise SelfTestFailure("AES-256-GCM tag check")


def _random() -> None:
    """Two draws through the continuously tested generator: a stuck source fails here."""
    try:
        first, second = rng.random_bytes(16), rng.random_bytes(16)
    except rng.RngFailure:
        raise SelfTestFailure("continuous random number generator test") from None
    if first == second:  # pragma: no cover - the generator itself refuses a repeat
        raise SelfTestFailure("continuous random number generator test")


def _service_sealing() -> None:
    """Strongroom's own wrap/unwrap and message-key derivation, round trip and tamper check."""
    kek = symmetric.random_bytes(32)
    wrapped = symmetric.wrap(kek, b"self-test", b"purpose")
    _expect("key wrapping", symmetric.unwrap(kek, wrapped, b"purpose"), b"self-test")
    try:
        symmetric.unwrap(kek, wrapped, b"other purpose")
    except symmetric.CryptoError:
        pass
    else:
        raise SelfTestFailure("key wrapping AAD check")
    one = symmetric.derive_message_key(kek, bytes(16))
    _expect("message key derivation", one, symmetric.derive_message_key(kek, bytes(16)))


def _pairwise_signatures() -> None:
    message = b"strongroom self-test"
    ecdsa = ec.generate_private_key(ec.SECP256R1())
    edwards = ed25519.Ed25519PrivateKey.generate()
    rsa_key = rsa.generate_private_key(65537, 2048)
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
    checks: list[tuple[str, Callable[[], None]]] = [
        (
            "ECDSA P-256",
            lambda: ecdsa.public_key().verify(
                ecdsa.sign(message, ec.ECDSA(hashes.SHA256())), message, ec.ECDSA(hashes.SHA256())
            ),
        ),
        ("Ed25519", lambda: edwards.public_key().verify(edwards.sign(message), message)),
        (
            "RSA-PSS",
            lambda: rsa_key.public_key().verify(
                rsa_key.sign(message, pss, hashes.SHA256()), message, pss, hashes.SHA256()
            ),
        ),
    ]
    for name, check in checks:
        if os.environ.get(FAULT_ENV) == name:
            raise SelfTestFailure(name)
        try:
            check()
        except InvalidSignature:
            raise SelfTestFailure(name) from None
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    opened = rsa_key.decrypt(rsa_key.public_key().encrypt(message, oaep), oaep)
    _expect("RSA-OAEP", opened, message)
    peer = ec.generate_private_key(ec.SECP256R1())
    shared = ecdsa.exchange(ec.ECDH(), peer.public_key())
    _expect("ECDH P-256", shared, peer.exchange(ec.ECDH(), ecdsa.public_key()))


_TESTS: tuple[Callable[[], None], ...] = (
    _random,
    _sha256,
    _hmac_sha256,
    _hkdf_sha256,
    _aes_gcm,
    _service_sealing,
    _pairwise_signatures,
)


def run_self_tests() -> None:
    """Run every self-test; raise :class:`SelfTestFailure` naming the first that fails."""
    for test in _TESTS:
        test()
