"""Alias operations: CreateAlias, UpdateAlias, DeleteAlias, ListAliases."""

from __future__ import annotations

import re

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from strongroom.errors import AwsError
from strongroom.kms.domain.identifiers import alias_arn, parse_key_ref
from strongroom.kms.domain.keys import KeyRecord
from strongroom.kms.ops import _common as c
from strongroom.kms.service import Kms, RequestContext
from strongroom.storage import kms_repo

__all__ = ["HANDLERS"]

MAX_ALIASES_PER_KEY = 50
_NAME = re.compile(r"alias/[a-zA-Z0-9/_-]+")


def _check_name(name: str) -> None:
    if not name.startswith("alias/"):
        raise AwsError("InvalidAliasNameException", 'Alias must start with the prefix "alias/".')
    if name.startswith("alias/aws/"):
        raise AwsError("NotAuthorizedException", "Cannot create alias with prefix 'alias/aws/'")
    if not _NAME.fullmatch(name):
        raise AwsError(
            "InvalidAliasNameException", f"{name} contains invalid characters for an alias"
        )


def _target(kms: Kms, ctx: RequestContext, req: c.Request, operation: str) -> KeyRecord:
    ref = parse_key_ref(req["TargetKeyId"], ctx.account_id, ctx.region, allow_alias=False)
    if ref.account_id != ctx.account_id:  # an alias can only name a key of its own account
        raise AwsError("NotFoundException", f"Key '{req['TargetKeyId']}' does not exist")
    rec = kms.resolve(ctx, req["TargetKeyId"], operation, allow_alias=False, request=req)
    if rec.account_id != ctx.account_id:
        raise AwsError("NotFoundException", f"Key '{rec.arn}' does not exist")
    return rec


def _kind(rec: KeyRecord) -> tuple[str, str]:
    """The key type UpdateAlias compares: symmetric, HMAC or asymmetric (any asymmetric spec:
    an RSA and an ECC signing key are the same type), with the key usage."""
    if rec.key_spec == "SYMMETRIC_DEFAULT":
        family = "SYMMETRIC"
    elif rec.key_spec.startswith("HMAC_"):
        family = "HMAC"
    else:
        family = "ASYMMETRIC"
    return family, rec.key_usage


def _check_room(conn: Connection, rec: KeyRecord) -> None:
    """LimitExceededException when ``rec`` already has the most aliases a key can have (in its
    region: a multi-Region replica's aliases are its own)."""
    if kms_repo.count_aliases(conn, rec.key_id, rec.region) >= MAX_ALIASES_PER_KEY:
        raise AwsError(
            "LimitExceededException", f"A key can have at most {MAX_ALIASES_PER_KEY} aliases"
        )


def create_alias(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """CreateAlias."""
    name = req["AliasName"]
    _check_name(name)
    rec = _target(kms, ctx, req, "CreateAlias")
    now = round(kms.clock.now(), 3)
    try:
        with kms.transaction() as conn:
            kms.locked(conn, rec, "CreateAlias")
            if kms_repo.get_alias(conn, ctx.account_id, ctx.region, name) is not None:
                arn = alias_arn(ctx.region, ctx.account_id, name)
                raise AwsError(
                    "AlreadyExistsException", f"An alias with the name {arn} already exists"
                )
            _check_room(conn, rec)
            row = kms_repo.AliasRow(ctx.account_id, ctx.region, name, rec.key_id, now, now)
            kms_repo.insert_alias(conn, row)
    except IntegrityError as exc:  # a concurrent CreateAlias of the same name won the race
        arn = alias_arn(ctx.region, ctx.account_id, name)
        raise AwsError(
            "AlreadyExistsException", f"An alias with the name {arn} already exists"
        ) from exc
    return {}


def _existing(kms: Kms, ctx: RequestContext, name: str) -> kms_repo.AliasRow:
    with kms.engine.connect() as conn:
        row = kms_repo.get_alias(conn, ctx.account_id, ctx.region, name)
    if row is None:
        arn = alias_arn(ctx.region, ctx.account_id, name)
        raise AwsError("NotFoundException", f"Alias {arn} is not found.")
    return row


def update_alias(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """UpdateAlias: the new target must have the same key type and usage as the current one."""
    name = req["AliasName"]
    if name.startswith("alias/aws/"):
        raise AwsError("NotAuthorizedException", "Cannot update alias with prefix 'alias/aws/'")
    row = _existing(kms, ctx, name)
    new = _target(kms, ctx, req, "UpdateAliasTarget")
    old = kms.load_key(row.key_id)
    if old is not None:
        kms.authorize(ctx, old, "UpdateAlias", request=req)
    if old is not None and _kind(old) != _kind(new):
        raise AwsError(
            "ValidationException",
            f"Alias {name} cannot be changed from a key of type {'/'.join(_kind(old))} "
            f"to a key of type {'/'.join(_kind(new))}",
        )
    with kms.transaction() as conn:
        kms.locked(conn, new, "UpdateAliasTarget")
        if new.key_id != row.key_id:
            _check_room(conn, new)
        kms_repo.update_alias(
            conn, ctx.account_id, ctx.region, name, new.key_id, round(kms.clock.now(), 3)
        )
    return {}


def delete_alias(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """DeleteAlias."""
    name = req["AliasName"]
    row = _existing(kms, ctx, name)
    target = kms.load_key(row.key_id)
    if target is not None:
        kms.authorize(ctx, target, "DeleteAlias", request=req)
    with kms.transaction() as conn:
        kms_repo.delete_alias(conn, ctx.account_id, ctx.region, name)
    return {}


def list_aliases(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """ListAliases (optionally of one key)."""
    key_filter = None
    if "KeyId" in req:
        ref = parse_key_ref(req["KeyId"], ctx.account_id, ctx.region, allow_alias=False)
        key_filter = kms.find(ref).key_id
    kms.authorize(ctx, None, "ListAliases", request=req)
    limit = c.page_limit(req, 50, 100)
    after = c.decode_marker("aliases", req.get("Marker"))
    with kms.engine.connect() as conn:
        rows = kms_repo.list_aliases(conn, ctx.account_id, ctx.region, key_filter, after, limit + 1)
    out: c.Response = {
        "Aliases": [
            {
                "AliasName": r.alias_name,
                "AliasArn": alias_arn(r.region, r.account_id, r.alias_name),
                "TargetKeyId": r.key_id,
                "CreationDate": r.created,
                "LastUpdatedDate": r.updated,
            }
            for r in rows[:limit]
        ],
        "Truncated": len(rows) > limit,
    }
    if len(rows) > limit:
        out["NextMarker"] = c.encode_marker("aliases", rows[limit - 1].alias_name)
    return out


HANDLERS: dict[str, c.Handler] = {
    "CreateAlias": create_alias,
    "UpdateAlias": update_alias,
    "DeleteAlias": delete_alias,
    "ListAliases": list_aliases,
}
