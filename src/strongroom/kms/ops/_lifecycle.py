"""What a key's rotation, import and multi-Region rows add to CreateKey and ``KeyMetadata``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from strongroom.kms.domain.keys import KeyRecord, key_arn
from strongroom.kms.service import Kms
from strongroom.storage import lifecycle_repo, replica_import_repo, replica_repo

__all__ = [
    "configuration",
    "deletion_waits_for_replicas",
    "metadata",
    "on_create",
    "regions_of",
]


def on_create(conn: Connection, rec: KeyRecord) -> None:
    """Record how a new key's first material came to be (none yet for Origin EXTERNAL)."""
    if rec.origin == "AWS_KMS":
        lifecycle_repo.record_event(conn, rec.key_id, 1, "INITIAL", rec.created)
    if rec.multi_region:
        replica_repo.set_primary_region(conn, rec.key_id, rec.region)


def metadata(kms: Kms, rec: KeyRecord) -> dict[str, Any]:
    """``KeyMetadata`` with the import fields and multi-Region configuration."""
    meta = rec.metadata()
    if rec.origin == "EXTERNAL":
        with kms.engine.connect() as conn:
            known = lifecycle_repo.list_imported(conn, rec.key_id)
            own = replica_import_repo.get(conn, rec.key_id, rec.region)
        current = next((m for m in known if m.version == rec.current_version), None)
        if rec.is_replica_view:  # a replica's import is its own (or none yet)
            if own is not None:
                meta["ExpirationModel"] = own.expiration_model
                if own.valid_to is not None and own.present:
                    meta["ValidTo"] = own.valid_to
        elif current is not None:
            meta["ExpirationModel"] = current.expiration_model
            if current.valid_to is not None and current.present:
                meta["ValidTo"] = current.valid_to
        else:
            meta.pop("CurrentKeyMaterialId", None)
    if rec.multi_region:
        meta["MultiRegionConfiguration"] = configuration(kms, rec)
    return meta


def regions_of(kms: Kms, rec: KeyRecord) -> tuple[str, list[str]]:
    """A multi-Region key's (primary region, every region it exists in)."""
    home = rec.home_region or rec.region
    with kms.engine.connect() as conn:
        primary = replica_repo.primary_region(conn, rec.key_id) or home
        regions = sorted({home, *replica_repo.replica_regions(conn, rec.key_id)})
    return primary, regions


def configuration(kms: Kms, rec: KeyRecord) -> dict[str, Any]:
    """``MultiRegionConfiguration`` as DescribeKey shows it in ``rec``'s region."""
    primary, regions = regions_of(kms, rec)
    return {
        "MultiRegionKeyType": "PRIMARY" if rec.region == primary else "REPLICA",
        "PrimaryKey": {"Arn": key_arn(primary, rec.account_id, rec.key_id), "Region": primary},
        "ReplicaKeys": [
            {"Arn": key_arn(r, rec.account_id, rec.key_id), "Region": r}
            for r in regions
            if r != primary
        ],
    }


def deletion_waits_for_replicas(kms: Kms, rec: KeyRecord) -> bool:
    """ScheduleKeyDeletion on a multi-Region key: True for a primary that still has replicas
    (it goes to PendingReplicaDeletion, and its waiting period starts when the last replica is
    deleted)."""
    if not rec.multi_region:
        return False
    primary, regions = regions_of(kms, rec)
    if len(regions) == 1:
        return False
    # a replica (the home row too, once the primary moved away: when its waiting period
    # ends, the key's home moves to another region, see _rehome) waits like any key
    return rec.region == primary
