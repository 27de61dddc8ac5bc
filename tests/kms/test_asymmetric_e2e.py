"""Asymmetric and HMAC keys through boto3 against a real server: every key spec and algorithm,
interoperability with ``cryptography``, and AWS's errors."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from tests.conftest import error_code

RSA_SIGN = [
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
]
EC_SIGN = {
    "ECC_NIST_P256": "ECDSA_SHA_256",
    "ECC_NIST_P384": "ECDSA_SHA_384",
    "ECC_NIST_P521": "ECDSA_SHA_512",
    "ECC_SECG_P256K1": "ECDSA_SHA_256",
}
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "SHA_256": hashes.SHA256,
    "SHA_384": hashes.SHA384,
    "SHA_512": hashes.SHA512,
}
MESSAGE = b"strongroom asymmetric test message"


def _create(kms: Any, spec: str, usage: str) -> str:
    return str(kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"])


@pytest.fixture(scope="module")
def rsa_sign_keys(kms: Any) -> dict[str, str]:
    return {s: _create(kms, s, "SIGN_VERIFY") for s in ("RSA_2048", "RSA_3072", "RSA_4096")}


def _hash_of(algorithm: str) -> hashes.HashAlgorithm:
    return HASHES[algorithm[-7:]]()


def _local_verify(public_der: bytes, algorithm: str, message: bytes, sig: bytes) -> None:
    pub = serialization.load_der_public_key(public_der)
    if isinstance(pub, ed25519.Ed25519PublicKey):
        pub.verify(sig, message)
        return
    algo = _hash_of(algorithm)
    if isinstance(pub, rsa.RSAPublicKey):
        pad: padding.AsymmetricPadding = (
            padding.PSS(padding.MGF1(algo), algo.digest_size)
            if "PSS" in algorithm
            else padding.PKCS1v15()
        )
        pub.verify(sig, message, pad, algo)
    else:
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        pub.verify(sig, message, ec.ECDSA(algo))


@pytest.mark.parametrize("algorithm", RSA_SIGN)
@pytest.mark.parametrize("spec", ["RSA_2048", "RSA_3072", "RSA_4096"])
def test_rsa_sign_raw_and_digest(
    kms: Any, rsa_sign_keys: dict[str, str], spec: str, algorithm: str
) -> None:
    key = rsa_sign_keys[spec]
    public = kms.get_public_key(KeyId=key)["PublicKey"]
    sig = kms.sign(KeyId=key, Message=MESSAGE, SigningAlgorithm=algorithm)["Signature"]
    _local_verify(public, algorithm, MESSAGE, sig)
    digest = hashlib.new(algorithm[-7:].replace("_", "").lower(), MESSAGE).digest()
    sig2 = kms.sign(KeyId=key, Message=digest, MessageType="DIGEST", SigningAlgorithm=algorithm)
    # A DIGEST signature verifies as a RAW one over the message (no hashing twice).
    out = kms.verify(
        KeyId=key, Message=MESSAGE, Signature=sig2["Signature"], SigningAlgorithm=algorithm
    )
    assert out["SignatureValid"] is True


@pytest.mark.parametrize(("spec", "algorithm"), list(EC_SIGN.items()))
def test_ecdsa_sign_verify_and_interop(kms: Any, spec: str, algorithm: str) -> None:
    key = _create(kms, spec, "SIGN_VERIFY")
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["SigningAlgorithms"] == [algorithm]
    public = kms.get_public_key(KeyId=key)
    assert public["KeySpec"] == spec and public["SigningAlgorithms"] == [algorithm]
    sig = kms.sign(KeyId=key, Message=MESSAGE, SigningAlgorithm=algorithm)["Signature"]
    _local_verify(public["PublicKey"], algorithm, MESSAGE, sig)
    digest = hashlib.new(algorithm[-7:].replace("_", "").lower(), MESSAGE).digest()
    assert kms.verify(
        KeyId=key, Message=digest, MessageType="DIGEST", Signature=sig, SigningAlgorithm=algorithm
    )["SignatureValid"]
    with pytest.raises(ClientError) as exc:
        kms.verify(KeyId=key, Message=MESSAGE + b"!", Signature=sig, SigningAlgorithm=algorithm)
    assert error_code(exc) == "KMSInvalidSignatureException"


def test_ed25519(kms: Any) -> None:
    key = _create(kms, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY")
    public = kms.get_public_key(KeyId=key)
    assert public["SigningAlgorithms"] == ["ED25519_SHA_512", "ED25519_PH_SHA_512"]
    sig = kms.sign(KeyId=key, Message=MESSAGE, SigningAlgorithm="ED25519_SHA_512")["Signature"]
    _local_verify(public["PublicKey"], "ED25519_SHA_512", MESSAGE, sig)
    with pytest.raises(ClientError) as exc:
        kms.sign(
            KeyId=key, Message=b"x" * 64, MessageType="DIGEST", SigningAlgorithm="ED25519_SHA_512"
        )
    assert error_code(exc) == "ValidationException"


@pytest.mark.parametrize("spec", ["ML_DSA_44", "ML_DSA_65", "ML_DSA_87"])
def test_ml_dsa(kms: Any, spec: str) -> None:
    key = _create(kms, spec, "SIGN_VERIFY")
    public = kms.get_public_key(KeyId=key)
    sig = kms.sign(KeyId=key, Message=MESSAGE, SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
    pub = serialization.load_der_public_key(public["PublicKey"])
    pub.verify(sig, MESSAGE)  # type: ignore[call-arg, union-attr]
    assert kms.verify(
        KeyId=key, Message=MESSAGE, Signature=sig, SigningAlgorithm="ML_DSA_SHAKE_256"
    )["SignatureValid"]


def test_external_signature_verifies_inside(kms: Any) -> None:
    """A signature made outside with a data key pair's private key verifies in Strongroom only
    if the key matches; one made with the key's public half's owner (Sign) verifies outside."""
    key = _create(kms, "ECC_NIST_P256", "SIGN_VERIFY")
    digest = hashlib.sha256(MESSAGE).digest()
    sig = kms.sign(
        KeyId=key, Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256"
    )
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=key)["PublicKey"])
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    pub.verify(sig["Signature"], digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    outsider = ec.generate_private_key(ec.SECP256R1())
    foreign = outsider.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(ClientError) as exc:
        kms.verify(KeyId=key, Message=MESSAGE, Signature=foreign, SigningAlgorithm="ECDSA_SHA_256")
    assert error_code(exc) == "KMSInvalidSignatureException"


def test_signing_errors(kms: Any, rsa_sign_keys: dict[str, str]) -> None:
    key = rsa_sign_keys["RSA_2048"]
    cases: list[tuple[dict[str, object], str]] = [
        ({"SigningAlgorithm": "ECDSA_SHA_256"}, "InvalidKeyUsageException"),
        ({"MessageType": "DIGEST", "Message": b"short"}, "ValidationException"),
    ]
    for extra, code in cases:
        args = {"KeyId": key, "Message": MESSAGE, "SigningAlgorithm": "RSASSA_PSS_SHA_256", **extra}
        with pytest.raises(ClientError) as exc:
            kms.sign(**args)
        assert error_code(exc) == code
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=key, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert error_code(exc) == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as exc:
        kms.create_key(KeySpec="ECC_SECG_P256K1", KeyUsage="KEY_AGREEMENT")
    assert error_code(exc) == "ValidationException"


@pytest.mark.parametrize(
    ("spec", "limits"),
    [("RSA_2048", (214, 190)), ("RSA_3072", (342, 318)), ("RSA_4096", (470, 446))],
)
def test_rsa_oaep_encrypt_decrypt(kms: Any, spec: str, limits: tuple[int, int]) -> None:
    key = _create(kms, spec, "ENCRYPT_DECRYPT")
    public = kms.get_public_key(KeyId=key)
    assert public["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    pub = serialization.load_der_public_key(public["PublicKey"])
    assert isinstance(pub, rsa.RSAPublicKey)
    for algorithm, limit in zip(("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"), limits, strict=True):
        blob = kms.encrypt(KeyId=key, Plaintext=b"p" * limit, EncryptionAlgorithm=algorithm)
        out = kms.decrypt(
            KeyId=key, CiphertextBlob=blob["CiphertextBlob"], EncryptionAlgorithm=algorithm
        )
        assert out["Plaintext"] == b"p" * limit
        with pytest.raises(ClientError) as exc:
            kms.encrypt(KeyId=key, Plaintext=b"p" * (limit + 1), EncryptionAlgorithm=algorithm)
        assert error_code(exc) == "ValidationException"
        algo = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()
        outside = pub.encrypt(b"from outside", padding.OAEP(padding.MGF1(algo), algo, None))
        inside = kms.decrypt(KeyId=key, CiphertextBlob=outside, EncryptionAlgorithm=algorithm)
        assert inside["Plaintext"] == b"from outside"
    with pytest.raises(ClientError) as exc:
        kms.decrypt(KeyId=key, CiphertextBlob=b"\x01" * 256, EncryptionAlgorithm="RSAES_OAEP_SHA_1")
    assert error_code(exc) == "InvalidCiphertextException"


@pytest.mark.parametrize("bits", [224, 256, 384, 512])
def test_hmac(kms: Any, bits: int) -> None:
    key = _create(kms, f"HMAC_{bits}", "GENERATE_VERIFY_MAC")
    algorithm = f"HMAC_SHA_{bits}"
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["MacAlgorithms"] == [algorithm]
    mac = kms.generate_mac(KeyId=key, Message=MESSAGE, MacAlgorithm=algorithm)["Mac"]
    assert len(mac) == bits // 8
    ok = kms.verify_mac(KeyId=key, Message=MESSAGE, MacAlgorithm=algorithm, Mac=mac)
    assert ok["MacValid"] is True
    with pytest.raises(ClientError) as exc:
        kms.verify_mac(KeyId=key, Message=MESSAGE + b"!", MacAlgorithm=algorithm, Mac=mac)
    assert error_code(exc) == "KMSInvalidMacException"
    other = "HMAC_SHA_256" if bits != 256 else "HMAC_SHA_512"
    with pytest.raises(ClientError) as exc:
        kms.generate_mac(KeyId=key, Message=MESSAGE, MacAlgorithm=other)
    assert error_code(exc) == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=key, Plaintext=b"x")
    assert error_code(exc) == "InvalidKeyUsageException"


@pytest.mark.parametrize(
    "pair_spec",
    [
        "RSA_2048",
        "RSA_3072",
        "RSA_4096",
        "ECC_NIST_P256",
        "ECC_NIST_P384",
        "ECC_NIST_P521",
        "ECC_SECG_P256K1",
        "ECC_NIST_EDWARDS25519",
    ],
)
def test_generate_data_key_pair(kms: Any, key_id: str, pair_spec: str) -> None:
    ctx = {"purpose": "pair"}
    out = kms.generate_data_key_pair(KeyId=key_id, KeyPairSpec=pair_spec, EncryptionContext=ctx)
    private = serialization.load_der_private_key(out["PrivateKeyPlaintext"], None)
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public_der == out["PublicKey"]
    back = kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext=ctx)
    assert back["Plaintext"] == out["PrivateKeyPlaintext"]
    bare = kms.generate_data_key_pair_without_plaintext(KeyId=key_id, KeyPairSpec=pair_spec)
    assert "PrivateKeyPlaintext" not in bare and bare["KeyPairSpec"] == pair_spec


@pytest.mark.parametrize(
    ("spec", "curve"),
    [("ECC_NIST_P256", ec.SECP256R1()), ("ECC_NIST_P384", ec.SECP384R1()),
     ("ECC_NIST_P521", ec.SECP521R1())],
)  # fmt: skip
def test_derive_shared_secret(kms: Any, spec: str, curve: ec.EllipticCurve) -> None:
    key = _create(kms, spec, "KEY_AGREEMENT")
    public = kms.get_public_key(KeyId=key)
    assert public["KeyAgreementAlgorithms"] == ["ECDH"]
    mine = ec.generate_private_key(curve)
    my_public = mine.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    out = kms.derive_shared_secret(KeyId=key, KeyAgreementAlgorithm="ECDH", PublicKey=my_public)
    theirs = serialization.load_der_public_key(public["PublicKey"])
    assert isinstance(theirs, ec.EllipticCurvePublicKey)
    assert out["SharedSecret"] == mine.exchange(ec.ECDH(), theirs)
    other_curve = (
        ec.generate_private_key(ec.SECP256K1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for bad in (other_curve, b"\x30\x03garbage"):
        with pytest.raises(ClientError) as exc:
            kms.derive_shared_secret(KeyId=key, KeyAgreementAlgorithm="ECDH", PublicKey=bad)
        assert error_code(exc) == "ValidationException"


def test_re_encrypt_between_symmetric_and_rsa(kms: Any, key_id: str) -> None:
    rsa_key = _create(kms, "RSA_2048", "ENCRYPT_DECRYPT")
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"move me", EncryptionContext={"k": "v"})
    to_rsa = kms.re_encrypt(
        CiphertextBlob=blob["CiphertextBlob"],
        SourceEncryptionContext={"k": "v"},
        DestinationKeyId=rsa_key,
        DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_256",
    )
    assert to_rsa["DestinationEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    assert "SourceKeyMaterialId" in to_rsa and "DestinationKeyMaterialId" not in to_rsa
    back = kms.re_encrypt(
        CiphertextBlob=to_rsa["CiphertextBlob"],
        SourceKeyId=rsa_key,
        SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256",
        DestinationKeyId=key_id,
    )
    assert back["SourceEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    assert kms.decrypt(CiphertextBlob=back["CiphertextBlob"])["Plaintext"] == b"move me"
    with pytest.raises(ClientError) as exc:
        kms.re_encrypt(
            CiphertextBlob=to_rsa["CiphertextBlob"],
            SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256",
            DestinationKeyId=key_id,
        )
    assert error_code(exc) == "ValidationException"
