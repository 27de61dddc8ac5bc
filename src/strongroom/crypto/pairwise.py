"""Conditional pairwise consistency tests on key generation (FIPS 140-3 IG 10.3.A; reliability
figure C5): every asymmetric key pair Strongroom generates (KMS keys and data key pairs, HSM key
pairs, import wrapping keys, an HSM node's identity key, the API port's self-signed TLS key and
the audit trail's signing key) is used once before it is returned: a signature made with the
private half must verify under the public half (RSA PKCS#1 v1.5 with SHA-256, ECDSA, Ed25519,
ML-DSA), or a secret encapsulated under the public half must come back from the private half
(ML-KEM). A failure raises :class:`PairwiseFailure`, naming the test, and the key is dropped:
it is never stored or returned.

Cost of the test (medians on the 2-CPU development VM; key generation's own in brackets), ms:
P-256 0.13 (0.02), P-384 0.89 (0.18), P-521 0.91 (0.16), secp256k1 0.82 (0.40), Ed25519 0.16
(0.04), RSA-2048 1.2 (39), RSA-3072 2.9 (200), RSA-4096 6.0 (755), ML-DSA-44/65/87 0.69/1.0/1.4
(0.12/0.21/0.30), ML-KEM-768/1024 0.09/0.12 (0.10/0.13). For every family the test costs less
than a KMS call's own round trip; it is a large share only of EC and ML-DSA key generation,
which is itself cheap.

Testing only: ``STRONGROOM_SELF_TEST_FAULT`` set to one test's name (:func:`test_name`, e.g.
``ECDSA P-384 pairwise consistency test``) makes that test check its signature against another
message (or compare another secret), so it fails through its real failure path.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, padding, rsa

from strongroom.crypto.hsm_symmetric import CryptoFailure
from strongroom.crypto.self_test import FAULT_ENV

__all__ = ["FAMILIES", "PairwiseFailure", "check", "family", "test_name"]

_MESSAGE = b"strongroom pairwise consistency test"
_CURVES = {
    "secp256r1": "ECDSA P-256",
    "secp384r1": "ECDSA P-384",
    "secp521r1": "ECDSA P-521",
    "secp256k1": "ECDSA secp256k1",
}
_MLDSA: dict[type[Any], str] = {
    mldsa.MLDSA44PrivateKey: "ML-DSA-44",
    mldsa.MLDSA65PrivateKey: "ML-DSA-65",
    mldsa.MLDSA87PrivateKey: "ML-DSA-87",
}
_MLKEM: dict[type[Any], str] = {
    mlkem.MLKEM768PrivateKey: "ML-KEM-768",
    mlkem.MLKEM1024PrivateKey: "ML-KEM-1024",
}
#: every key family that has a pairwise test, by its name in :func:`test_name`
FAMILIES = ("RSA", *_CURVES.values(), "Ed25519", *_MLDSA.values(), *_MLKEM.values())


class PairwiseFailure(CryptoFailure):
    """A new key pair failed its pairwise consistency test; the message names the test."""


def test_name(family_name: str) -> str:
    """The name of the pairwise test of ``family_name`` (one of :data:`FAMILIES`)."""
    return f"{family_name} pairwise consistency test"


def family(key: Any) -> str:
    """The family (:data:`FAMILIES`) of a private key."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVES:
        return _CURVES[key.curve.name]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "Ed25519"
    for kinds in (_MLDSA, _MLKEM):
        for kind, name in kinds.items():
            if isinstance(key, kind):
                return name
    raise PairwiseFailure(f"no pairwise consistency test for a {type(key).__name__}")


def check(key: Any) -> None:
    """Use a newly generated private key once; :class:`PairwiseFailure` if its halves do not
    fit together."""
    name = test_name(family(key))
    faulted = os.environ.get(FAULT_ENV) == name
    other = _MESSAGE + b"!" if faulted else _MESSAGE
    try:
        if isinstance(key, rsa.RSAPrivateKey):
            pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
            key.public_key().verify(key.sign(_MESSAGE, pkcs1, sha256), other, pkcs1, sha256)
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            ecdsa = ec.ECDSA(hashes.SHA256())
            key.public_key().verify(key.sign(_MESSAGE, ecdsa), other, ecdsa)
        elif isinstance(key, mlkem.MLKEM768PrivateKey | mlkem.MLKEM1024PrivateKey):
            shared_secret, ciphertext = key.public_key().encapsulate()
            opened_secret = bytes(32) if faulted else key.decapsulate(ciphertext)
            if not hmac.compare_digest(opened_secret, shared_secret):
                raise InvalidSignature
        else:  # Ed25519 and ML-DSA: sign(message), verify(signature, message)
            key.public_key().verify(key.sign(_MESSAGE), other)
    except (InvalidSignature, ValueError):
        raise PairwiseFailure(f"{name} failed: the new key was discarded") from None
