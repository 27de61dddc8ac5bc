"""ED25519_PH_SHA_512 (RFC 8032 Ed25519ph, MessageType DIGEST) through boto3: RFC 8032's test
vector with its key imported, and interoperability with libsodium's own Ed25519ph both ways."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from nacl import bindings as sodium

from strongroom.crypto.ed25519ph import verify_digest
from tests.conftest import error_code
from tests.kms.test_import_e2e import _import

PH = "ED25519_PH_SHA_512"
# RFC 8032 section 7.3, "TEST abc"
RFC_SEED = bytes.fromhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
RFC_SIGNATURE = bytes.fromhex(
    "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
    "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
)


def _libsodium_sign(seed: bytes, message: bytes) -> bytes:
    _, secret = sodium.crypto_sign_seed_keypair(seed)
    state = sodium.crypto_sign_ed25519ph_state()
    sodium.crypto_sign_ed25519ph_update(state, message)
    return bytes(sodium.crypto_sign_ed25519ph_final_create(state, secret))


def _libsodium_verifies(public: bytes, message: bytes, signature: bytes) -> bool:
    state = sodium.crypto_sign_ed25519ph_state()
    sodium.crypto_sign_ed25519ph_update(state, message)
    try:
        return bool(sodium.crypto_sign_ed25519ph_final_verify(state, signature, public))
    except Exception:  # PyNaCl raises BadSignatureError
        return False


def _imported_key(kms: Any, seed: bytes) -> str:
    der = ed25519.Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    key = kms.create_key(KeySpec="ECC_NIST_EDWARDS25519", KeyUsage="SIGN_VERIFY",
                         Origin="EXTERNAL")["KeyMetadata"]["KeyId"]  # fmt: skip
    _import(kms, key, der, "RSA_AES_KEY_WRAP_SHA_256")
    return str(key)


def _sign(kms: Any, key: str, digest: bytes) -> bytes:
    out = kms.sign(KeyId=key, Message=digest, MessageType="DIGEST", SigningAlgorithm=PH)
    assert out["SigningAlgorithm"] == PH
    return bytes(out["Signature"])


def test_rfc8032_vector_through_an_imported_key(kms: Any) -> None:
    key = _imported_key(kms, RFC_SEED)
    assert _sign(kms, key, hashlib.sha512(b"abc").digest()) == RFC_SIGNATURE
    assert kms.verify(KeyId=key, Message=hashlib.sha512(b"abc").digest(), MessageType="DIGEST",
                      Signature=RFC_SIGNATURE, SigningAlgorithm=PH)["SignatureValid"]  # fmt: skip


def test_interoperates_with_libsodium(kms: Any) -> None:
    key = kms.create_key(KeySpec="ECC_NIST_EDWARDS25519", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
        "KeyId"
    ]
    spki = kms.get_public_key(KeyId=key)["PublicKey"]
    public = serialization.load_der_public_key(spki).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    message = os.urandom(300)
    digest = hashlib.sha512(message).digest()
    signature = _sign(kms, key, digest)
    assert _libsodium_verifies(public, message, signature)  # made inside, checked outside
    assert not _libsodium_verifies(public, message + b"!", signature)
    seed = os.urandom(32)
    outside = _libsodium_sign(seed, message)  # made outside, checked inside (imported key)
    imported = _imported_key(kms, seed)
    assert _sign(kms, imported, digest) == outside  # deterministic: the very same signature
    assert kms.verify(KeyId=imported, Message=digest, MessageType="DIGEST", Signature=outside,
                      SigningAlgorithm=PH)["SignatureValid"]  # fmt: skip
    tampered = bytearray(outside)
    tampered[40] ^= 0x01
    with pytest.raises(ClientError) as exc:
        kms.verify(KeyId=imported, Message=digest, MessageType="DIGEST",
                   Signature=bytes(tampered), SigningAlgorithm=PH)  # fmt: skip
    assert error_code(exc) == "KMSInvalidSignatureException"


def test_message_type_rules(kms: Any) -> None:
    key = kms.create_key(KeySpec="ECC_NIST_EDWARDS25519", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
        "KeyId"
    ]
    for message, message_type in ((b"raw message", "RAW"), (b"x" * 32, "DIGEST")):
        with pytest.raises(ClientError) as exc:
            kms.sign(KeyId=key, Message=message, MessageType=message_type, SigningAlgorithm=PH)
        assert error_code(exc) == "ValidationException"


def test_strict_verification() -> None:
    """S not reduced, a small-order R, a small-order public key: all refused."""
    seed = os.urandom(32)
    public, _ = sodium.crypto_sign_seed_keypair(seed)
    digest = hashlib.sha512(b"m").digest()
    good = _libsodium_sign(seed, b"m")
    assert verify_digest(public, digest, good)
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(good[32:], "little") + order  # the same S mod L, not reduced
    if s < 2**256:
        assert not verify_digest(public, digest, good[:32] + s.to_bytes(32, "little"))
    identity = (1).to_bytes(32, "little")  # the neutral element: small order
    assert not verify_digest(public, digest, identity + good[32:])
    assert not verify_digest(identity, digest, good)
