"""Builders shared by the policy engine tests."""

from __future__ import annotations

import json
from typing import Any

from strongroom.iam.policy import Caller, Decision, Policy, PolicyKind, RequestFacts, evaluate
from strongroom.iam.policy import parse_policy as _parse

ACCOUNT = "111122223333"
OTHER = "444455556666"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

ROOT = Caller(f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, "Root", userid=ACCOUNT)
BOB = Caller(f"arn:aws:iam::{ACCOUNT}:user/bob", ACCOUNT, "User", None, "bob", "AIDABOB")
ALICE = Caller(f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT, "User", None, "alice", "AIDAALICE")
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/team/ExampleRole"
SESSION = Caller(
    f"arn:aws:sts::{ACCOUNT}:assumed-role/ExampleRole/s1",
    ACCOUNT,
    "AssumedRole",
    ROLE_ARN,
    None,
    "AROAEXAMPLE:s1",
)
EVE = Caller(f"arn:aws:iam::{OTHER}:user/eve", OTHER, "User", None, "eve", "AIDAEVE")
SERVICE = Caller("ec2.amazonaws.com", "", "Service")


def policy(*statements: dict[str, Any], kind: PolicyKind = "resource", **top: Any) -> Policy:
    """Parse a policy made of ``statements`` (Version 2012-10-17 unless ``top`` says otherwise)."""
    doc: dict[str, Any] = {"Version": "2012-10-17", **top, "Statement": list(statements)}
    if doc["Version"] is None:
        del doc["Version"]
    return _parse(json.dumps(doc), kind=kind)


def stmt(effect: str = "Allow", **elements: Any) -> dict[str, Any]:
    """A resource-policy statement: Principal ``*``, Action ``kms:*``, Resource ``*`` by default."""
    out: dict[str, Any] = {"Effect": effect}
    if "NotPrincipal" not in elements:
        out["Principal"] = "*"
    if "NotAction" not in elements:
        out["Action"] = "kms:*"
    if "NotResource" not in elements:
        out["Resource"] = "*"
    out.update(elements)
    return {k: v for k, v in out.items() if v is not None}


def facts(
    caller: Caller = BOB,
    action: str = "kms:Encrypt",
    resource: str = KEY_ARN,
    **context: Any,
) -> RequestFacts:
    """Request facts; ``context`` keys use ``__`` for ``:`` (``aws__SourceIp``) or pass ``ctx=``."""
    ctx: dict[str, tuple[str, ...]] = {}
    for key, value in context.pop("ctx", {}).items():
        ctx[key] = (value,) if isinstance(value, str) else tuple(value)
    for key, value in context.items():
        ctx[key.replace("__", ":")] = (value,) if isinstance(value, str) else tuple(value)
    return RequestFacts(action, resource, caller, ctx)


def decide(p: Policy, f: RequestFacts) -> Decision:
    return evaluate(p, f, match_principal=p.kind != "identity")


def holds(
    operator: str, key: str, values: Any, context: dict[str, Any] | None = None, **kw: Any
) -> bool:
    """Does a one-condition Allow statement apply to a request with ``context``?"""
    p = policy(stmt(Condition={operator: {key: values}}), **kw)
    return decide(p, facts(ctx=context or {})).allowed
