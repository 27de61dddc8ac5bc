"""Recipes for importing key material (BYOK): the RSA wrapping key pair and unwrapping.

WrappingAlgorithm RSAES_OAEP_SHA_1 / RSAES_OAEP_SHA_256 carry the material itself in one
RSAES-OAEP block; RSA_AES_KEY_WRAP_SHA_1 / _SHA_256 carry an ephemeral AES-256 key in the first
modulus-sized block and the material wrapped by it with AES Key Wrap with Padding (RFC 5649)
after it. The RSA key pair comes from the HSM's vetted recipe (:mod:`strongroom.crypto.asymmetric`).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import keywrap

from strongroom.crypto import asymmetric
from strongroom.crypto.hsm_symmetric import CryptoFailure

__all__ = ["UnwrapFailed", "new_wrapping_pair", "unwrap_material"]

_SPEC_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}


class UnwrapFailed(Exception):
    """The wrapped material could not be unwrapped with this wrapping key and algorithm."""


def new_wrapping_pair(wrapping_spec: str) -> tuple[bytes, bytes]:
    """A fresh wrapping key pair: (PKCS#8 DER private, SPKI DER public)."""
    pair = asymmetric.generate_rsa(_SPEC_BITS[wrapping_spec])
    return pair.private_der, pair.public_der


def unwrap_material(private_der: bytes, algorithm: str, wrapped: bytes) -> bytes:
    """The material a user wrapped for ``algorithm``; :class:`UnwrapFailed` otherwise."""
    key = asymmetric.load_private(private_der)
    hash_name = "sha1" if algorithm.endswith("SHA_1") else "sha256"
    try:
        if algorithm.startswith("RSAES_OAEP"):
            return key.decrypt_oaep(hash_name, wrapped)
        modulus_bytes = len(wrapped) - _kwp_length(wrapped, private_der)
        aes_key = key.decrypt_oaep(hash_name, wrapped[:modulus_bytes])
        if len(aes_key) not in (16, 24, 32):
            raise UnwrapFailed
        return keywrap.aes_key_unwrap_with_padding(aes_key, wrapped[modulus_bytes:])
    except (CryptoFailure, keywrap.InvalidUnwrap, ValueError) as exc:
        raise UnwrapFailed from exc


def _kwp_length(wrapped: bytes, private_der: bytes) -> int:
    bits = asymmetric.pair_from_private(private_der).info.get("modulus-size-bits", 0)
    modulus_bytes = int(bits) // 8
    if len(wrapped) <= modulus_bytes:
        raise UnwrapFailed
    return len(wrapped) - modulus_bytes
