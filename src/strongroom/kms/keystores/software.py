"""The software key store: KMS key material generated here and kept wrapped by the root key.

Encrypt derives a per-message key from the material and a random salt, seals with AES-256-GCM,
and binds the blob header and the canonical encryption context as AAD (see
:mod:`strongroom.kms.domain.ciphertext`).
"""

from __future__ import annotations

from strongroom.crypto import symmetric
from strongroom.kms.domain import ciphertext
from strongroom.rootkey import RootKey

__all__ = ["SoftwareKeyStore"]

MATERIAL_SIZE = 32


def _purpose(key_arn: str, version: int) -> str:
    return f"kms-key-material:{key_arn}:{version}"


class SoftwareKeyStore:
    """Material generation, wrapping, and blob encryption for AWS_KMS-origin keys."""

    def __init__(self, root: RootKey) -> None:
        self._root = root

    @staticmethod
    def new_material() -> bytes:
        return symmetric.random_bytes(MATERIAL_SIZE)

    def wrap_material(self, key_arn: str, version: int, material: bytes) -> bytes:
        return self._root.wrap(material, _purpose(key_arn, version))

    def unwrap_material(self, key_arn: str, version: int, wrapped: bytes) -> bytes:
        return self._root.unwrap(wrapped, _purpose(key_arn, version))

    def seal_for(self, purpose: str, key_arn: str, secret: bytes) -> bytes:
        """Wrap a secret bound to one key and one purpose (import tokens, reimport checks)."""
        return self._root.wrap(secret, f"kms-{purpose}:{key_arn}")

    def open_for(self, purpose: str, key_arn: str, sealed: bytes) -> bytes:
        """Undo :meth:`seal_for`; raises :class:`~strongroom.crypto.symmetric.CryptoError` if
        ``sealed`` was made for another key or purpose, or altered."""
        return self._root.unwrap(sealed, f"kms-{purpose}:{key_arn}")

    @staticmethod
    def encrypt(
        key_id: str, version: int, material: bytes, plaintext: bytes, context_aad: bytes
    ) -> bytes:
        """A new ciphertext blob for ``plaintext``."""
        salt = symmetric.random_bytes(symmetric.SALT_SIZE)
        nonce = symmetric.random_bytes(symmetric.NONCE_SIZE)
        header = ciphertext.encode_header(ciphertext.KIND_SOFTWARE, key_id, version, salt, nonce)
        key = symmetric.derive_message_key(material, salt)
        return header + symmetric.seal(key, nonce, plaintext, header + context_aad)

    @staticmethod
    def decrypt(blob: ciphertext.BlobHeader, material: bytes, context_aad: bytes) -> bytes:
        """The plaintext; raises :class:`~strongroom.crypto.symmetric.CryptoError` if altered."""
        key = symmetric.derive_message_key(material, blob.salt)
        return symmetric.open_sealed(key, blob.nonce, blob.body, blob.header + context_aad)
