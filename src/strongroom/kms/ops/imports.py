"""Imported key material (BYOK): GetParametersForImport, ImportKeyMaterial,
DeleteImportedKeyMaterial, and the scheduler's expiry pass.

The import token is self-contained: its id, expiry, wrapping algorithm and the wrapping private
key, sealed by the root key and bound to the key's ARN, so a token of another key does not open
(InvalidImportTokenException); only the key's latest token is valid (a newer
GetParametersForImport invalidates older ones). Parameters are valid 24 hours.

Every imported material version is remembered (sealed) so a reimport must bring the same
material. Symmetric keys take several: ImportType NEW_KEY_MATERIAL on a key that already has
material stores it as PENDING_ROTATION until RotateKeyOnDemand makes it current; the key is
Enabled only while every material associated with it (not pending ones) is imported.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from strongroom.crypto import kms_asymmetric, kms_import, rng, symmetric
from strongroom.errors import AwsError
from strongroom.kms.domain.keys import KeyRecord, material_id
from strongroom.kms.ops import _common as c
from strongroom.kms.ops import _imported, _replica_import
from strongroom.kms.service import Kms, RequestContext
from strongroom.storage import lifecycle_repo, replica_import_repo

__all__ = ["HANDLERS", "expire_due_imports"]

DAY = 86_400.0
_TOKEN_LIFETIME = DAY
_ALGORITHMS = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1",
               "RSA_AES_KEY_WRAP_SHA_256")  # fmt: skip
_HEAD = struct.Struct(">16sdB")
#: Accepted imported material lengths in bytes per key spec (HMAC: the spec's range).
_LENGTHS = {
    "SYMMETRIC_DEFAULT": (32, 32),
    "HMAC_224": (28, 64),
    "HMAC_256": (32, 64),
    "HMAC_384": (48, 128),
    "HMAC_512": (64, 128),
}
log = logging.getLogger("strongroom.kms.imports")


def _external(kms: Kms, ctx: RequestContext, req: c.Request, operation: str) -> KeyRecord:
    rec = kms.resolve(ctx, req["KeyId"], operation, allow_alias=False, request=req)
    if rec.origin != "EXTERNAL":
        raise AwsError(
            "UnsupportedOperationException",
            f"{rec.arn} origin is {rec.origin} which is not valid for this operation.",
        )
    return rec


def get_parameters_for_import(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """GetParametersForImport: an RSA wrapping public key and an import token (24 hours)."""
    rec = _external(kms, ctx, req, "GetParametersForImport")
    algorithm, spec = req["WrappingAlgorithm"], req["WrappingKeySpec"]
    if algorithm not in _ALGORITHMS or spec == "SM2":
        raise AwsError(
            "UnsupportedOperationException",
            f"WrappingAlgorithm {algorithm} with WrappingKeySpec {spec} is not supported.",
        )
    private, public = kms_import.new_wrapping_pair(spec)
    valid_to = round(kms.clock.now() + _TOKEN_LIFETIME, 3)
    token_id = rng.random_bytes(16)
    token = _HEAD.pack(token_id, valid_to, _ALGORITHMS.index(algorithm)) + private
    with kms.transaction() as conn:
        lifecycle_repo.set_import_token(conn, rec.key_id, rec.region, token_id.hex())
    return {
        "KeyId": rec.arn,
        "ImportToken": kms.keystore.seal_for("import-token", rec.arn, token),
        "PublicKey": public,
        "ParametersValidTo": valid_to,
    }


def _open_token(kms: Kms, rec: KeyRecord, token: bytes) -> tuple[str, bytes]:
    invalid = AwsError("InvalidImportTokenException", "The import token is invalid for this key.")
    try:
        raw = kms.keystore.open_for("import-token", rec.arn, token)
        token_id, valid_to, index = _HEAD.unpack_from(raw)
    except (symmetric.CryptoError, struct.error) as exc:
        raise invalid from exc
    with kms.engine.connect() as conn:
        latest = lifecycle_repo.get_import_token(conn, rec.key_id, rec.region)
    if latest != token_id.hex() or index >= len(_ALGORITHMS):
        raise invalid
    if valid_to <= kms.clock.now():
        raise AwsError("ExpiredImportTokenException", "The import token has expired.")
    return _ALGORITHMS[index], raw[_HEAD.size :]


def _expiry(kms: Kms, req: c.Request) -> tuple[str, float | None]:
    model = req.get("ExpirationModel", "KEY_MATERIAL_EXPIRES")
    valid_to = req.get("ValidTo")
    if model == "KEY_MATERIAL_DOES_NOT_EXPIRE":
        if valid_to is not None:
            raise AwsError(
                "ValidationException",
                "ValidTo must not be set when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.",
            )
        return model, None
    now = kms.clock.now()
    if valid_to is None:
        raise AwsError(
            "ValidationException",
            "ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES.",
        )
    when = valid_to.timestamp() if hasattr(valid_to, "timestamp") else float(valid_to)
    if not now < when <= now + 365 * DAY:
        raise AwsError(
            "ValidationException", "ValidTo must be in the future and at most 365 days away."
        )
    return model, round(when, 3)


def _unwrap(kms: Kms, rec: KeyRecord, req: c.Request) -> bytes:
    algorithm, private = _open_token(kms, rec, req["ImportToken"])
    try:
        material = kms_import.unwrap_material(private, algorithm, req["EncryptedKeyMaterial"])
    except kms_import.UnwrapFailed as exc:
        raise AwsError(
            "InvalidCiphertextException", "The wrapped key material could not be unwrapped."
        ) from exc
    if rec.key_spec not in _LENGTHS:  # an asymmetric key: a PKCS#8 private key of its spec
        normalised = kms_asymmetric.import_private(material, rec.key_spec)
        if normalised is None:
            raise AwsError(
                "IncorrectKeyMaterialException",
                f"Key material must be a PKCS#8 private key of key spec {rec.key_spec}.",
            )
        return normalised
    low, high = _LENGTHS[rec.key_spec]
    if not low <= len(material) <= high:
        raise AwsError(
            "IncorrectKeyMaterialException",
            f"Key material for {rec.key_spec} must be {low}-{high} bytes long.",
        )
    return material


def import_key_material(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """ImportKeyMaterial: a first material, a reimport of one (EXISTING_KEY_MATERIAL), or a
    new material for a later RotateKeyOnDemand (NEW_KEY_MATERIAL, symmetric keys only)."""
    rec = _external(kms, ctx, req, "ImportKeyMaterial")
    options = _imported.options(rec, req)
    model, valid_to = _expiry(kms, req)
    material = _unwrap(kms, rec, req)
    with kms.transaction() as conn:
        fresh = kms.locked(conn, rec, "ImportKeyMaterial")
        if fresh.is_replica_view:
            version = _replica_import.store(kms, conn, fresh, material, options, model, valid_to)
        else:
            version = _imported.store(kms, conn, fresh, material, options, model, valid_to)
    return {"KeyId": rec.arn, "KeyMaterialId": material_id(rec.key_id, version)}


def delete_imported_key_material(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """DeleteImportedKeyMaterial: the current material (or KeyMaterialId's) is destroyed and the
    key returns to PendingImport (pending deletion stays); a material pending rotation is simply
    forgotten. No effect on a key without imported material."""
    rec = _external(kms, ctx, req, "DeleteImportedKeyMaterial")
    with kms.transaction() as conn:
        fresh = kms.locked(conn, rec, "DeleteImportedKeyMaterial")
        known = lifecycle_repo.list_imported(conn, rec.key_id)
        version = _imported.version_named(fresh, known, req.get("KeyMaterialId"))
        if fresh.is_replica_view:
            _replica_import.remove(conn, fresh)
        else:
            _imported.remove(conn, fresh, known, version)
    return {"KeyId": rec.arn, "KeyMaterialId": material_id(rec.key_id, version)}


def expire_due_imports(kms: Kms) -> list[str]:
    """The scheduler's expiry pass: imported material past its ValidTo is deleted (the key
    returns to PendingImport), in replicas of multi-Region keys too, each on its own. Returns
    ``key_id@region`` of each expired replica import and ``key_id:version`` of each other."""
    now = kms.clock.now()
    with kms.engine.connect() as conn:
        due = lifecycle_repo.due_expiries(conn, now)
        replicas = replica_import_repo.due(conn, now)
    # (expire(conn, key id, region or version, now), key id, region or version, label)
    work: list[tuple[Callable[[Connection, str, Any, float], bool], str, object, str]] = [
        (_replica_import.expire, key_id, region, f"{key_id}@{region}")
        for key_id, region in replicas
    ]
    work += [(_imported.expire, key_id, version, f"{key_id}:{version}") for key_id, version in due]
    expired = []
    for expire, key_id, which, label in work:
        try:
            with kms.transaction() as conn:
                if expire(conn, key_id, which, now):
                    expired.append(label)
        except SQLAlchemyError:
            log.exception("expiring the imported material %s failed; the next pass retries", label)
    return expired


HANDLERS: dict[str, c.Handler] = {
    "GetParametersForImport": get_parameters_for_import,
    "ImportKeyMaterial": import_key_material,
    "DeleteImportedKeyMaterial": delete_imported_key_material,
}
