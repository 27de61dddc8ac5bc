"""Symmetric recipes for KMS: random material, AES-256-GCM sealing, per-message key derivation.

These are the only symmetric primitives the KMS layers use. Failures of authentication are
reported as :class:`CryptoError` without detail, so callers cannot leak why a ciphertext failed.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto import rng

__all__ = [
    "NONCE_SIZE",
    "SALT_SIZE",
    "TAG_SIZE",
    "CryptoError",
    "derive_message_key",
    "open_sealed",
    "random_bytes",
    "seal",
    "unwrap",
    "wrap",
]

NONCE_SIZE = 12
TAG_SIZE = 16
SALT_SIZE = 16
_DERIVE_LABEL = b"strongroom/kms/message-key/v1"


class CryptoError(Exception):
    """Authentication failed or the input is not a well-formed ciphertext."""


#: ``random_bytes(count)``: ``count`` bytes from the operating system's CSPRNG, continuously
#: tested (:mod:`strongroom.crypto.rng`; the same function, not a wrapper: it is on every
#: Encrypt's path twice)
random_bytes = rng.random_bytes


def derive_message_key(material: bytes, salt: bytes) -> bytes:
    """A fresh 256-bit key for one message: HKDF-SHA256 (RFC 5869) with one output block.

    With a 32-byte output HKDF-Expand is a single HMAC, so extract and expand are written out
    as two HMAC-SHA256 calls; ``salt`` is random per message, so the GCM nonce bound of the
    material key never applies.
    """
    prk = hmac.digest(salt, material, hashlib.sha256)
    return hmac.digest(prk, _DERIVE_LABEL + b"\x01", hashlib.sha256)


def seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-GCM encrypt; returns ciphertext with the 16-byte tag appended."""
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """AES-GCM decrypt; raises :class:`CryptoError` on any failure."""
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError) as exc:
        raise CryptoError("authentication failed") from exc


def wrap(kek: bytes, secret: bytes, aad: bytes) -> bytes:
    """Wrap ``secret`` under ``kek`` (AES-256-GCM, random nonce): ``nonce || ct || tag``."""
    nonce = rng.random_bytes(NONCE_SIZE)
    return nonce + AESGCM(kek).encrypt(nonce, secret, aad)


def unwrap(kek: bytes, wrapped: bytes, aad: bytes) -> bytes:
    """Undo :func:`wrap`; raises :class:`CryptoError` if ``wrapped`` or ``aad`` was altered."""
    if len(wrapped) < NONCE_SIZE + TAG_SIZE:
        raise CryptoError("wrapped secret too short")
    return open_sealed(kek, wrapped[:NONCE_SIZE], wrapped[NONCE_SIZE:], aad)
