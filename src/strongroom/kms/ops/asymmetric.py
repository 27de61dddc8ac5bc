"""Asymmetric key operations: Sign, Verify, GetPublicKey, and RSAES-OAEP Encrypt/Decrypt.

Signing follows AWS (kms-api.md §3.6): MessageType RAW hashes here, DIGEST signs the given
digest without hashing again (its length must be the algorithm's hash length), EXTERNAL_MU is the
64-byte μ of an ML-DSA key. A signature that does not verify is KMSInvalidSignatureException.
The private key is the key's material (PKCS#8 DER), stored wrapped by the root key.
"""

from __future__ import annotations

from strongroom.crypto import kms_asymmetric
from strongroom.errors import AwsError
from strongroom.kms.domain.keys import KeyRecord
from strongroom.kms.domain.specs import (
    HASH_BYTES,
    SPECS,
    algorithm_list_names,
    oaep_plaintext_limit,
    signing_hash,
)
from strongroom.kms.ops import _common as c
from strongroom.kms.service import Kms, RequestContext

__all__ = [
    "HANDLERS",
    "algorithm_fits",
    "check_signing",
    "decrypt_asymmetric",
    "encrypt_asymmetric",
    "oaep_decrypt_or_fail",
    "open_oaep",
    "seal_oaep",
    "verify_signature",
]

_INVALID_CIPHERTEXT = "The ciphertext is invalid, was altered, or does not match the key."


def _usage_error(rec: KeyRecord) -> AwsError:
    return AwsError(
        "InvalidKeyUsageException",
        f"{rec.arn} key usage is {rec.key_usage} which is not valid for this operation.",
    )


def algorithm_fits(rec: KeyRecord, usage: str, algorithm: str) -> None:
    """InvalidKeyUsageException unless the key has ``usage`` and its spec offers
    ``algorithm`` for it."""
    if rec.key_usage != usage:
        raise _usage_error(rec)
    if algorithm not in SPECS[rec.key_spec].usages[usage]:
        raise AwsError(
            "InvalidKeyUsageException",
            f"Algorithm {algorithm} is incompatible with key spec {rec.key_spec}.",
        )


def check_signing(spec: str, algorithm: str, message_type: str, message: bytes) -> None:
    """AWS's rules for the MessageType of a signing algorithm (ValidationException)."""
    family = SPECS[spec].family
    if algorithm == "ED25519_PH_SHA_512" and message_type != "DIGEST":
        # the message is PH(M) = SHA-512(M), as AWS requires (RFC 8032 Ed25519ph)
        raise AwsError(
            "ValidationException",
            "Signing algorithm ED25519_PH_SHA_512 requires MessageType DIGEST.",
        )
    if message_type == "EXTERNAL_MU":
        if family != "mldsa" or len(message) != 64:
            raise AwsError(
                "ValidationException",
                "MessageType EXTERNAL_MU requires an ML-DSA key and a 64-byte message.",
            )
        return
    if message_type == "DIGEST":
        wanted = signing_hash(algorithm)
        if family == "mldsa" or algorithm == "ED25519_SHA_512" or wanted is None:
            raise AwsError(
                "ValidationException",
                f"MessageType DIGEST is not valid for signing algorithm {algorithm}.",
            )
        if len(message) != HASH_BYTES[wanted]:
            raise AwsError(
                "ValidationException", f"Digest is invalid length for algorithm {algorithm}."
            )


def _signing_key(kms: Kms, ctx: RequestContext, req: c.Request, operation: str) -> KeyRecord:
    rec = kms.resolve(ctx, req["KeyId"], operation, request=req)
    algorithm_fits(rec, "SIGN_VERIFY", req["SigningAlgorithm"])
    check_signing(
        rec.key_spec, req["SigningAlgorithm"], req.get("MessageType", "RAW"), req["Message"]
    )
    return rec


def sign(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """Sign."""
    rec = _signing_key(kms, ctx, req, "Sign")
    c.check_dry_run(req)
    private = kms.material(rec, rec.current_version)
    algorithm = req["SigningAlgorithm"]
    signature = kms_asymmetric.sign(
        private, algorithm, req["Message"], req.get("MessageType", "RAW")
    )
    return {"KeyId": rec.arn, "Signature": signature, "SigningAlgorithm": algorithm}


def verify_signature(
    key_der: bytes,
    algorithm: str,
    message: bytes,
    message_type: str,
    signature: bytes,
    *,
    is_private: bool = True,
) -> None:
    """Verify, answering KMSInvalidSignatureException for a signature that does not verify.
    (The Wycheproof tests call this with the vectors' public keys.)"""
    try:
        kms_asymmetric.verify(
            key_der, algorithm, message, message_type, signature, is_private=is_private
        )
    except (kms_asymmetric.BadSignature, kms_asymmetric.BadPublicKey) as exc:
        raise AwsError("KMSInvalidSignatureException", "") from exc


def verify(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """Verify."""
    rec = _signing_key(kms, ctx, req, "Verify")
    c.check_dry_run(req)
    algorithm = req["SigningAlgorithm"]
    private = kms.material(rec, rec.current_version)
    verify_signature(
        private, algorithm, req["Message"], req.get("MessageType", "RAW"), req["Signature"]
    )
    return {"KeyId": rec.arn, "SignatureValid": True, "SigningAlgorithm": algorithm}


def get_public_key(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """GetPublicKey: the DER SubjectPublicKeyInfo and what the key may do."""
    rec = kms.resolve(ctx, req["KeyId"], "GetPublicKey", request=req)
    if SPECS[rec.key_spec].family in ("symmetric", "hmac"):
        raise AwsError(
            "UnsupportedOperationException",
            f"{rec.arn} key spec {rec.key_spec} has no public key.",
        )
    public = kms_asymmetric.public_der(kms.material(rec, rec.current_version))
    out: c.Response = {
        "KeyId": rec.arn,
        "PublicKey": public,
        "CustomerMasterKeySpec": rec.key_spec,
        "KeySpec": rec.key_spec,
        "KeyUsage": rec.key_usage,
    }
    meta = rec.metadata()
    for name in algorithm_list_names():  # EncryptionAlgorithms ... EncapsulationAlgorithms
        if name in meta:
            out[name] = meta[name]
    return out


def _sealable(
    rec: KeyRecord, algorithm: str | None, plaintext: bytes, context: dict[str, str] | None
) -> str:
    chosen = _oaep_algorithm(rec, algorithm, context)
    limit = oaep_plaintext_limit(SPECS[rec.key_spec].size, chosen)
    if len(plaintext) > limit:
        raise AwsError(
            "ValidationException",
            f"Plaintext is too long for {chosen} with {rec.key_spec}: at most {limit} bytes.",
        )
    return chosen


def seal_oaep(
    kms: Kms,
    rec: KeyRecord,
    algorithm: str | None,
    plaintext: bytes,
    context: dict[str, str] | None = None,
) -> bytes:
    """RSAES-OAEP-encrypt under an RSA ENCRYPT_DECRYPT key, within AWS's plaintext limit."""
    chosen = _sealable(rec, algorithm, plaintext, context)
    return kms_asymmetric.oaep_encrypt(kms.material(rec, rec.current_version), chosen, plaintext)


def open_oaep(
    kms: Kms,
    rec: KeyRecord,
    algorithm: str | None,
    blob: bytes,
    context: dict[str, str] | None = None,
) -> bytes:
    """Decrypt an RSAES-OAEP ciphertext of an RSA ENCRYPT_DECRYPT key."""
    chosen = _oaep_algorithm(rec, algorithm, context)
    return oaep_decrypt_or_fail(kms.material(rec, rec.current_version), chosen, blob)


def encrypt_asymmetric(kms: Kms, rec: KeyRecord, req: c.Request) -> c.Response:
    """Encrypt with an RSA ENCRYPT_DECRYPT key (called by the Encrypt operation)."""
    algorithm = req.get("EncryptionAlgorithm")
    _sealable(rec, algorithm, req["Plaintext"], req.get("EncryptionContext"))
    c.check_dry_run(req)
    blob = seal_oaep(kms, rec, algorithm, req["Plaintext"], req.get("EncryptionContext"))
    return {"CiphertextBlob": blob, "KeyId": rec.arn, "EncryptionAlgorithm": algorithm}


def decrypt_asymmetric(kms: Kms, rec: KeyRecord, req: c.Request) -> c.Response:
    """Decrypt an RSAES-OAEP ciphertext (called by the Decrypt operation)."""
    algorithm = req.get("EncryptionAlgorithm")
    _oaep_algorithm(rec, algorithm, req.get("EncryptionContext"))
    c.check_dry_run(req)
    plaintext = open_oaep(kms, rec, algorithm, req["CiphertextBlob"], req.get("EncryptionContext"))
    return {"KeyId": rec.arn, "Plaintext": plaintext, "EncryptionAlgorithm": algorithm}


def oaep_decrypt_or_fail(private_der: bytes, algorithm: str, blob: bytes) -> bytes:
    """RSAES-OAEP decryption; InvalidCiphertextException on any failure (no detail)."""
    try:
        return kms_asymmetric.oaep_decrypt(private_der, algorithm, blob)
    except kms_asymmetric.DecryptFailed as exc:
        raise AwsError("InvalidCiphertextException", _INVALID_CIPHERTEXT) from exc


def _oaep_algorithm(rec: KeyRecord, algorithm: str | None, context: dict[str, str] | None) -> str:
    if rec.key_usage != "ENCRYPT_DECRYPT" or SPECS[rec.key_spec].family != "rsa":
        raise _usage_error(rec)
    if algorithm is None or algorithm == "SYMMETRIC_DEFAULT":
        raise AwsError(
            "InvalidKeyUsageException",
            f"The encryption algorithm {algorithm or 'SYMMETRIC_DEFAULT'} is not valid for "
            f"key {rec.arn}.",
        )
    algorithm_fits(rec, "ENCRYPT_DECRYPT", algorithm)
    if context:
        raise AwsError(
            "ValidationException", "EncryptionContext is not supported with asymmetric keys."
        )
    return algorithm


HANDLERS: dict[str, c.Handler] = {
    "Sign": sign,
    "Verify": verify,
    "GetPublicKey": get_public_key,
}
