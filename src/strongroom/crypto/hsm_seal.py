"""Sealing of an HSM node's store at rest: AES-256-GCM under sub-keys of the node key.

The node key (32 random bytes in the node's data directory) never leaves the node. Every stored
object, user table and audit block is sealed under a sub-key derived for its purpose, with the
object's name as associated data, so a file altered, truncated or moved to another name does not
open.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto import rng
from strongroom.crypto.hsm_symmetric import GCM_IV_BYTES, GCM_TAG_BYTES, hkdf_sha256

__all__ = ["NODE_KEY_BYTES", "SealBroken", "Sealer", "new_node_key"]

NODE_KEY_BYTES = 32
_FORMAT = b"\x01"


class SealBroken(Exception):
    """A sealed blob failed authentication: altered, truncated, or sealed under another key."""


def new_node_key() -> bytes:
    """Fresh random node key."""
    return rng.random_bytes(NODE_KEY_BYTES)


class Sealer:
    """Seal and open blobs under a purpose-bound sub-key of the node key."""

    __slots__ = ("_aead",)

    def __init__(self, node_key: bytes, purpose: str) -> None:
        if len(node_key) != NODE_KEY_BYTES:
            raise ValueError("node key must be 32 bytes")
        self._aead = AESGCM(hkdf_sha256(node_key, b"strongroom-hsm-seal:" + purpose.encode()))

    def seal(self, plaintext: bytes, name: bytes) -> bytes:
        """format byte || IV || ciphertext || tag, bound to ``name``."""
        iv = rng.random_bytes(GCM_IV_BYTES)
        return _FORMAT + iv + self._aead.encrypt(iv, plaintext, _FORMAT + name)

    def open(self, blob: bytes, name: bytes) -> bytes:
        """Inverse of :meth:`seal`; raises :class:`SealBroken` on any alteration."""
        if len(blob) < 1 + GCM_IV_BYTES + GCM_TAG_BYTES or blob[:1] != _FORMAT:
            raise SealBroken("sealed blob is malformed")
        iv = blob[1 : 1 + GCM_IV_BYTES]
        try:
            return self._aead.decrypt(iv, blob[1 + GCM_IV_BYTES :], _FORMAT + name)
        except InvalidTag:
            raise SealBroken("sealed blob failed authentication") from None
