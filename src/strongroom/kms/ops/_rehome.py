"""Deleting the region that holds a multi-Region key's shared material while other regions
still hold the key (its primary moved away with UpdatePrimaryRegion, and the old region was
scheduled for deletion like any replica).

The material and the fields shared by every region live in the key's home row (the region it
was created in). When that region's waiting period ends and replicas remain, the home moves to
the primary's region instead of the key being deleted: that replica's own fields, tags and
import state become the home row's, the material is re-wrapped (it is bound to the home ARN),
the reimport checks are re-sealed, and the old region's aliases go. Ciphertexts name the key id
and material version, not a region, so every region keeps decrypting them.
"""

from __future__ import annotations

from sqlalchemy import Connection

from strongroom.kms.domain.keys import KeyRecord, key_arn
from strongroom.kms.ops._replica_import import forget_material_if_unheld
from strongroom.kms.service import Kms
from strongroom.storage import lifecycle_repo, rehome_repo, replica_import_repo, replica_repo
from strongroom.storage.lifecycle_repo import ImportedMaterial

__all__ = ["rehome"]


def rehome(kms: Kms, conn: Connection, home: KeyRecord) -> str | None:
    """Move ``home`` (a home row due for deletion, locked) to another region of the key; the
    new home region, or None if no other region holds the key (delete it then)."""
    if not home.multi_region:
        return None
    regions = replica_repo.replica_regions(conn, home.key_id)
    if not regions:
        return None
    primary = replica_repo.primary_region(conn, home.key_id)
    target = primary if primary in regions else regions[0]
    new = replica_repo.get_replica(conn, home, target)
    assert new is not None
    key_id, old_arn = home.key_id, home.material_arn
    new_arn = key_arn(target, home.account_id, key_id)
    for version, wrapped in rehome_repo.material_versions(conn, key_id):
        material = kms.keystore.unwrap_material(old_arn, version, wrapped)
        rehome_repo.rewrap(
            conn, key_id, version, kms.keystore.wrap_material(new_arn, version, material)
        )
    own = replica_import_repo.get(conn, key_id, target)
    for m in lifecycle_repo.list_imported(conn, key_id):
        secret = kms.keystore.open_for("import-check", old_arn, m.material_check)
        present = own is not None and own.present and m.version == home.current_version
        lifecycle_repo.put_imported(
            conn,
            ImportedMaterial(
                key_id, m.version, kms.keystore.seal_for("import-check", new_arn, secret),
                m.description, own.expiration_model if own is not None else m.expiration_model,
                own.valid_to if own is not None and present else None, present,
                m.pending_rotation,
            ),
        )  # fmt: skip
    if own is not None:
        replica_import_repo.forget(conn, key_id, target)
    if home.origin == "EXTERNAL":
        forget_material_if_unheld(conn, key_id, home.current_version)
    rehome_repo.become_home(conn, home.region, new)
    if primary != target:
        replica_repo.set_primary_region(conn, key_id, target)
    return target
