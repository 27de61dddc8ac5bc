"""Symmetric primitives of the HSM node: AES-GCM, AES-CBC-PAD, AES key wrap, HMAC, digests.

Small vetted recipes over pyca/cryptography's hazmat layer. Only this package may import hazmat;
the HSM node calls these functions and never touches a primitive directly. Errors raised here carry
no key material or plaintext.
"""

from __future__ import annotations

import hmac as std_hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, keywrap, padding
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.crypto import rng

__all__ = [
    "AES_KEY_SIZES",
    "DIGEST_NAMES",
    "GCM_IV_BYTES",
    "GCM_TAG_BYTES",
    "AesGcmKey",
    "CryptoFailure",
    "aes_cbc_pad_decrypt",
    "aes_cbc_pad_encrypt",
    "aes_unwrap_pad",
    "aes_wrap_pad",
    "digest",
    "hash_algorithm",
    "hkdf_sha256",
    "hmac_sign",
    "hmac_verify",
    "random_bytes",
]

AES_KEY_SIZES = (16, 24, 32)
GCM_IV_BYTES = 12
GCM_TAG_BYTES = 16
_CBC_IV_BYTES = 16

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
DIGEST_NAMES = tuple(_HASHES)


class CryptoFailure(Exception):
    """A cryptographic operation failed (bad tag, bad padding, malformed input)."""


def hash_algorithm(name: str) -> hashes.HashAlgorithm:
    """The hash algorithm called ``name`` (sha1, sha224, sha256, sha384, sha512)."""
    try:
        return _HASHES[name]()
    except KeyError:
        raise CryptoFailure(f"unsupported hash function {name!r}") from None


#: ``random_bytes(length)``: ``length`` bytes from the operating system's CSPRNG, continuously
#: tested (:mod:`strongroom.crypto.rng`)
random_bytes = rng.random_bytes


def _check_aes_key(key: bytes) -> None:
    if len(key) not in AES_KEY_SIZES:
        raise CryptoFailure("AES keys are 16, 24 or 32 bytes")


class AesGcmKey:
    """An AES key ready for AES-GCM with a 12-byte IV generated here, prepended to the output."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        _check_aes_key(key)
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes, aad: bytes | None = None) -> bytes:
        """IV || ciphertext || 16-byte tag."""
        iv = rng.random_bytes(GCM_IV_BYTES)
        return iv + self._aead.encrypt(iv, plaintext, aad or None)

    def decrypt(self, blob: bytes, aad: bytes | None = None) -> bytes:
        """Inverse of :meth:`encrypt`; raises :class:`CryptoFailure` if anything was altered."""
        if len(blob) < GCM_IV_BYTES + GCM_TAG_BYTES:
            raise CryptoFailure("ciphertext too short")
        try:
            return self._aead.decrypt(blob[:GCM_IV_BYTES], blob[GCM_IV_BYTES:], aad or None)
        except InvalidTag:
            raise CryptoFailure("authentication failed") from None


def aes_cbc_pad_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """AES-CBC with PKCS#7 padding; a random 16-byte IV is prepended."""
    _check_aes_key(key)
    iv = rng.random_bytes(_CBC_IV_BYTES)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv + enc.update(padded) + enc.finalize()


def aes_cbc_pad_decrypt(key: bytes, blob: bytes) -> bytes:
    """Inverse of :func:`aes_cbc_pad_encrypt`."""
    _check_aes_key(key)
    body = blob[_CBC_IV_BYTES:]
    if len(blob) < 2 * _CBC_IV_BYTES or len(body) % 16:
        raise CryptoFailure("ciphertext length is not a whole number of blocks")
    dec = Cipher(algorithms.AES(key), modes.CBC(blob[:_CBC_IV_BYTES])).decryptor()
    padded = dec.update(body) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise CryptoFailure("bad padding") from None


def aes_wrap_pad(kek: bytes, key: bytes) -> bytes:
    """AES key wrap with padding (RFC 5649, NIST SP 800-38F KWP)."""
    _check_aes_key(kek)
    return keywrap.aes_key_wrap_with_padding(kek, key)


def aes_unwrap_pad(kek: bytes, wrapped: bytes) -> bytes:
    """Inverse of :func:`aes_wrap_pad`; raises :class:`CryptoFailure` on an integrity failure."""
    _check_aes_key(kek)
    try:
        return keywrap.aes_key_unwrap_with_padding(kek, wrapped)
    except (keywrap.InvalidUnwrap, ValueError):
        raise CryptoFailure("key unwrap failed") from None


def hmac_sign(key: bytes, hash_name: str, data: bytes) -> bytes:
    """HMAC of ``data`` under ``key``."""
    mac = crypto_hmac.HMAC(key, hash_algorithm(hash_name))
    mac.update(data)
    return mac.finalize()


def hmac_verify(key: bytes, hash_name: str, data: bytes, tag: bytes) -> bool:
    """Constant-time check of an HMAC tag."""
    return std_hmac.compare_digest(hmac_sign(key, hash_name, data), tag)


def digest(hash_name: str, data: bytes) -> bytes:
    """Message digest of ``data``."""
    h = hashes.Hash(hash_algorithm(hash_name))
    h.update(data)
    return h.finalize()


def hkdf_sha256(key: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869) with an empty salt: derive a purpose-bound sub-key."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)
