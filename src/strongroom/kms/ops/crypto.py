"""Symmetric cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(*),
GenerateRandom."""

from __future__ import annotations

from strongroom.crypto import symmetric
from strongroom.errors import AwsError, validation_error
from strongroom.kms.domain import ciphertext
from strongroom.kms.domain.keys import KeyRecord, material_id
from strongroom.kms.domain.states import check_state
from strongroom.kms.ops import _common as c
from strongroom.kms.ops import asymmetric, custom_key_stores
from strongroom.kms.service import Kms, RequestContext

__all__ = ["HANDLERS"]

_ALGORITHM = "SYMMETRIC_DEFAULT"
_RSA_SPECS = frozenset({"RSA_2048", "RSA_3072", "RSA_4096"})
_DATA_KEY_BYTES = {"AES_256": 32, "AES_128": 16}
_INVALID = "The ciphertext is invalid, was altered, or does not match the encryption context."


def _symmetric(rec: KeyRecord, algorithm: str | None) -> None:
    if rec.key_usage != "ENCRYPT_DECRYPT" or rec.key_spec != "SYMMETRIC_DEFAULT":
        raise AwsError(
            "InvalidKeyUsageException",
            f"{rec.arn} key usage is {rec.key_usage} which is not valid for this operation.",
        )
    if algorithm is not None and algorithm != _ALGORITHM:
        raise AwsError(
            "InvalidKeyUsageException",
            f"The encryption algorithm {algorithm} is not valid for key {rec.arn}.",
        )


def _seal(kms: Kms, rec: KeyRecord, plaintext: bytes, context: dict[str, str] | None) -> bytes:
    aad = ciphertext.canonical_context(context)
    if rec.origin == "AWS_CLOUDHSM" and rec.custom_key_store_id is not None:
        return custom_key_stores.seal(
            kms, rec.key_id, rec.arn, rec.custom_key_store_id, plaintext, aad
        )
    material = kms.material(rec, rec.current_version)
    return kms.keystore.encrypt(rec.key_id, rec.current_version, material, plaintext, aad)


def _open(
    kms: Kms,
    ctx: RequestContext,
    blob: bytes,
    context: dict[str, str] | None,
    key_id: str | None,
    operation: str,
    req: c.Request,
) -> tuple[KeyRecord, int, bytes]:
    """Decrypt a blob: (its key, its material version, the plaintext)."""
    try:
        head = ciphertext.parse_blob(blob)
    except ciphertext.MalformedBlob as exc:
        raise AwsError("InvalidCiphertextException", _INVALID) from exc
    if key_id is not None:
        wanted = kms.resolve(ctx, key_id, operation, request=req, encryption_context=context)
        if wanted.key_id != head.key_id or wanted.region != ctx.region:
            raise AwsError(
                "IncorrectKeyException",
                "The key ID in the request does not identify a CMK that can perform this "
                "operation.",
            )
        rec: KeyRecord | None = wanted
    else:
        rec = kms.find_by_id(ctx, head.key_id)
        if rec is not None:
            kms.authorize(ctx, rec, operation, request=req, encryption_context=context)
            check_state(operation, rec.state, rec.arn)
    if rec is not None and head.kind == ciphertext.KIND_CLOUDHSM and rec.custom_key_store_id:
        return rec, 1, _open_in_cluster(kms, rec, rec.custom_key_store_id, head, context)
    if rec is None or head.kind != ciphertext.KIND_SOFTWARE:
        raise AwsError("InvalidCiphertextException", _INVALID)
    _symmetric(rec, None)
    if head.material_version < 1 or head.material_version > rec.current_version:
        raise AwsError("InvalidCiphertextException", _INVALID)
    material = kms.material(rec, head.material_version)
    try:
        plaintext = kms.keystore.decrypt(head, material, ciphertext.canonical_context(context))
    except symmetric.CryptoError as exc:
        raise AwsError("InvalidCiphertextException", _INVALID) from exc
    return rec, head.material_version, plaintext


def _open_in_cluster(
    kms: Kms,
    rec: KeyRecord,
    store_id: str,
    head: ciphertext.BlobHeader,
    context: dict[str, str] | None,
) -> bytes:
    aad = ciphertext.canonical_context(context)
    try:
        return custom_key_stores.open_blob(kms, rec.arn, store_id, head, aad)
    except symmetric.CryptoError as exc:
        raise AwsError("InvalidCiphertextException", _INVALID) from exc


def encrypt(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """Encrypt."""
    context = req.get("EncryptionContext")
    rec = kms.resolve(ctx, req["KeyId"], "Encrypt", request=req, encryption_context=context)
    if rec.key_spec in _RSA_SPECS:
        return asymmetric.encrypt_asymmetric(kms, rec, req)
    _symmetric(rec, req.get("EncryptionAlgorithm"))
    c.check_dry_run(req)
    blob = _seal(kms, rec, req["Plaintext"], context)
    return {"CiphertextBlob": blob, "KeyId": rec.arn, "EncryptionAlgorithm": _ALGORITHM}


def decrypt(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """Decrypt: the key comes from the blob; a KeyId, if given, must name that key."""
    blob = req.get("CiphertextBlob")
    if blob is None:
        raise validation_error(
            ["Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null"]
        )
    if _ignores_ciphertext(req):
        _authorize_only(kms, ctx, req, "KeyId", "Decrypt", req.get("EncryptionContext"))
    algorithm = req.get("EncryptionAlgorithm")
    if algorithm is not None and algorithm != _ALGORITHM:
        return _decrypt_asymmetric(kms, ctx, req)
    rec, version, plaintext = _open(
        kms, ctx, blob, req.get("EncryptionContext"), req.get("KeyId"), "Decrypt", req
    )
    c.check_dry_run(req)
    return {
        "KeyId": rec.arn,
        "Plaintext": plaintext,
        "EncryptionAlgorithm": _ALGORITHM,
        "KeyMaterialId": material_id(rec.key_id, version),
    }


def _ignores_ciphertext(req: c.Request) -> bool:
    """A dry run with DryRunModifiers IGNORE_CIPHERTEXT (the modifier needs DryRun)."""
    return bool(req.get("DryRun")) and "IGNORE_CIPHERTEXT" in (req.get("DryRunModifiers") or ())


def _authorize_only(
    kms: Kms,
    ctx: RequestContext,
    req: c.Request,
    field: str,
    operation: str,
    context: dict[str, str] | None,
) -> None:
    """IGNORE_CIPHERTEXT: authorize ``operation`` on the key ``field`` names (the ciphertext
    is not read, so it cannot name the key), check its state and usage, and end the dry run."""
    if req.get(field) is None:
        raise AwsError(
            "ValidationException",
            f"{field} is required when DryRunModifiers includes IGNORE_CIPHERTEXT.",
        )
    rec = kms.resolve(ctx, req[field], operation, request=req, encryption_context=context)
    if rec.key_usage != "ENCRYPT_DECRYPT":
        raise AwsError(
            "InvalidKeyUsageException",
            f"{rec.arn} key usage is {rec.key_usage} which is not valid for {operation}.",
        )
    c.check_dry_run(req)


def _decrypt_asymmetric(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """Decrypt an RSAES-OAEP ciphertext: the KeyId is required (the blob names no key)."""
    if req.get("KeyId") is None:
        raise AwsError(
            "ValidationException", "KeyId is required to decrypt with an asymmetric algorithm."
        )
    rec = kms.resolve(ctx, req["KeyId"], "Decrypt", request=req)
    return asymmetric.decrypt_asymmetric(kms, rec, req)


def _re_encrypt_source(
    kms: Kms, ctx: RequestContext, req: c.Request, blob: bytes
) -> tuple[KeyRecord, int | None, bytes]:
    """ReEncrypt's decrypt half: (source key, material version or None, plaintext)."""
    algorithm = req.get("SourceEncryptionAlgorithm")
    if algorithm is None or algorithm == _ALGORITHM:
        return _open(
            kms, ctx, blob, req.get("SourceEncryptionContext"), req.get("SourceKeyId"),
            "ReEncryptFrom", req,
        )  # fmt: skip
    if req.get("SourceKeyId") is None:
        raise AwsError(
            "ValidationException",
            "SourceKeyId is required to decrypt with an asymmetric algorithm.",
        )
    src = kms.resolve(ctx, req["SourceKeyId"], "ReEncryptFrom", request=req)
    context = req.get("SourceEncryptionContext")
    return src, None, asymmetric.open_oaep(kms, src, algorithm, blob, context)


def re_encrypt(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """ReEncrypt: decrypt under the source key and encrypt under the destination, server-side
    (either side may be an RSA key with an RSAES_OAEP algorithm)."""
    dest_context = req.get("DestinationEncryptionContext")
    dest = kms.resolve(
        ctx, req["DestinationKeyId"], "ReEncryptTo", request=req, encryption_context=dest_context
    )
    dest_algorithm = req.get("DestinationEncryptionAlgorithm")
    if dest.key_spec not in _RSA_SPECS:
        _symmetric(dest, dest_algorithm)
    if _ignores_ciphertext(req):
        context = req.get("SourceEncryptionContext")
        _authorize_only(kms, ctx, req, "SourceKeyId", "ReEncryptFrom", context)
    blob = req.get("CiphertextBlob")
    if blob is None:
        raise validation_error(
            ["Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null"]
        )
    src, version, plaintext = _re_encrypt_source(kms, ctx, req, blob)
    c.check_dry_run(req)
    out: c.Response = {"SourceKeyId": src.arn, "KeyId": dest.arn}
    out["SourceEncryptionAlgorithm"] = req.get("SourceEncryptionAlgorithm") or _ALGORITHM
    if version is not None:
        out["SourceKeyMaterialId"] = material_id(src.key_id, version)
    if dest.key_spec in _RSA_SPECS:
        out["CiphertextBlob"] = asymmetric.seal_oaep(
            kms, dest, dest_algorithm, plaintext, dest_context
        )
        out["DestinationEncryptionAlgorithm"] = dest_algorithm
        return out
    out["CiphertextBlob"] = _seal(kms, dest, plaintext, dest_context)
    out["DestinationEncryptionAlgorithm"] = _ALGORITHM
    out["DestinationKeyMaterialId"] = material_id(dest.key_id, dest.current_version)
    return out


def _data_key(kms: Kms, ctx: RequestContext, req: c.Request, operation: str) -> c.Response:
    spec, count = req.get("KeySpec"), req.get("NumberOfBytes")
    if (spec is None) == (count is None):
        raise AwsError("ValidationException", "Please specify either number of bytes or key spec.")
    context = req.get("EncryptionContext")
    rec = kms.resolve(ctx, req["KeyId"], operation, request=req, encryption_context=context)
    _symmetric(rec, None)
    c.check_dry_run(req)
    size: int = _DATA_KEY_BYTES[spec] if spec is not None else req["NumberOfBytes"]
    plaintext = symmetric.random_bytes(size)
    blob = _seal(kms, rec, plaintext, context)
    out: c.Response = {
        "CiphertextBlob": blob,
        "KeyId": rec.arn,
        "KeyMaterialId": material_id(rec.key_id, rec.current_version),
    }
    if operation == "GenerateDataKey":
        out["Plaintext"] = plaintext
    return out


def generate_data_key(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """GenerateDataKey."""
    return _data_key(kms, ctx, req, "GenerateDataKey")


def generate_data_key_without_plaintext(
    kms: Kms, ctx: RequestContext, req: c.Request
) -> c.Response:
    """GenerateDataKeyWithoutPlaintext."""
    return _data_key(kms, ctx, req, "GenerateDataKeyWithoutPlaintext")


def generate_random(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """GenerateRandom (1-1024 bytes)."""
    kms.authorize(ctx, None, "GenerateRandom", request=req)
    count = req.get("NumberOfBytes")
    if count is None:
        raise validation_error(
            ["Value null at 'numberOfBytes' failed to satisfy constraint: Member must not be null"]
        )
    if "CustomKeyStoreId" in req:
        store_id = req["CustomKeyStoreId"]
        return {"Plaintext": custom_key_stores.random_bytes(kms, ctx, store_id, count)}
    return {"Plaintext": symmetric.random_bytes(count)}


HANDLERS: dict[str, c.Handler] = {
    "Encrypt": encrypt,
    "Decrypt": decrypt,
    "ReEncrypt": re_encrypt,
    "GenerateDataKey": generate_data_key,
    "GenerateDataKeyWithoutPlaintext": generate_data_key_without_plaintext,
    "GenerateRandom": generate_random,
}
