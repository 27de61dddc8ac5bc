"""Grant operations: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant."""

from __future__ import annotations

import re

from strongroom.crypto import rng
from strongroom.errors import AwsError
from strongroom.kms.authz import (
    KmsAccessControl,
    decode_grant_token,
    encode_grant_token,
    grantee_matches,
)
from strongroom.kms.domain.keys import KeyRecord
from strongroom.kms.ops import _common as c
from strongroom.kms.ops import _grant_rules as rules
from strongroom.kms.service import Kms, RequestContext
from strongroom.storage import grant_repo

__all__ = ["HANDLERS"]

MAX_GRANTS_PER_KEY = 50_000
_GRANT_ID = re.compile(r"[0-9a-f]{64}")


def _access(kms: Kms) -> KmsAccessControl | None:
    return kms.authorizer if isinstance(kms.authorizer, KmsAccessControl) else None


def _through_grant(kms: Kms, ctx: RequestContext, rec: KeyRecord, req: c.Request) -> None:
    """CreateGrant allowed only by a grant: the child must be a subset of that grant."""
    access = _access(kms)
    if access is None or access.policy_verdict(ctx, "kms:CreateGrant", rec, req).allowed:
        return
    me = ctx.principal
    for parent in kms.grants(rec.key_id, rec.region):
        if (
            "CreateGrant" in parent.operations
            and grantee_matches(me.arn, me.identity_arn, parent.grantee_principal)
            and set(req["Operations"]) <= set(parent.operations)
            and rules.stricter(req.get("Constraints"), parent)
        ):  # fmt: skip
            return
    raise AwsError(
        "AccessDeniedException",
        f"User: {ctx.principal.arn} is not authorized to perform: kms:CreateGrant on resource: "
        f"{rec.arn} because the grant that allows CreateGrant does not allow this grant",
    )


def _check_principals(req: c.Request) -> None:
    """A grantee principal is given; service principals (newer in the API) are not served."""
    for name in ("GranteeServicePrincipal", "RetiringServicePrincipal"):
        if name in req:
            raise AwsError(
                "ValidationException",
                f"{name} is not supported here: no AWS service principals call this endpoint",
            )
    if "GranteePrincipal" not in req:
        raise AwsError(
            "ValidationException",
            "You must specify either GranteePrincipal or GranteeServicePrincipal",
        )


def create_grant(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """CreateGrant."""
    _check_principals(req)
    rec = kms.resolve(ctx, req["KeyId"], "CreateGrant", allow_alias=False, request=req)
    for member in ("GranteePrincipal", "RetiringPrincipal"):
        if member in req:
            rules.check_principal(kms.authorizer, req[member])
    constraints = req.get("Constraints") or None
    rules.check_constraints(constraints)
    rules.check_operations(rec, req["Operations"], constraints)
    _through_grant(kms, ctx, rec, req)
    c.check_dry_run(req)
    row = grant_repo.GrantRow(
        grant_id=rng.token_hex(32),
        key_id=rec.key_id,
        name=req.get("Name"),
        grantee_principal=req["GranteePrincipal"],
        retiring_principal=req.get("RetiringPrincipal"),
        issuing_account=ctx.account_id,
        operations=tuple(dict.fromkeys(req["Operations"])),
        constraints=constraints,
        created=round(kms.clock.now(), 3),
        region=rec.region,
    )
    with kms.transaction() as conn:
        kms.locked(conn, rec, "CreateGrant")
        if row.name is not None:
            mine = grant_repo.list_grants(
                conn, rec.key_id, rec.region, grantee=row.grantee_principal, name=row.name,
                limit=MAX_GRANTS_PER_KEY,
            )  # fmt: skip
            for old in mine:
                if _same_request(old, row):
                    return _token(old.grant_id)
        if grant_repo.count_grants(conn, rec.key_id, rec.region) >= MAX_GRANTS_PER_KEY:
            raise AwsError(
                "LimitExceededException", f"A key can have at most {MAX_GRANTS_PER_KEY} grants"
            )
        grant_repo.insert_grant(conn, row)
    return _token(row.grant_id)


def _same_request(old: grant_repo.GrantRow, new: grant_repo.GrantRow) -> bool:
    return (old.name, old.retiring_principal, set(old.operations), old.constraints) == (
        new.name, new.retiring_principal, set(new.operations), new.constraints)  # fmt: skip


def _token(grant_id: str) -> c.Response:
    return {"GrantToken": encode_grant_token(grant_id, rng.random_bytes(16)), "GrantId": grant_id}


def _entry(rec_arn: str, g: grant_repo.GrantRow) -> c.Response:
    entry: c.Response = {
        "KeyId": rec_arn,
        "GrantId": g.grant_id,
        "CreationDate": g.created,
        "GranteePrincipal": g.grantee_principal,
        "IssuingAccount": f"arn:aws:iam::{g.issuing_account}:root",
        "Operations": list(g.operations),
    }
    if g.name is not None:
        entry["Name"] = g.name
    if g.retiring_principal is not None:
        entry["RetiringPrincipal"] = g.retiring_principal
    if g.constraints:
        entry["Constraints"] = g.constraints
    return entry


def _grant_id(value: str) -> str:
    if not _GRANT_ID.fullmatch(value):
        raise AwsError("InvalidGrantIdException", f"Invalid grant ID {value}")
    return value


def _page(rows: list[grant_repo.GrantRow], limit: int, arn_of: dict[str, str]) -> c.Response:
    out: c.Response = {
        "Grants": [_entry(arn_of[g.key_id], g) for g in rows[:limit]],
        "Truncated": len(rows) > limit,
    }
    if len(rows) > limit:
        out["NextMarker"] = c.encode_marker("grants", rows[limit - 1].grant_id)
    return out


def list_grants(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """ListGrants (GrantId and GranteePrincipal filters; Limit 1-100, default 50)."""
    rec = kms.resolve(ctx, req["KeyId"], "ListGrants", allow_alias=False, request=req)
    grant_id = _grant_id(req["GrantId"]) if "GrantId" in req else None
    limit = c.page_limit(req, 50, 100)
    after = c.decode_marker("grants", req.get("Marker"))
    with kms.engine.connect() as conn:
        rows = grant_repo.list_grants(
            conn, rec.key_id, rec.region, grant_id=grant_id, grantee=req.get("GranteePrincipal"),
            after=after, limit=limit + 1,
        )  # fmt: skip
    return _page(rows, limit, {rec.key_id: rec.arn})


def list_retirable_grants(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """ListRetirableGrants: grants whose RetiringPrincipal is the given one."""
    if "RetiringServicePrincipal" in req:
        raise AwsError(
            "ValidationException",
            "RetiringServicePrincipal is only usable by callers in a service principal; "
            "no AWS service principals call this endpoint",
        )
    if "RetiringPrincipal" not in req:
        raise AwsError(
            "ValidationException",
            "You must specify either RetiringPrincipal or RetiringServicePrincipal",
        )
    rules.check_principal_syntax(req["RetiringPrincipal"])
    kms.authorize(ctx, None, "ListRetirableGrants", request=req)
    rules.check_own_principal(req["RetiringPrincipal"], ctx.account_id)
    limit = c.page_limit(req, 50, 100)
    after = c.decode_marker("grants", req.get("Marker"))
    with kms.engine.connect() as conn:
        rows = grant_repo.list_retirable(
            conn, req["RetiringPrincipal"], ctx.region, after, limit + 1
        )
    arns: dict[str, str] = {}
    for g in rows:
        key = kms.load_key(g.key_id, ctx.region)
        arns[g.key_id] = key.arn if key is not None else g.key_id
    return _page(rows, limit, arns)


def _may_retire(kms: Kms, ctx: RequestContext, rec: KeyRecord, g: grant_repo.GrantRow) -> bool:
    me = (ctx.principal.arn, ctx.principal.identity_arn)
    if g.retiring_principal in me:
        return True
    if g.grantee_principal in me and "RetireGrant" in g.operations:
        return True
    access = _access(kms)
    return access is None or access.policy_verdict(ctx, "kms:RetireGrant", rec, {}).allowed


def retire_grant(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """RetireGrant: by GrantToken, or by KeyId and GrantId."""
    if "GrantToken" in req:
        grant_id = decode_grant_token(req["GrantToken"])
    elif "KeyId" in req and "GrantId" in req:
        grant_id = _grant_id(req["GrantId"])
    else:
        raise AwsError("ValidationException", "Specify a GrantToken, or a KeyId and a GrantId.")
    grant = kms.grant(grant_id)
    if grant is None or grant.region != ctx.region:  # another region's grant is not here
        if "GrantToken" in req:
            raise AwsError("InvalidGrantTokenException", "The grant token is not valid.")
        raise AwsError("NotFoundException", f"Grant ID {grant_id} not found")
    rec = kms.load_key(grant.key_id, ctx.region)
    if rec is None or ("KeyId" in req and kms.resolve_id_only(ctx, req["KeyId"]) != rec.key_id):
        raise AwsError("NotFoundException", f"Grant ID {grant_id} not found")
    if not _may_retire(kms, ctx, rec, grant):
        raise AwsError(
            "AccessDeniedException",
            f"User: {ctx.principal.arn} is not authorized to perform: kms:RetireGrant on "
            f"resource: {rec.arn}",
        )
    c.check_dry_run(req)
    with kms.transaction() as conn:
        grant_repo.delete_grant(conn, grant_id)
    return {}


def revoke_grant(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """RevokeGrant."""
    rec = kms.resolve(ctx, req["KeyId"], "RevokeGrant", allow_alias=False, request=req)
    grant_id = _grant_id(req["GrantId"])
    c.check_dry_run(req)
    with kms.transaction() as conn:
        found = grant_repo.get_grant(conn, grant_id)
        if found is None or found.key_id != rec.key_id or found.region != rec.region:
            raise AwsError("NotFoundException", f"Grant ID {grant_id} not found")
        grant_repo.delete_grant(conn, grant_id)
    return {}


HANDLERS: dict[str, c.Handler] = {
    "CreateGrant": create_grant,
    "ListGrants": list_grants,
    "ListRetirableGrants": list_retirable_grants,
    "RetireGrant": retire_grant,
    "RevokeGrant": revoke_grant,
}
