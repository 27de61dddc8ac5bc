"""Signing the audit trail's digests: Ed25519, with an exportable public key.

The trail key is 32 random bytes kept in ``<data-dir>/audit-signing.key`` (mode 0600). Its
public half is published as PEM (``strongroom audit public-key``) so a verifier can check the
trail without the private key, and is named in each digest by its SHA-256 fingerprint.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from strongroom.crypto import pairwise
from strongroom.files import create_secret_once

__all__ = ["TrailSigner", "TrailVerifier", "load_or_create_signer"]

_FILE = "audit-signing.key"
_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw


class TrailVerifier:
    """Checks digest signatures with a trail public key."""

    def __init__(self, public_key: bytes) -> None:
        self._key = Ed25519PublicKey.from_public_bytes(public_key)
        self.fingerprint = hashlib.sha256(public_key).hexdigest()[:32]

    @classmethod
    def from_pem(cls, pem: bytes) -> TrailVerifier:
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return cls(key.public_bytes(_RAW, _RAW_PUB))

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class TrailSigner:
    """Signs digests with the trail's private key."""

    def __init__(self, private_key: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(private_key)
        self.public_key = self._key.public_key().public_bytes(_RAW, _RAW_PUB)
        self.fingerprint = hashlib.sha256(self.public_key).hexdigest()[:32]

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def verifier(self) -> TrailVerifier:
        return TrailVerifier(self.public_key)

    def public_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def load_or_create_signer(data_dir: Path) -> TrailSigner:
    """Load ``<data-dir>/audit-signing.key``, creating it (mode 0600) if absent; safe when
    several worker processes start at once (the first creator wins)."""
    path = data_dir / _FILE
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pairwise.check(key)
        raw = key.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        create_secret_once(path, raw)
    data = path.read_bytes()
    if len(data) != 32:
        raise RuntimeError(f"{path} is not a Strongroom audit signing key (wrong size)")
    return TrailSigner(data)
