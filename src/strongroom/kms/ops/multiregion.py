"""Multi-Region keys: ReplicateKey, UpdatePrimaryRegion, MultiRegionConfiguration, and the
scheduler's pass that deletes replicas whose waiting period ended.

A multi-Region key (``mrk-`` id) shares its key id and material across regions of this service;
its home row is the region it was created in, each replica has its own row (own state,
description, policy and deletion schedule). Whichever region ``kms_multi_region`` names is the
primary; UpdatePrimaryRegion only moves that mark. A ciphertext of any region decrypts in every
other, since the blob names the key id and material version, not the region.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from strongroom.errors import AwsError
from strongroom.kms.domain.keys import KeyRecord, default_policy, key_arn
from strongroom.kms.domain.states import KeyState
from strongroom.kms.ops import _common as c
from strongroom.kms.ops import _lifecycle, _replica_import
from strongroom.kms.ops._lifecycle import regions_of
from strongroom.kms.ops.policy import check_policy_document
from strongroom.kms.service import Kms, RequestContext
from strongroom.storage import kms_repo, replica_import_repo, replica_repo

__all__ = ["HANDLERS", "delete_due_replicas"]

DAY = 86_400.0
log = logging.getLogger("strongroom.kms.multiregion")


def _primary(kms: Kms, ctx: RequestContext, req: c.Request, operation: str) -> KeyRecord:
    rec = kms.resolve(ctx, req["KeyId"], operation, allow_alias=False, request=req)
    if not rec.multi_region:
        raise AwsError(
            "UnsupportedOperationException",
            f"{rec.arn} is not a multi-Region key.",
        )
    primary, _ = regions_of(kms, rec)
    if primary != rec.region:
        raise AwsError(
            "UnsupportedOperationException",
            f"{rec.arn} is not a multi-Region primary key; use the primary key in {primary}.",
        )
    return rec


def replicate_key(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """ReplicateKey: a replica of a multi-Region primary in another region of this service.

    As in AWS, the caller needs kms:ReplicateKey on the primary and kms:CreateKey in the replica
    region; the replica's Tags (ReplicaTags in the answer) are its own."""
    rec = _primary(kms, ctx, req, "ReplicateKey")
    region = req["ReplicaRegion"]
    if rec.origin not in ("AWS_KMS", "EXTERNAL"):
        raise AwsError(
            "UnsupportedOperationException", f"{rec.arn} with origin {rec.origin} cannot replicate."
        )
    replica_ctx = RequestContext(ctx.principal, region, ctx.request_id, ctx.source_ip)
    kms.authorize(replica_ctx, None, "CreateKey", request=req)
    policy = req.get("Policy")
    if policy is not None:
        check_policy_document(
            kms, replica_ctx, policy, None, bool(req.get("BypassPolicyLockoutSafetyCheck"))
        )
    tags = c.check_tags(req.get("Tags"))
    if len(tags) > c.MAX_TAGS:
        raise AwsError("TagException", f"A key can have at most {c.MAX_TAGS} tags")
    c.check_dry_run(req)
    replica = rec.replace(
        region=region,
        # imported material is not copied: the replica waits for its own import of it
        state=KeyState.PENDING_IMPORT if rec.origin == "EXTERNAL" else KeyState.ENABLED,
        description=req.get("Description", rec.description),
        policy=policy if policy is not None else default_policy(ctx.account_id),
        created=round(kms.clock.now(), 3),
        deletion_date=None,
        pending_window_days=None,
        home_region=rec.home_region or rec.region,
    )
    with kms.transaction() as conn:
        _insert_replica(conn, rec, replica, tags)
    return {
        "ReplicaKeyMetadata": _lifecycle.metadata(kms, replica),
        "ReplicaPolicy": replica.policy,
        "ReplicaTags": [{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())],
    }


def _insert_replica(
    conn: Connection, primary: KeyRecord, replica: KeyRecord, tags: dict[str, str]
) -> None:
    home = kms_repo.get_key(conn, primary.key_id, for_update=True)
    if home is None:
        raise AwsError("NotFoundException", f"Key '{primary.arn}' does not exist")
    region = replica.region
    if home.region == region or replica_repo.get_replica(conn, home, region):
        raise AwsError(
            "AlreadyExistsException",
            f"{key_arn(region, primary.account_id, primary.key_id)} already exists.",
        )
    replica_repo.insert_replica(conn, replica)
    replica_repo.put_replica_tags(conn, replica.key_id, region, tags)


def update_primary_region(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """UpdatePrimaryRegion: make the replica in PrimaryRegion the primary."""
    rec = _primary(kms, ctx, req, "UpdatePrimaryRegion")
    target = req["PrimaryRegion"]
    if target == rec.region:
        return {}
    with kms.transaction() as conn:
        home = kms_repo.get_key(conn, rec.key_id, for_update=True)
        if home is None:
            raise AwsError("NotFoundException", f"Key '{rec.arn}' does not exist")
        if home.region != target and replica_repo.get_replica(conn, home, target) is None:
            raise AwsError(
                "NotFoundException",
                f"Key '{key_arn(target, rec.account_id, rec.key_id)}' does not exist",
            )
        replica_repo.set_primary_region(conn, rec.key_id, target)
    return {}


def delete_due_replicas(kms: Kms) -> list[str]:
    """The scheduler's pass for replicas whose deletion date has come (their rows only: the
    material stays with the key's other regions), then for primaries in PendingReplicaDeletion
    whose last replica is gone: they become PendingDeletion and their waiting period starts.
    Returns ``key_id@region`` of each deleted replica."""
    now = kms.clock.now()
    with kms.engine.connect() as conn:
        due = replica_repo.due_replica_deletions(conn, now)
    done = []
    for key_id, region in due:
        try:
            with kms.transaction() as conn:
                replica_repo.delete_replica(conn, key_id, region)
                home = kms_repo.get_key(conn, key_id)
                if home is not None and replica_import_repo.get(conn, key_id, region):
                    replica_import_repo.forget(conn, key_id, region)
                    _replica_import.forget_material_if_unheld(conn, key_id, home.current_version)
            done.append(f"{key_id}@{region}")
        except SQLAlchemyError:
            log.exception("deleting replica %s in %s failed; the next pass retries", key_id, region)
    _start_primary_windows(kms, now)
    return done


def _start_primary_windows(kms: Kms, now: float) -> None:
    with kms.engine.connect() as conn:
        waiting = replica_repo.pending_replica_deletions(conn)
    for key_id, region in waiting:
        try:
            with kms.transaction() as conn:
                _start_window(conn, key_id, region, now)
        except SQLAlchemyError:
            log.exception("starting the deletion window of %s failed; retrying later", key_id)


def _start_window(conn: Connection, key_id: str, region: str, now: float) -> None:
    home = kms_repo.get_key(conn, key_id, for_update=True)
    if home is None:
        return
    rec = home if home.region == region else replica_repo.get_replica(conn, home, region)
    if rec is None or rec.state is not KeyState.PENDING_REPLICA_DELETION:
        return
    if {home.region, *replica_repo.replica_regions(conn, key_id)} - {region}:
        return  # replicas remain
    days = rec.pending_window_days or 30
    new = rec.replace(state=KeyState.PENDING_DELETION, deletion_date=round(now + days * DAY, 3))
    if new.is_replica_view:
        replica_repo.update_replica(conn, new)
    else:
        kms_repo.update_key(conn, new)


HANDLERS: dict[str, c.Handler] = {
    "ReplicateKey": replicate_key,
    "UpdatePrimaryRegion": update_primary_region,
}
