"""Key rotation: EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
ListKeyRotations, and the scheduler's rotation pass.

Only symmetric encryption keys with Origin AWS_KMS rotate automatically (kms-api.md §3.9);
asymmetric and HMAC keys answer UnsupportedOperationException. A symmetric key with imported
material rotates on demand only, to material imported as PENDING_ROTATION. A rotation adds a
material version and makes it current; ciphertexts name their version, so every older one
keeps decrypting.
On-demand rotations run asynchronously (the scheduler's next pass), as in AWS, which is why
OnDemandRotationStartDate can be seen; at most 25 per key (this botocore model's limit).
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from strongroom.errors import AwsError
from strongroom.kms.domain.keys import KeyRecord, material_id
from strongroom.kms.domain.specs import ROTATABLE
from strongroom.kms.domain.states import KeyState
from strongroom.kms.ops import _common as c
from strongroom.kms.ops import _imported
from strongroom.kms.ops._lifecycle import regions_of
from strongroom.kms.service import Kms, RequestContext
from strongroom.storage import kms_repo, lifecycle_repo
from strongroom.storage.lifecycle_repo import RotationSettings

__all__ = ["HANDLERS", "ON_DEMAND_LIMIT", "rotate_due_keys"]

DAY = 86_400.0
ON_DEMAND_LIMIT = 25
DEFAULT_PERIOD = 365
_CONFLICT_WINDOW = 20 * 60.0
#: What a symmetric key with imported material supports (RotateKeyOnDemand rotates to material
#: imported as PENDING_ROTATION).
_IMPORTED_OK = frozenset({"RotateKeyOnDemand", "ListKeyRotations", "GetKeyRotationStatus"})
_PRIMARY_ONLY = frozenset({"EnableKeyRotation", "DisableKeyRotation", "RotateKeyOnDemand"})
log = logging.getLogger("strongroom.kms.rotation")


def _rotatable(rec: KeyRecord, operation: str) -> None:
    imported_ok = operation in _IMPORTED_OK and rec.key_spec == "SYMMETRIC_DEFAULT"
    if rec.origin != "AWS_KMS" and not (rec.origin == "EXTERNAL" and imported_ok):
        raise AwsError(
            "UnsupportedOperationException",
            f"{rec.arn} origin is {rec.origin} which is not valid for this operation.",
        )
    if rec.key_spec not in ROTATABLE:
        raise AwsError(
            "UnsupportedOperationException",
            f"{rec.arn} key spec {rec.key_spec} does not support key rotation.",
        )


def _key(kms: Kms, ctx: RequestContext, req: c.Request, operation: str) -> KeyRecord:
    rec = kms.resolve(ctx, req["KeyId"], operation, allow_alias=False, request=req)
    _rotatable(rec, operation)
    if rec.multi_region and operation in _PRIMARY_ONLY:
        primary, _ = regions_of(kms, rec)
        if primary != rec.region:
            raise AwsError(
                "UnsupportedOperationException",
                f"{rec.arn} is a multi-Region replica key; rotate its primary key in {primary}.",
            )
    return rec


def _settings(kms: Kms, key_id: str) -> RotationSettings:
    with kms.engine.connect() as conn:
        found = lifecycle_repo.get_rotation(conn, key_id)
    return found or RotationSettings(key_id, False, DEFAULT_PERIOD, None, None)


def enable_key_rotation(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """EnableKeyRotation: the first rotation is the enable date plus the period (90-2560 days)."""
    period = int(req.get("RotationPeriodInDays", DEFAULT_PERIOD))
    if not 90 <= period <= 2560:
        raise AwsError(
            "ValidationException", "RotationPeriodInDays must be between 90 and 2560 days."
        )
    rec = _key(kms, ctx, req, "EnableKeyRotation")
    now = kms.clock.now()
    with kms.transaction() as conn:
        kms.locked(conn, rec, "EnableKeyRotation")
        old = lifecycle_repo.get_rotation(conn, rec.key_id)
        base = now
        if old is not None and old.enabled and old.next_rotation is not None:
            base = old.next_rotation - old.period_days * DAY
        lifecycle_repo.put_rotation(
            conn,
            RotationSettings(
                rec.key_id, True, period, round(base + period * DAY, 3),
                None if old is None else old.on_demand_start,
            ),
        )  # fmt: skip
    return {}


def disable_key_rotation(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """DisableKeyRotation."""
    rec = _key(kms, ctx, req, "DisableKeyRotation")
    with kms.transaction() as conn:
        kms.locked(conn, rec, "DisableKeyRotation")
        old = lifecycle_repo.get_rotation(conn, rec.key_id)
        period = DEFAULT_PERIOD if old is None else old.period_days
        start = None if old is None else old.on_demand_start
        lifecycle_repo.put_rotation(conn, RotationSettings(rec.key_id, False, period, None, start))
    return {}


def get_key_rotation_status(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """GetKeyRotationStatus (a key pending deletion shows rotation disabled)."""
    rec = _key(kms, ctx, req, "GetKeyRotationStatus")
    s = _settings(kms, rec.key_id)
    pending = (KeyState.PENDING_DELETION, KeyState.PENDING_REPLICA_DELETION)
    enabled = s.enabled and rec.state not in pending
    out: c.Response = {"KeyRotationEnabled": enabled, "KeyId": rec.arn}
    if enabled:
        out["RotationPeriodInDays"] = s.period_days
        out["NextRotationDate"] = s.next_rotation
    if s.on_demand_start is not None:
        out["OnDemandRotationStartDate"] = s.on_demand_start
    return out


def rotate_key_on_demand(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """RotateKeyOnDemand: the rotation starts now and completes in the scheduler's next pass."""
    rec = _key(kms, ctx, req, "RotateKeyOnDemand")
    now = kms.clock.now()
    with kms.transaction() as conn:
        fresh = kms.locked(conn, rec, "RotateKeyOnDemand")
        if fresh.origin == "EXTERNAL":
            _check_imported_rotation(conn, fresh)
        s = lifecycle_repo.get_rotation(conn, rec.key_id) or RotationSettings(
            rec.key_id, False, DEFAULT_PERIOD, None, None
        )
        soon = (
            s.enabled and s.next_rotation is not None and s.next_rotation - now < _CONFLICT_WINDOW
        )
        if s.on_demand_start is not None or soon:
            raise AwsError(
                "ConflictException",
                f"A rotation of {rec.arn} is in progress or scheduled within 20 minutes.",
            )
        done = sum(
            e.rotation_type == "ON_DEMAND" for e in lifecycle_repo.list_events(conn, rec.key_id)
        )
        if done >= ON_DEMAND_LIMIT:
            raise AwsError(
                "LimitExceededException",
                f"{rec.arn} has reached the limit of {ON_DEMAND_LIMIT} on-demand rotations.",
            )
        lifecycle_repo.put_rotation(
            conn, RotationSettings(s.key_id, s.enabled, s.period_days, s.next_rotation, now)
        )
    return {"KeyId": rec.arn}


def _check_imported_rotation(conn: Connection, rec: KeyRecord) -> None:
    if rec.multi_region:
        raise AwsError(
            "UnsupportedOperationException",
            f"{rec.arn} is a multi-Region key with imported key material.",
        )
    if rec.state is KeyState.PENDING_IMPORT:
        raise AwsError("KMSInvalidStateException", f"{rec.arn} is pending import.")
    if not any(m.pending_rotation for m in lifecycle_repo.list_imported(conn, rec.key_id)):
        raise AwsError(
            "KMSInvalidStateException",
            f"{rec.arn} has no imported key material in PENDING_ROTATION state.",
        )


def list_key_rotations(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """ListKeyRotations: rotations only (default), or every material (ALL_KEY_MATERIAL)."""
    rec = _key(kms, ctx, req, "ListKeyRotations")
    limit = c.page_limit(req, 100, 1000)
    after = c.decode_marker("rotations", req.get("Marker"))
    start = int(after) if after is not None and after.isdigit() else 0
    everything = req.get("IncludeKeyMaterial") == "ALL_KEY_MATERIAL"
    with kms.engine.connect() as conn:
        events = lifecycle_repo.list_events(conn, rec.key_id)
        imported = {m.version: m for m in lifecycle_repo.list_imported(conn, rec.key_id)}
    chosen: list[tuple[int, lifecycle_repo.MaterialEvent | None]] = [
        (e.version, e) for e in events
        if everything or e.rotation_type in ("AUTOMATIC", "ON_DEMAND")
    ]  # fmt: skip
    if everything:
        chosen += [(v, None) for v, m in imported.items() if m.pending_rotation]
    chosen = sorted(item for item in chosen if item[0] > start)
    page = chosen[:limit]
    entries = [_entry(rec, v, e, imported.get(v)) for v, e in page]
    out: c.Response = {"Rotations": entries, "Truncated": len(chosen) > limit}
    if len(chosen) > limit:
        out["NextMarker"] = c.encode_marker("rotations", str(page[-1][0]))
    return out


def _entry(
    rec: KeyRecord,
    version: int,
    event: lifecycle_repo.MaterialEvent | None,
    imported: lifecycle_repo.ImportedMaterial | None,
) -> c.Response:
    state = "CURRENT" if version == rec.current_version else "NON_CURRENT"
    if imported is not None and imported.pending_rotation:
        state = "PENDING_ROTATION"
    entry: c.Response = {
        "KeyId": rec.arn,
        "KeyMaterialId": material_id(rec.key_id, version),
        "KeyMaterialState": state,
    }
    if imported is not None:
        entry.update(_imported.entry_fields(imported))
    if event is not None and event.rotation_type in ("AUTOMATIC", "ON_DEMAND"):
        entry["RotationDate"] = event.rotated_at
        entry["RotationType"] = event.rotation_type
    return entry


def _rotate_one(kms: Kms, key_id: str, now: float) -> bool:
    with kms.transaction() as conn:
        rec = kms_repo.get_key(conn, key_id, for_update=True)
        s = lifecycle_repo.get_rotation(conn, key_id)
        if rec is None or s is None or rec.state is not KeyState.ENABLED:
            return False
        on_demand = s.on_demand_start is not None
        automatic = s.enabled and s.next_rotation is not None and s.next_rotation <= now
        if not (on_demand or automatic):
            return False
        if rec.origin == "EXTERNAL":
            _imported.promote_pending(conn, rec, round(now, 3))
            automatic = False
        else:
            version = rec.current_version + 1
            wrapped = kms.keystore.wrap_material(rec.arn, version, kms.keystore.new_material())
            kind = "AUTOMATIC" if automatic else "ON_DEMAND"
            lifecycle_repo.add_material(conn, key_id, version, wrapped, kind, round(now, 3))
        next_rotation = s.next_rotation
        if automatic:
            next_rotation = round(now + s.period_days * DAY, 3)
        lifecycle_repo.put_rotation(
            conn, RotationSettings(key_id, s.enabled, s.period_days, next_rotation, None)
        )
    return True


def rotate_due_keys(kms: Kms) -> list[str]:
    """The scheduler's rotation pass: due automatic rotations and requested on-demand ones
    (an automatic and an on-demand rotation due together make one rotation). Keys that are not
    Enabled wait. Returns the rotated key ids."""
    now = kms.clock.now()
    with kms.engine.connect() as conn:
        due = lifecycle_repo.due_rotations(conn, now)
    rotated = []
    for key_id in due:
        try:
            if _rotate_one(kms, key_id, now):
                rotated.append(key_id)
        except SQLAlchemyError:
            log.exception("rotating key %s failed; the next pass retries", key_id)
    return rotated


HANDLERS: dict[str, c.Handler] = {
    "EnableKeyRotation": enable_key_rotation,
    "DisableKeyRotation": disable_key_rotation,
    "GetKeyRotationStatus": get_key_rotation_status,
    "RotateKeyOnDemand": rotate_key_on_demand,
    "ListKeyRotations": list_key_rotations,
}
