"""Key policy operations: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies.

Policies are validated when stored (grammar, principals, the lockout safety check) and returned
exactly as given; :mod:`strongroom.kms.authz` evaluates them.
"""

from __future__ import annotations

from strongroom.errors import AwsError
from strongroom.iam.policy import PolicyError, parse_policy, principal_arns
from strongroom.kms.authz import KmsAccessControl
from strongroom.kms.domain.keys import KeyRecord
from strongroom.kms.ops import _common as c
from strongroom.kms.service import Kms, RequestContext
from strongroom.storage import kms_repo

__all__ = ["HANDLERS", "MAX_POLICY_BYTES", "check_policy_document"]

MAX_POLICY_BYTES = 32_768


def check_policy_document(
    kms: Kms, ctx: RequestContext, policy: str, key: KeyRecord | None, bypass: bool
) -> None:
    """A key policy about to be stored: at most 32 KB (LimitExceededException), valid grammar,
    only principals that exist, and - unless BypassPolicyLockoutSafetyCheck - it must still let
    the caller call PutKeyPolicy (MalformedPolicyDocumentException otherwise)."""
    if len(policy.encode("utf-8")) > MAX_POLICY_BYTES:
        raise AwsError(
            "LimitExceededException",
            f"Policy document exceeds the maximum size of {MAX_POLICY_BYTES} bytes",
        )
    try:
        parsed = parse_policy(policy, kind="resource")
    except PolicyError as exc:
        raise AwsError("MalformedPolicyDocumentException", exc.message) from exc
    access = kms.authorizer if isinstance(kms.authorizer, KmsAccessControl) else None
    if access is None:
        return
    if not all(access.principal_exists(arn) for arn in principal_arns(parsed)):
        raise AwsError(
            "MalformedPolicyDocumentException",
            "Policy contains a statement with one or more invalid principals.",
        )
    if bypass:
        return
    verdict = access.policy_verdict(ctx, "kms:PutKeyPolicy", key, {}, policy_text=policy)
    if not verdict.allowed:
        raise AwsError(
            "MalformedPolicyDocumentException",
            "The new key policy will not allow you to update the key policy in the future.",
        )


def _policy_name(req: c.Request) -> None:
    name = req.get("PolicyName", "default")
    if name != "default":
        raise AwsError("NotFoundException", "No such policy exists")


def get_key_policy(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """GetKeyPolicy."""
    rec = kms.resolve(ctx, req["KeyId"], "GetKeyPolicy", allow_alias=False, request=req)
    _policy_name(req)
    return {"Policy": rec.policy, "PolicyName": "default"}


def put_key_policy(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """PutKeyPolicy."""
    rec = kms.resolve(ctx, req["KeyId"], "PutKeyPolicy", allow_alias=False, request=req)
    _policy_name(req)
    check_policy_document(
        kms, ctx, req["Policy"], rec, bool(req.get("BypassPolicyLockoutSafetyCheck"))
    )
    with kms.transaction() as conn:
        fresh = kms.locked(conn, rec, "PutKeyPolicy")
        kms_repo.update_key(conn, fresh.replace(policy=req["Policy"]))
    return {}


def list_key_policies(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """ListKeyPolicies: only ``default`` exists."""
    kms.resolve(ctx, req["KeyId"], "ListKeyPolicies", allow_alias=False, request=req)
    c.decode_marker("policies", req.get("Marker"))
    return {"PolicyNames": ["default"], "Truncated": False}


HANDLERS: dict[str, c.Handler] = {
    "GetKeyPolicy": get_key_policy,
    "PutKeyPolicy": put_key_policy,
    "ListKeyPolicies": list_key_policies,
}
