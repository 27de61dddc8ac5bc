"""Wycheproof vectors through Strongroom's own code path for caller-supplied crypto input:
Verify (DER ECDSA, RSA PKCS#1 v1.5 and PSS, Ed25519), RSA-OAEP Decrypt, DeriveSharedSecret.

The functions called are the ones the operations call (``verify_signature``,
``oaep_decrypt_or_fail``, ``derive_or_fail``), so a vector gets exactly the AWS answer a
caller would: success, KMSInvalidSignatureException, InvalidCiphertextException, or
ValidationException.

Rule for "acceptable" vectors (legacy encodings, weak parameters, compressed points): either
answer is allowed, but it must be one of the operation's documented answers (never another
exception), and an accepted ECDH result must equal the vector's shared secret.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.errors import AwsError
from strongroom.kms.ops.asymmetric import oaep_decrypt_or_fail, verify_signature
from strongroom.kms.ops.keypairs import derive_or_fail

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "wycheproof"  # tests/vectors

_SIGNING = {
    "ecdsa_secp256r1_sha256_test.json": "ECDSA_SHA_256",
    "ecdsa_secp384r1_sha384_test.json": "ECDSA_SHA_384",
    "ecdsa_secp521r1_sha512_test.json": "ECDSA_SHA_512",
    "ecdsa_secp256k1_sha256_test.json": "ECDSA_SHA_256",
    "ed25519_test.json": "ED25519_SHA_512",
    "rsa_signature_2048_sha256_test.json": "RSASSA_PKCS1_V1_5_SHA_256",
    "rsa_signature_3072_sha256_test.json": "RSASSA_PKCS1_V1_5_SHA_256",
    "rsa_signature_3072_sha384_test.json": "RSASSA_PKCS1_V1_5_SHA_384",
    "rsa_signature_3072_sha512_test.json": "RSASSA_PKCS1_V1_5_SHA_512",
    "rsa_signature_4096_sha384_test.json": "RSASSA_PKCS1_V1_5_SHA_384",
    "rsa_signature_4096_sha512_test.json": "RSASSA_PKCS1_V1_5_SHA_512",
    # KMS's PSS is MGF1 with the message hash and salt length = hash length only.
    "rsa_pss_2048_sha256_mgf1_32_test.json": "RSASSA_PSS_SHA_256",
    "rsa_pss_2048_sha384_mgf1_48_test.json": "RSASSA_PSS_SHA_384",
    "rsa_pss_3072_sha256_mgf1_32_test.json": "RSASSA_PSS_SHA_256",
    "rsa_pss_4096_sha256_mgf1_32_test.json": "RSASSA_PSS_SHA_256",
    "rsa_pss_4096_sha384_mgf1_48_test.json": "RSASSA_PSS_SHA_384",
    "rsa_pss_4096_sha512_mgf1_64_test.json": "RSASSA_PSS_SHA_512",
}
_OAEP = {
    "rsa_oaep_2048_sha1_mgf1sha1_test.json": "RSAES_OAEP_SHA_1",
    "rsa_oaep_2048_sha256_mgf1sha256_test.json": "RSAES_OAEP_SHA_256",
    "rsa_oaep_3072_sha256_mgf1sha256_test.json": "RSAES_OAEP_SHA_256",
    "rsa_oaep_4096_sha256_mgf1sha256_test.json": "RSAES_OAEP_SHA_256",
}
_ECDH = [
    "ecdh_secp256r1_test.json",
    "ecdh_secp384r1_test.json",
    "ecdh_secp521r1_test.json",
]


def _load(name: str) -> dict[str, Any]:
    return dict(json.loads((VECTORS / name).read_text()))


def _answer(call: Any) -> str:
    try:
        call()
    except AwsError as exc:
        return exc.code
    return "ok"


@pytest.mark.parametrize(("name", "algorithm"), sorted(_SIGNING.items()))
def test_verify_vectors(name: str, algorithm: str) -> None:
    data = _load(name)
    counts = {"valid": 0, "invalid": 0, "acceptable": 0}
    for group in data["testGroups"]:
        public = bytes.fromhex(group["publicKeyDer"])
        for case in group["tests"]:
            msg, sig = bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"])
            if not msg:
                continue  # KMS messages are 1-4096 bytes; the edge refuses an empty one.
            got = _answer(
                lambda p=public, m=msg, s=sig: verify_signature(
                    p, algorithm, m, "RAW", s, is_private=False
                )
            )
            expected = {"valid": {"ok"}, "invalid": {"KMSInvalidSignatureException"}}.get(
                case["result"], {"ok", "KMSInvalidSignatureException"}
            )
            assert got in expected, (name, case["tcId"], case["comment"], got)
            counts[case["result"]] += 1
    assert counts["valid"] > 0 and counts["invalid"] > 0


@pytest.mark.parametrize(("name", "algorithm"), sorted(_OAEP.items()))
def test_oaep_vectors(name: str, algorithm: str) -> None:
    data = _load(name)
    for group in data["testGroups"]:
        private = bytes.fromhex(group["privateKeyPkcs8"])
        for case in group["tests"]:
            if case["label"]:
                continue  # KMS uses the empty label only.
            ct = bytes.fromhex(case["ct"])
            try:
                plaintext = oaep_decrypt_or_fail(private, algorithm, ct)
                got = "ok"
            except AwsError as exc:
                got, plaintext = exc.code, b""
            if case["result"] == "valid":
                assert got == "ok" and plaintext == bytes.fromhex(case["msg"]), case["tcId"]
            elif case["result"] == "invalid":
                assert got == "InvalidCiphertextException", case["tcId"]
            else:
                assert got in ("ok", "InvalidCiphertextException"), case["tcId"]


def _private_der(curve: str, scalar_hex: str) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    curves = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1(), "secp521r1": ec.SECP521R1()}
    key = ec.derive_private_key(int(scalar_hex, 16), curves[curve])
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize("name", _ECDH)
def test_ecdh_vectors(name: str) -> None:
    data = _load(name)
    for group in data["testGroups"]:
        for case in group["tests"]:
            scalar = int(case["private"], 16)
            if scalar == 0:
                continue
            private = _private_der(group["curve"], case["private"])
            try:
                shared = derive_or_fail(private, bytes.fromhex(case["public"]))
                got = "ok"
            except AwsError as exc:
                got, shared = exc.code, b""
            if case["result"] == "valid":
                assert got == "ok" and shared.hex() == case["shared"], case["tcId"]
            elif case["result"] == "invalid":
                assert got == "ValidationException", (case["tcId"], case["comment"])
            else:
                assert got in ("ok", "ValidationException"), case["tcId"]
                if got == "ok":
                    assert shared.hex() == case["shared"], case["tcId"]
