"""Ed25519ph (RFC 8032 §5.1, HashEdDSA with SHA-512, empty context) for a caller-given prehash.

KMS's ``ED25519_PH_SHA_512`` takes MessageType DIGEST: the message *is* ``PH(M) = SHA-512(M)``.
`cryptography` has only pure Ed25519, and libsodium's own Ed25519ph (``crypto_sign_init`` /
``update`` / ``final_create``, through PyNaCl) hashes the message itself, so it cannot start
from a digest. The signature is therefore put together here from libsodium's group and scalar
operations, step for step as RFC 8032 writes it; libsodium's multi-part Ed25519ph over the
message is the reference it must match exactly (signatures are deterministic), and RFC 8032's
test vector "TEST abc" is checked in the tests.

Verification is strict: S must be reduced (S < L), A and R must be canonical points that are
not of small order (libsodium's ``crypto_core_ed25519_is_valid_point``), and the cofactorless
equation ``[S]B = R + [k]A`` must hold.
"""

from __future__ import annotations

import hashlib
import hmac

from nacl import bindings as sodium

__all__ = ["sign_digest", "verify_digest"]

#: dom2(phflag=1, context="")
_DOM2 = b"SigEd25519 no Ed25519 collisions" + bytes([1, 0])
_L = 2**252 + 27742317777372353535851937790883648493


def _scalar(data: bytes) -> bytes:
    """A 64-byte little-endian integer reduced mod L (32 bytes)."""
    return bytes(sodium.crypto_core_ed25519_scalar_reduce(data))


def sign_digest(seed: bytes, prehash: bytes) -> bytes:
    """The Ed25519ph signature of the message whose SHA-512 digest is ``prehash``."""
    if len(seed) != 32 or len(prehash) != 64:
        raise ValueError("Ed25519ph needs a 32-byte seed and a 64-byte SHA-512 prehash")
    public, _ = sodium.crypto_sign_seed_keypair(seed)
    h = hashlib.sha512(seed).digest()
    clamped = bytearray(h[:32])
    clamped[0] &= 248
    clamped[31] &= 127
    clamped[31] |= 64
    secret = _scalar(bytes(clamped) + bytes(32))
    r = _scalar(hashlib.sha512(_DOM2 + h[32:] + prehash).digest())
    big_r = bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(r))
    k = _scalar(hashlib.sha512(_DOM2 + big_r + public + prehash).digest())
    s = bytes(
        sodium.crypto_core_ed25519_scalar_add(r, sodium.crypto_core_ed25519_scalar_mul(k, secret))
    )
    return big_r + s


def verify_digest(public: bytes, prehash: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519ph signature by ``public`` (32 bytes)."""
    if len(public) != 32 or len(prehash) != 64 or len(signature) != 64:
        return False
    big_r, s = signature[:32], signature[32:]
    if int.from_bytes(s, "little") >= _L:
        return False
    if not (
        sodium.crypto_core_ed25519_is_valid_point(public)
        and sodium.crypto_core_ed25519_is_valid_point(big_r)
    ):
        return False
    k = _scalar(hashlib.sha512(_DOM2 + big_r + public + prehash).digest())
    try:
        left = bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(s))
        right = bytes(
            sodium.crypto_core_ed25519_add(
                big_r, sodium.crypto_scalarmult_ed25519_noclamp(k, public)
            )
        )
    except (RuntimeError, ValueError):  # a zero scalar or an identity result
        return False
    return hmac.compare_digest(left, right)
