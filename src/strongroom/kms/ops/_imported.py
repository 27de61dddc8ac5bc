"""The imported material versions of an EXTERNAL key: which one an import brings, what deleting
or expiring one does to the key, and what rotation and ListKeyRotations see of them.

Rules (botocore model, ImportKeyMaterial / DeleteImportedKeyMaterial / RotateKeyOnDemand /
RotationsListEntry documentation):

* ImportType, KeyMaterialDescription and KeyMaterialId are only for symmetric encryption keys
  (ValidationException otherwise). ImportType defaults to NEW_KEY_MATERIAL before any import and
  to EXISTING_KEY_MATERIAL after; KeyMaterialId with NEW_KEY_MATERIAL is a ValidationException.
* NEW_KEY_MATERIAL on a key that has material: the material must be new to the key
  (IncorrectKeyMaterialException) and waits as PENDING_ROTATION; one at a time (a second is a
  KMSInvalidStateException until the first is rotated in or deleted). Not for multi-Region keys.
* EXISTING_KEY_MATERIAL must bring a material the key already has (the one KeyMaterialId names,
  if given), else IncorrectKeyMaterialException; it may change expiry and description (an
  omitted description keeps the last one).
* The key is Enabled when every associated material (not pending ones) is imported.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from strongroom.errors import AwsError, validation_error
from strongroom.kms.domain.keys import KeyRecord, material_id
from strongroom.kms.domain.states import KeyState
from strongroom.kms.service import Kms
from strongroom.storage import kms_repo, lifecycle_repo, replica_import_repo
from strongroom.storage.lifecycle_repo import ImportedMaterial

__all__ = [
    "ImportOptions",
    "entry_fields",
    "expire",
    "options",
    "promote_pending",
    "remove",
    "store",
    "version_named",
]

NEW = "NEW_KEY_MATERIAL"
EXISTING = "EXISTING_KEY_MATERIAL"
_SYMMETRIC_ONLY = ("ImportType", "KeyMaterialDescription", "KeyMaterialId")


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """ImportKeyMaterial's ImportType (None: the default), KeyMaterialId and description."""

    import_type: str | None
    material_id: str | None
    description: str | None


def options(rec: KeyRecord, req: Any) -> ImportOptions:
    """Parse and check ImportKeyMaterial's multi-material parameters."""
    given = [name for name in _SYMMETRIC_ONLY if req.get(name) is not None]
    if given and rec.key_spec != "SYMMETRIC_DEFAULT":
        raise validation_error(
            [f"{given[0]} is only valid for symmetric encryption KMS keys, not {rec.key_spec}."]
        )
    import_type = req.get("ImportType")
    if import_type not in (None, NEW, EXISTING):
        raise validation_error(
            [
                f"Value '{import_type}' at 'importType' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{NEW}, {EXISTING}]"
            ]
        )
    if import_type == NEW and req.get("KeyMaterialId") is not None:
        raise validation_error([f"KeyMaterialId cannot be specified with ImportType {NEW}."])
    return ImportOptions(import_type, req.get("KeyMaterialId"), req.get("KeyMaterialDescription"))


def _matching(
    kms: Kms, rec: KeyRecord, known: list[ImportedMaterial], material: bytes
) -> ImportedMaterial | None:
    for m in known:
        sealed = kms.keystore.open_for("import-check", rec.arn, m.material_check)
        if hmac.compare_digest(sealed, material):
            return m
    return None


def store(
    kms: Kms,
    conn: Connection,
    rec: KeyRecord,
    material: bytes,
    opts: ImportOptions,
    model: str,
    valid_to: float | None,
) -> int:
    """Record an import (in the caller's transaction); returns the material's version."""
    known = lifecycle_repo.list_imported(conn, rec.key_id)
    import_type = opts.import_type or (NEW if not known else EXISTING)
    found = _matching(kms, rec, known, material)
    if import_type == NEW:
        if found is not None:
            raise AwsError(
                "IncorrectKeyMaterialException",
                f"This key material is already associated with {rec.arn}; import it with "
                f"ImportType {EXISTING}.",
            )
        return _store_new(kms, conn, rec, known, material, opts, model, valid_to)
    if found is None or (
        opts.material_id is not None and material_id(rec.key_id, found.version) != opts.material_id
    ):
        raise AwsError(
            "IncorrectKeyMaterialException",
            "The key material is not the material previously imported into this key"
            + ("." if opts.material_id is None else f" as {opts.material_id}."),
        )
    description = opts.description if opts.description is not None else found.description
    again = ImportedMaterial(
        rec.key_id, found.version, found.material_check, description, model, valid_to,
        True, found.pending_rotation,
    )  # fmt: skip
    lifecycle_repo.put_imported(conn, again)
    if not found.present:
        wrapped = kms.keystore.wrap_material(rec.arn, found.version, material)
        lifecycle_repo.put_material_version(conn, rec.key_id, found.version, wrapped, _now(kms))
    _settle_state(conn, rec, [again if m.version == again.version else m for m in known])
    return found.version


def _store_new(
    kms: Kms,
    conn: Connection,
    rec: KeyRecord,
    known: list[ImportedMaterial],
    material: bytes,
    opts: ImportOptions,
    model: str,
    valid_to: float | None,
) -> int:
    if known and rec.multi_region:
        raise AwsError(
            "UnsupportedOperationException",
            f"{rec.arn}: new key material for multi-Region keys is not supported.",
        )
    if any(m.pending_rotation for m in known):
        raise AwsError(
            "KMSInvalidStateException",
            f"{rec.arn} already has key material in PENDING_ROTATION state; rotate it in with "
            "RotateKeyOnDemand or delete it first.",
        )
    version = max([rec.current_version, *(m.version for m in known)]) + 1 if known else 1
    check = kms.keystore.seal_for("import-check", rec.arn, material)
    new = ImportedMaterial(
        rec.key_id, version, check, opts.description, model, valid_to, True, bool(known)
    )
    lifecycle_repo.put_imported(conn, new)
    wrapped = kms.keystore.wrap_material(rec.arn, version, material)
    if known:
        lifecycle_repo.put_material_version(conn, rec.key_id, version, wrapped, _now(kms))
    else:
        lifecycle_repo.add_material(conn, rec.key_id, 1, wrapped, "IMPORTED", _now(kms))
        rec = rec.replace(current_version=1)
    _settle_state(conn, rec, [*known, new])
    return version


def _now(kms: Kms) -> float:
    return round(kms.clock.now(), 3)


def _settle_state(conn: Connection, rec: KeyRecord, known: list[ImportedMaterial]) -> None:
    """PendingImport -> Enabled once every associated material is imported."""
    associated = [m for m in known if not m.pending_rotation]
    if rec.state is KeyState.PENDING_IMPORT and associated and all(m.present for m in associated):
        kms_repo.update_key(conn, rec.replace(state=KeyState.ENABLED))


def version_named(rec: KeyRecord, known: list[ImportedMaterial], wanted: str | None) -> int:
    """The version a KeyMaterialId names (default: the current material)."""
    if wanted is None:
        return rec.current_version
    for m in known:
        if material_id(rec.key_id, m.version) == wanted:
            return m.version
    raise AwsError("NotFoundException", f"Key material {wanted} is not associated with {rec.arn}.")


def remove(conn: Connection, rec: KeyRecord, known: list[ImportedMaterial], version: int) -> None:
    """Delete one imported material version (no effect if it is not imported)."""
    found = next((m for m in known if m.version == version), None)
    if found is None or not found.present:
        return
    if found.pending_rotation:
        lifecycle_repo.delete_material_version(conn, rec.key_id, version)
        lifecycle_repo.delete_imported(conn, rec.key_id, version)
        return
    gone = ImportedMaterial(
        rec.key_id, version, found.material_check, found.description, found.expiration_model,
        None, False, False,
    )  # fmt: skip
    lifecycle_repo.put_imported(conn, gone)
    # replicas of a multi-Region key that imported this material keep using it
    if not replica_import_repo.holds_material(conn, rec.key_id, version):
        lifecycle_repo.delete_material_version(conn, rec.key_id, version)
    if rec.state in (KeyState.ENABLED, KeyState.DISABLED):
        kms_repo.update_key(conn, rec.replace(state=KeyState.PENDING_IMPORT))


def expire(conn: Connection, key_id: str, version: int, now: float) -> bool:
    """The expiry of one material version, if it is still due (in the caller's transaction)."""
    rec = kms_repo.get_key(conn, key_id, for_update=True)
    if rec is None:
        return False
    known = lifecycle_repo.list_imported(conn, key_id)
    found = next((m for m in known if m.version == version), None)
    if found is None or not found.present or found.valid_to is None or found.valid_to > now:
        return False
    remove(conn, rec, known, version)
    return True


def promote_pending(conn: Connection, rec: KeyRecord, now: float) -> bool:
    """An on-demand rotation of an imported key: its PENDING_ROTATION material becomes current."""
    pending = [m for m in lifecycle_repo.list_imported(conn, rec.key_id) if m.pending_rotation]
    if not pending or not pending[0].present:
        return False
    m = pending[0]
    lifecycle_repo.put_imported(
        conn,
        ImportedMaterial(
            m.key_id, m.version, m.material_check, m.description, m.expiration_model,
            m.valid_to, True, False,
        ),
    )  # fmt: skip
    lifecycle_repo.record_event(conn, rec.key_id, m.version, "ON_DEMAND", now)
    kms_repo.update_key(conn, rec.replace(current_version=m.version))
    return True


def entry_fields(m: ImportedMaterial) -> dict[str, Any]:
    """What a ListKeyRotations entry shows of an imported material."""
    out: dict[str, Any] = {
        "ImportState": "IMPORTED" if m.present else "PENDING_IMPORT",
        "ExpirationModel": m.expiration_model,
    }
    if m.description is not None:
        out["KeyMaterialDescription"] = m.description
    if m.valid_to is not None and m.expiration_model == "KEY_MATERIAL_EXPIRES":
        out["ValidTo"] = m.valid_to
    return out
