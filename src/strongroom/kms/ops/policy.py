"""Key policy operations: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies.

Policies are stored and returned as given. Their grammar and evaluation arrive with issue 3;
until then a policy must be a JSON object of at most 32 KB.
"""

from __future__ import annotations

from strongroom.errors import AwsError
from strongroom.kms.domain.keys import policy_is_json_object
from strongroom.kms.ops import _common as c
from strongroom.kms.service import Kms, RequestContext
from strongroom.storage import kms_repo

__all__ = ["HANDLERS", "MAX_POLICY_BYTES", "check_policy_document"]

MAX_POLICY_BYTES = 32_768


def check_policy_document(policy: str) -> None:
    """LimitExceededException over 32 KB; MalformedPolicyDocumentException if not a JSON object."""
    if len(policy.encode("utf-8")) > MAX_POLICY_BYTES:
        raise AwsError(
            "LimitExceededException",
            f"Policy document exceeds the maximum size of {MAX_POLICY_BYTES} bytes",
        )
    if not policy_is_json_object(policy):
        # TODO(issue 3): full policy grammar, principals, lockout safety check.
        raise AwsError("MalformedPolicyDocumentException", "The policy is not valid JSON")


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
    check_policy_document(req["Policy"])
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
