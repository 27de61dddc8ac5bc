"""Data key pairs and key agreement: GenerateDataKeyPair(WithoutPlaintext), DeriveSharedSecret."""

from __future__ import annotations

from strongroom.crypto import kms_asymmetric
from strongroom.errors import AwsError
from strongroom.kms.domain import ciphertext
from strongroom.kms.domain.keys import material_id
from strongroom.kms.domain.specs import DATA_KEY_PAIR_SPECS, SPECS
from strongroom.kms.ops import _common as c
from strongroom.kms.ops import _keyspec
from strongroom.kms.service import Kms, RequestContext

__all__ = ["HANDLERS", "derive_or_fail"]


def _data_key_pair(kms: Kms, ctx: RequestContext, req: c.Request, operation: str) -> c.Response:
    context = req.get("EncryptionContext")
    rec = kms.resolve(ctx, req["KeyId"], operation, request=req, encryption_context=context)
    if rec.key_spec != "SYMMETRIC_DEFAULT" or rec.key_usage != "ENCRYPT_DECRYPT":
        raise AwsError(
            "InvalidKeyUsageException",
            f"{rec.arn} key usage is {rec.key_usage} which is not valid for this operation.",
        )
    spec = req["KeyPairSpec"]
    if spec not in DATA_KEY_PAIR_SPECS:
        if spec in SPECS:  # ML_KEM_512: say why
            _keyspec.check_offered("KeyPairSpec", spec)
        raise AwsError("UnsupportedOperationException", f"KeyPairSpec {spec} is not supported.")
    if "Recipient" in req:
        raise AwsError(
            "UnsupportedOperationException", "Recipient (Nitro Enclaves) is not supported."
        )
    c.check_dry_run(req)
    private = kms_asymmetric.generate_private(spec)
    material = kms.material(rec, rec.current_version)
    blob = kms.keystore.encrypt(
        rec.key_id,
        rec.current_version,
        material,
        private,
        ciphertext.canonical_context(context),
    )
    out: c.Response = {
        "PrivateKeyCiphertextBlob": blob,
        "PublicKey": kms_asymmetric.public_der(private),
        "KeyId": rec.arn,
        "KeyPairSpec": spec,
        "KeyMaterialId": material_id(rec.key_id, rec.current_version),
    }
    if operation == "GenerateDataKeyPair":
        out["PrivateKeyPlaintext"] = private
    return out


def generate_data_key_pair(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """GenerateDataKeyPair."""
    return _data_key_pair(kms, ctx, req, "GenerateDataKeyPair")


def generate_data_key_pair_without_plaintext(
    kms: Kms, ctx: RequestContext, req: c.Request
) -> c.Response:
    """GenerateDataKeyPairWithoutPlaintext."""
    return _data_key_pair(kms, ctx, req, "GenerateDataKeyPairWithoutPlaintext")


def derive_or_fail(private_der: bytes, peer_public: bytes) -> bytes:
    """ECDH, answering ValidationException for a public key that is malformed or on another
    curve. (The Wycheproof tests call this with the vectors' keys.)"""
    try:
        return kms_asymmetric.derive_shared_secret(private_der, peer_public)
    except kms_asymmetric.BadPublicKey as exc:
        raise AwsError(
            "ValidationException",
            "PublicKey must be a DER-encoded SubjectPublicKeyInfo on the key's curve.",
        ) from exc


def derive_shared_secret(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """DeriveSharedSecret (ECDH with a KEY_AGREEMENT key)."""
    rec = kms.resolve(ctx, req["KeyId"], "DeriveSharedSecret", request=req)
    if rec.key_usage != "KEY_AGREEMENT":
        raise AwsError(
            "InvalidKeyUsageException",
            f"{rec.arn} key usage is {rec.key_usage} which is not valid for DeriveSharedSecret.",
        )
    if "Recipient" in req:
        raise AwsError(
            "UnsupportedOperationException", "Recipient (Nitro Enclaves) is not supported."
        )
    c.check_dry_run(req)
    secret = derive_or_fail(kms.material(rec, rec.current_version), req["PublicKey"])
    return {
        "KeyId": rec.arn,
        "SharedSecret": secret,
        "KeyAgreementAlgorithm": req["KeyAgreementAlgorithm"],
        "KeyOrigin": rec.origin,
    }


HANDLERS: dict[str, c.Handler] = {
    "GenerateDataKeyPair": generate_data_key_pair,
    "GenerateDataKeyPairWithoutPlaintext": generate_data_key_pair_without_plaintext,
    "DeriveSharedSecret": derive_shared_secret,
}
