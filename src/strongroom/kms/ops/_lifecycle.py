"""What a key's rotation, import and multi-Region rows add to CreateKey and ``KeyMetadata``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from strongroom.kms.domain.keys import KeyRecord
from strongroom.kms.service import Kms
from strongroom.storage import lifecycle_repo

__all__ = ["metadata", "on_create"]


def on_create(conn: Connection, rec: KeyRecord) -> None:
    """Record how a new key's first material came to be (none yet for Origin EXTERNAL)."""
    if rec.origin == "AWS_KMS":
        lifecycle_repo.record_event(conn, rec.key_id, 1, "INITIAL", rec.created)


def metadata(kms: Kms, rec: KeyRecord) -> dict[str, Any]:
    """``KeyMetadata`` with the import fields and multi-Region configuration."""
    meta = rec.metadata()
    if rec.origin == "EXTERNAL":
        with kms.engine.connect() as conn:
            state = lifecycle_repo.get_import(conn, rec.key_id)
        if state is not None:
            meta["ExpirationModel"] = state.expiration_model
            if state.valid_to is not None and state.present:
                meta["ValidTo"] = state.valid_to
        else:
            meta.pop("CurrentKeyMaterialId", None)
    if rec.multi_region:
        # TODO(issue 4): replicas (ReplicateKey, UpdatePrimaryRegion) are not implemented yet.
        meta["MultiRegionConfiguration"] = {
            "MultiRegionKeyType": "PRIMARY",
            "PrimaryKey": {"Arn": rec.arn, "Region": rec.region},
            "ReplicaKeys": [],
        }
    return meta
