"""What a key's rotation, import and multi-Region rows add to CreateKey and ``KeyMetadata``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from strongroom.errors import AwsError
from strongroom.kms.domain.keys import KeyRecord, key_arn
from strongroom.kms.service import Kms
from strongroom.storage import lifecycle_repo, replica_repo

__all__ = ["check_deletable", "configuration", "metadata", "on_create", "regions_of"]


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
            state = lifecycle_repo.get_import(conn, rec.key_id)
        if state is not None:
            meta["ExpirationModel"] = state.expiration_model
            if state.valid_to is not None and state.present:
                meta["ValidTo"] = state.valid_to
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


def check_deletable(kms: Kms, rec: KeyRecord) -> None:
    """ScheduleKeyDeletion on a multi-Region key's home row while other regions still hold it:
    refused, because their material lives in that row."""
    if rec.multi_region and not rec.is_replica_view and len(regions_of(kms, rec)[1]) > 1:
        # TODO(issue 4): PendingReplicaDeletion (AWS waits for the replicas to go first).
        raise AwsError(
            "UnsupportedOperationException",
            f"{rec.arn} has replicas; schedule their deletion first.",
        )
