"""Imported material in the replicas of a multi-Region key (AWS's rules, as documented):

* AWS does not copy imported material to replicas. A replica of a key with imported material
  starts in PendingImport, and the same material must be imported into it (GetParametersForImport
  and ImportKeyMaterial in the replica's region). A replica takes no new material: only the
  material of its primary key (IncorrectKeyMaterialException otherwise).
* Each region sets its own expiration model and ValidTo; key states are independent: the
  material expiring or being deleted in one region leaves the others usable.
* The sealed material stays shared by key id (the interoperability of multi-Region keys): it is
  destroyed only once no region has it imported any more.
"""

from __future__ import annotations

import hmac

from sqlalchemy import Connection

from strongroom.errors import AwsError
from strongroom.kms.domain.keys import KeyRecord
from strongroom.kms.domain.states import KeyState
from strongroom.kms.ops._imported import NEW, ImportOptions
from strongroom.kms.service import Kms
from strongroom.storage import kms_repo, lifecycle_repo, replica_import_repo, replica_repo
from strongroom.storage.replica_import_repo import ReplicaImport

__all__ = ["expire", "forget_material_if_unheld", "remove", "store"]


def store(
    kms: Kms,
    conn: Connection,
    rec: KeyRecord,
    material: bytes,
    opts: ImportOptions,
    model: str,
    valid_to: float | None,
) -> int:
    """ImportKeyMaterial into the replica ``rec`` (locked, in the caller's transaction)."""
    if opts.import_type == NEW:
        raise AwsError(
            "UnsupportedOperationException",
            f"{rec.arn} is a replica key: import new key material into its primary key.",
        )
    version = rec.current_version
    known = {m.version: m for m in lifecycle_repo.list_imported(conn, rec.key_id)}
    primary = known.get(version)
    opened = (
        kms.keystore.open_for("import-check", rec.material_arn, primary.material_check)
        if primary is not None
        else b""
    )
    if primary is None or not hmac.compare_digest(opened, material):
        raise AwsError(
            "IncorrectKeyMaterialException",
            f"The key material is not the key material of the primary key of {rec.arn}.",
        )
    if not replica_import_repo.holds_material(conn, rec.key_id, version):
        wrapped = kms.keystore.wrap_material(rec.material_arn, version, material)
        lifecycle_repo.put_material_version(conn, rec.key_id, version, wrapped, kms.clock.now())
    replica_import_repo.put(conn, ReplicaImport(rec.key_id, rec.region, model, valid_to, True))
    if rec.state is KeyState.PENDING_IMPORT:
        replica_repo.update_replica(conn, rec.replace(state=KeyState.ENABLED))
    return version


def remove(conn: Connection, rec: KeyRecord) -> None:
    """DeleteImportedKeyMaterial in the replica ``rec``: its own import only."""
    state = replica_import_repo.get(conn, rec.key_id, rec.region)
    if state is None or not state.present:
        return
    replica_import_repo.put(
        conn, ReplicaImport(rec.key_id, rec.region, state.expiration_model, None, False)
    )
    if rec.state in (KeyState.ENABLED, KeyState.DISABLED):
        replica_repo.update_replica(conn, rec.replace(state=KeyState.PENDING_IMPORT))
    forget_material_if_unheld(conn, rec.key_id, rec.current_version)


def forget_material_if_unheld(conn: Connection, key_id: str, version: int) -> None:
    """Destroy the sealed material once no region has it imported."""
    if not replica_import_repo.holds_material(conn, key_id, version):
        lifecycle_repo.delete_material_version(conn, key_id, version)


def expire(conn: Connection, key_id: str, region: str, now: float) -> bool:
    """A replica's material expiry, if still due (in the caller's transaction)."""
    home = kms_repo.get_key(conn, key_id, for_update=True)
    rec = None if home is None else replica_repo.get_replica(conn, home, region)
    state = replica_import_repo.get(conn, key_id, region)
    if rec is None or state is None or not state.present:
        return False
    if state.valid_to is None or state.valid_to > now:
        return False
    remove(conn, rec)
    return True
