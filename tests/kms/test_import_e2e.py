"""Imported key material end to end: a user wraps material with ``cryptography`` and imports it."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.conftest import Server, error_code

DAY = 86_400


def _wrap(public_der: bytes, algorithm: str, material: bytes) -> bytes:
    pub = serialization.load_der_public_key(public_der)
    assert isinstance(pub, rsa.RSAPublicKey)
    algo = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()
    oaep = padding.OAEP(padding.MGF1(algo), algo, None)
    if algorithm.startswith("RSAES_OAEP"):
        return pub.encrypt(material, oaep)
    aes = os.urandom(32)
    return pub.encrypt(aes, oaep) + keywrap.aes_key_wrap_with_padding(aes, material)


def _import(kms: Any, key: str, material: bytes, algorithm: str, spec: str = "RSA_2048",
            **extra: Any) -> Any:  # fmt: skip
    params = kms.get_parameters_for_import(
        KeyId=key, WrappingAlgorithm=algorithm, WrappingKeySpec=spec
    )
    return kms.import_key_material(
        KeyId=key,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=_wrap(params["PublicKey"], algorithm, material),
        **(extra or {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
    )


@pytest.mark.parametrize(
    ("algorithm", "spec"),
    [("RSAES_OAEP_SHA_1", "RSA_2048"), ("RSAES_OAEP_SHA_256", "RSA_3072"),
     ("RSA_AES_KEY_WRAP_SHA_1", "RSA_2048"), ("RSA_AES_KEY_WRAP_SHA_256", "RSA_4096")],
)  # fmt: skip
def test_symmetric_import_round_trip(kms: Any, algorithm: str, spec: str) -> None:
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    assert key["KeyState"] == "PendingImport" and key["Enabled"] is False
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert error_code(exc) == "KMSInvalidStateException"
    material = os.urandom(32)
    _import(kms, key["KeyId"], material, algorithm, spec)
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert (
        meta["KeyState"] == "Enabled" and meta["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    )
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"byok")["CiphertextBlob"]
    kms.delete_imported_key_material(KeyId=key["KeyId"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"
    with pytest.raises(ClientError) as exc:
        _import(kms, key["KeyId"], os.urandom(32), algorithm, spec)
    assert error_code(exc) == "IncorrectKeyMaterialException"
    _import(kms, key["KeyId"], material, algorithm, spec)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"byok"


@pytest.mark.parametrize("bits", [224, 256, 384, 512])
def test_hmac_import_matches_python_hmac(kms: Any, bits: int) -> None:
    key = kms.create_key(KeySpec=f"HMAC_{bits}", KeyUsage="GENERATE_VERIFY_MAC", Origin="EXTERNAL")
    key_id = key["KeyMetadata"]["KeyId"]
    material = os.urandom(bits // 8)
    _import(kms, key_id, material, "RSAES_OAEP_SHA_256")
    mac = kms.generate_mac(KeyId=key_id, Message=b"hello", MacAlgorithm=f"HMAC_SHA_{bits}")
    assert mac["Mac"] == hmac.digest(material, b"hello", getattr(hashlib, f"sha{bits}"))


def test_import_errors(kms: Any, key_id: str) -> None:
    with pytest.raises(ClientError) as exc:
        kms.get_parameters_for_import(
            KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
        )
    assert error_code(exc) == "UnsupportedOperationException"
    a = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    b = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    params = kms.get_parameters_for_import(
        KeyId=a, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    assert params["ParametersValidTo"].timestamp() == pytest.approx(time.time() + DAY, abs=60)
    wrapped = _wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    cases = [
        ({"KeyId": b, "ImportToken": params["ImportToken"], "EncryptedKeyMaterial": wrapped,
          "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}, "InvalidImportTokenException"),
        ({"KeyId": a, "ImportToken": params["ImportToken"], "EncryptedKeyMaterial": b"\x01" * 256,
          "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}, "InvalidCiphertextException"),
        ({"KeyId": a, "ImportToken": params["ImportToken"], "EncryptedKeyMaterial": wrapped},
         "ValidationException"),
        ({"KeyId": a, "ImportToken": params["ImportToken"], "EncryptedKeyMaterial": wrapped,
          "ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": time.time() + 400 * DAY},
         "ValidationException"),
    ]  # fmt: skip
    for args, code in cases:
        with pytest.raises(ClientError) as exc:
            kms.import_key_material(**args)
        assert error_code(exc) == code, args
    short = _wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(16))
    with pytest.raises(ClientError) as exc:
        kms.import_key_material(
            KeyId=a, ImportToken=params["ImportToken"], EncryptedKeyMaterial=short,
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )  # fmt: skip
    assert error_code(exc) == "IncorrectKeyMaterialException"


def test_expiry_returns_key_to_pending_import(clocked: tuple[Server, Path]) -> None:
    server, offset = clocked
    kms = server.client()
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    material = os.urandom(32)
    valid_to = time.time() + 10 * DAY
    _import(kms, key, material, "RSAES_OAEP_SHA_256",
            ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)  # fmt: skip
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["ValidTo"].timestamp() == pytest.approx(valid_to, abs=1)
    blob = kms.encrypt(KeyId=key, Plaintext=b"until then")["CiphertextBlob"]
    offset.write_text(str(11 * DAY))
    deadline = time.monotonic() + 10
    while kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] != "PendingImport":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=blob)
    assert error_code(exc) == "KMSInvalidStateException"
    _import(kms, key, material, "RSAES_OAEP_SHA_1")
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"until then"


@pytest.mark.parametrize(
    ("spec", "usage"),
    [("RSA_2048", "SIGN_VERIFY"), ("ECC_NIST_P256", "SIGN_VERIFY"),
     ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY"), ("RSA_3072", "ENCRYPT_DECRYPT")],
)  # fmt: skip
def test_asymmetric_private_key_import(kms: Any, spec: str, usage: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    private: Any
    if spec.startswith("RSA"):
        private = rsa.generate_private_key(65537, int(spec[4:]))
    elif spec == "ECC_NIST_P256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = kms.create_key(KeySpec=spec, KeyUsage=usage, Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    wrong = (
        rsa.generate_private_key(65537, 2048)
        if spec != "RSA_2048"
        else ec.generate_private_key(ec.SECP256R1())
    )
    wrong_der = wrong.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ClientError) as exc:
        _import(kms, key, wrong_der, "RSA_AES_KEY_WRAP_SHA_256")
    assert error_code(exc) == "IncorrectKeyMaterialException"
    _import(kms, key, der, "RSA_AES_KEY_WRAP_SHA_256")
    public = kms.get_public_key(KeyId=key)["PublicKey"]
    assert public == private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
