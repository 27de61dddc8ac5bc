"""Key lifecycle operations: create, describe, list, enable, disable, describe, delete."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from strongroom.errors import AwsError, validation_error
from strongroom.kms.domain.keys import KeyRecord, default_policy
from strongroom.kms.domain.states import KeyState
from strongroom.kms.ops import _common as c
from strongroom.kms.ops import _keyspec, _lifecycle, _rehome, custom_key_stores
from strongroom.kms.ops.policy import check_policy_document
from strongroom.kms.service import Kms, RequestContext
from strongroom.storage import kms_repo

__all__ = ["HANDLERS"]

DAY = 86_400.0
log = logging.getLogger("strongroom.kms")


def create_key(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """CreateKey."""
    kms.authorize(ctx, None, "CreateKey", request=req)
    spec, usage = _keyspec.spec_and_usage(req)
    if "CustomKeyStoreId" in req or req.get("Origin") == "AWS_CLOUDHSM":
        return custom_key_stores.create_cloudhsm_key(kms, ctx, req, spec, usage)
    origin = _keyspec.check_origin(req, spec)
    multi_region = bool(req.get("MultiRegion"))
    policy = req.get("Policy")
    if policy is not None:
        bypass = bool(req.get("BypassPolicyLockoutSafetyCheck"))
        check_policy_document(kms, ctx, policy, None, bypass)
    tags = c.check_tags(req.get("Tags"))
    if len(tags) > c.MAX_TAGS:
        raise AwsError("TagException", f"A key can have at most {c.MAX_TAGS} tags")
    key_id = _keyspec.new_key_id(multi_region)
    rec = KeyRecord(
        key_id=key_id,
        account_id=ctx.account_id,
        region=ctx.region,
        state=KeyState.ENABLED if origin == "AWS_KMS" else KeyState.PENDING_IMPORT,
        key_spec=spec,
        key_usage=usage,
        origin=origin,
        description=req.get("Description", ""),
        created=round(kms.clock.now(), 3),
        deletion_date=None,
        pending_window_days=None,
        multi_region=multi_region,
        key_manager="CUSTOMER",
        custom_key_store_id=None,
        policy=policy if policy is not None else default_policy(ctx.account_id),
        current_version=1,
    )
    wrapped = None
    if origin == "AWS_KMS":
        wrapped = kms.keystore.wrap_material(rec.arn, 1, _keyspec.new_material(spec))
    with kms.transaction() as conn:
        kms_repo.insert_key(conn, rec, wrapped)
        kms_repo.put_tags(conn, key_id, tags)
        _lifecycle.on_create(conn, rec)
    return {"KeyMetadata": _lifecycle.metadata(kms, rec)}


def describe_key(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """DescribeKey."""
    rec = kms.resolve(ctx, req["KeyId"], "DescribeKey", request=req)
    meta = _lifecycle.metadata(kms, rec)
    if rec.custom_key_store_id is not None:
        store = kms.key_store(rec.custom_key_store_id)
        if store is not None:
            meta["CloudHsmClusterId"] = store.cluster_id
    return {"KeyMetadata": meta}


def list_keys(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """ListKeys. ResourceOwners OTHER_ACCOUNTS_VIA_RAM adds the keys other accounts share
    through AWS RAM, which Strongroom has not: there are none."""
    kms.authorize(ctx, None, "ListKeys", request=req)
    if "SELF" not in (req.get("ResourceOwners") or ["SELF"]):
        c.decode_marker("shared-keys", req.get("Marker"))  # no such listing issues markers
        return {"Keys": [], "Truncated": False}
    limit = c.page_limit(req, 100, 1000)
    after = c.decode_marker("keys", req.get("Marker"))
    with kms.engine.connect() as conn:
        rows = kms_repo.list_keys(conn, ctx.account_id, ctx.region, after, limit + 1)
    out: c.Response = {"Keys": [{"KeyId": r.key_id, "KeyArn": r.arn} for r in rows[:limit]]}
    out["Truncated"] = len(rows) > limit
    if len(rows) > limit:
        out["NextMarker"] = c.encode_marker("keys", rows[limit - 1].key_id)
    return out


def _set_state(kms: Kms, ctx: RequestContext, req: c.Request, op: str, **changes: Any) -> KeyRecord:
    rec = kms.resolve(ctx, req["KeyId"], op, allow_alias=False, request=req)
    with kms.transaction() as conn:
        new = kms.locked(conn, rec, op).replace(**changes)
        kms_repo.update_key(conn, new)
    return new


def enable_key(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """EnableKey."""
    _set_state(kms, ctx, req, "EnableKey", state=KeyState.ENABLED)
    return {}


def disable_key(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """DisableKey."""
    _set_state(kms, ctx, req, "DisableKey", state=KeyState.DISABLED)
    return {}


def update_key_description(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """UpdateKeyDescription."""
    _set_state(kms, ctx, req, "UpdateKeyDescription", description=req["Description"])
    return {}


def schedule_key_deletion(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """ScheduleKeyDeletion: PendingWindowInDays 7-30, default 30."""
    days = req.get("PendingWindowInDays", 30)
    if not 7 <= days <= 30:
        bound = "greater than or equal to 7" if days < 7 else "less than or equal to 30"
        raise validation_error(
            [
                f"Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: "
                f"Member must have value {bound}"
            ]
        )
    when = round(kms.clock.now() + days * DAY, 3)
    target = kms.resolve(ctx, req["KeyId"], "ScheduleKeyDeletion", allow_alias=False, request=req)
    if _lifecycle.deletion_waits_for_replicas(kms, target):
        rec = _set_state(
            kms, ctx, req, "ScheduleKeyDeletion", state=KeyState.PENDING_REPLICA_DELETION,
            deletion_date=None, pending_window_days=days,
        )  # fmt: skip
        return {"KeyId": rec.arn, "KeyState": rec.state.value, "PendingWindowInDays": days}
    rec = _set_state(
        kms,
        ctx,
        req,
        "ScheduleKeyDeletion",
        state=KeyState.PENDING_DELETION,
        deletion_date=when,
        pending_window_days=days,
    )
    return {
        "KeyId": rec.arn,
        "DeletionDate": when,
        "KeyState": rec.state.value,
        "PendingWindowInDays": days,
    }


def cancel_key_deletion(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """CancelKeyDeletion: the key comes back Disabled."""
    rec = _set_state(
        kms,
        ctx,
        req,
        "CancelKeyDeletion",
        state=KeyState.DISABLED,
        deletion_date=None,
        pending_window_days=None,
    )
    return {"KeyId": rec.arn}


def delete_due_keys(kms: Kms) -> list[str]:
    """The scheduler's deletion pass: every key whose waiting period has ended is deleted,
    with its material, aliases and tags. Returns the deleted key ids."""
    now = kms.clock.now()
    with kms.engine.connect() as conn:
        due = kms_repo.due_deletions(conn, now)
    deleted = []
    for key_id in due:
        try:
            with kms.transaction() as conn:
                rec = kms_repo.get_key(conn, key_id, for_update=True)  # it may have been cancelled
                if (
                    rec is not None
                    and rec.state is KeyState.PENDING_DELETION
                    and rec.deletion_date is not None
                    and rec.deletion_date <= now
                ):
                    moved_to = _rehome.rehome(kms, conn, rec)
                    if moved_to is None:
                        kms_repo.delete_key(conn, key_id)
                        deleted.append(key_id)
                    else:  # only this region of a multi-Region key goes
                        log.info("key %s left %s; its home is now %s", key_id, rec.region,
                                 moved_to)  # fmt: skip
                        deleted.append(f"{key_id}@{rec.region}")
        except SQLAlchemyError:
            log.exception("deleting key %s failed; the next pass retries", key_id)
            continue
        if rec is not None and rec.custom_key_store_id is not None and key_id in deleted:
            custom_key_stores.delete_cluster_key(kms, rec)
    return deleted


HANDLERS: dict[str, c.Handler] = {
    "CreateKey": create_key,
    "DescribeKey": describe_key,
    "ListKeys": list_keys,
    "EnableKey": enable_key,
    "DisableKey": disable_key,
    "UpdateKeyDescription": update_key_description,
    "ScheduleKeyDeletion": schedule_key_deletion,
    "CancelKeyDeletion": cancel_key_deletion,
}
