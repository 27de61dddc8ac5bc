"""What a policy is evaluated against: the caller and the request (AWS's "request context")."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from strongroom.iam.policy.variables import Context

__all__ = ["Caller", "CallerType", "RequestFacts", "global_keys"]

CallerType = Literal["User", "AssumedRole", "Root", "Service"]

# aws:PrincipalType as the IAM User Guide lists it for each kind of caller.
_PRINCIPAL_TYPE: dict[str, str] = {"User": "User", "AssumedRole": "AssumedRole", "Root": "Account"}


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal making the request.

    ``arn`` is the user ARN, the ``arn:aws:sts::<acct>:assumed-role/<role>/<session>`` session ARN,
    ``arn:aws:iam::<acct>:root`` for the account root, or the service principal name
    (``"ec2.amazonaws.com"``) for a service. ``role_arn`` (with its path) is set for sessions.
    """

    arn: str
    account_id: str
    type: CallerType
    role_arn: str | None = None
    username: str | None = None
    userid: str | None = None
    source_identity: str | None = None
    principal_tags: tuple[tuple[str, str], ...] = ()

    def derived_context(self) -> dict[str, tuple[str, ...]]:
        """The global condition keys AWS derives from the principal, lower-cased."""
        out: dict[str, tuple[str, ...]] = {}
        if self.type == "Service":
            return out
        out["aws:principalaccount"] = (self.account_id,)
        out["kms:calleraccount"] = (self.account_id,)
        out["aws:principaltype"] = (_PRINCIPAL_TYPE[self.type],)
        principal_arn = self.role_arn if self.type == "AssumedRole" else self.arn
        if principal_arn:
            out["aws:principalarn"] = (principal_arn,)
        if self.type == "User" and self.username:
            out["aws:username"] = (self.username,)
        if self.userid:
            out["aws:userid"] = (self.userid,)
        if self.source_identity:
            out["aws:sourceidentity"] = (self.source_identity,)
        for key, value in self.principal_tags:
            out[f"aws:principaltag/{key.lower()}"] = (value,)
        return out


def global_keys(
    source_ip: str, region: str, secure_transport: bool, now: float
) -> dict[str, tuple[str, ...]]:
    """The global condition keys of the request itself, which every service's requests have:
    ``aws:SourceIp`` (absent without an address), ``aws:SecureTransport``,
    ``aws:RequestedRegion``, ``aws:CurrentTime`` and ``aws:EpochTime`` (``now``, Unix time)."""
    second = int(now)
    out: dict[str, tuple[str, ...]] = {
        "aws:SecureTransport": ("true" if secure_transport else "false",),
        "aws:RequestedRegion": (region,),
        "aws:CurrentTime": (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)),),
        "aws:EpochTime": (str(second),),
    }
    if source_ip:
        out["aws:SourceIp"] = (source_ip,)
    return out


def _values(raw: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (raw,) if isinstance(raw, str) else tuple(raw)


@dataclass(frozen=True)
class RequestFacts:
    """One authorization question: may ``principal`` perform ``action`` on ``resource``?

    ``context`` maps condition keys (any case: key names are case-insensitive, including the
    ``<key>`` part of ``kms:EncryptionContext:<key>``) to their values as strings; a multivalued key
    (``kms:EncryptionContextKeys``, ``aws:TagKeys``) has several. A key with no values is absent.
    Keys derived from ``principal`` (``aws:username``, ``aws:userid``, ``aws:PrincipalArn``,
    ``aws:PrincipalAccount``, ``aws:PrincipalType``, ``kms:CallerAccount``,
    ``aws:SourceIdentity``) are added unless
    ``context`` gives them.
    """

    action: str
    resource: str
    principal: Caller
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @cached_property
    def action_key(self) -> str:
        """The action lower-cased: action names are case-insensitive."""
        return self.action.lower()

    @cached_property
    def condition_context(self) -> Context:
        """The full request context with lower-cased key names and absent keys dropped.

        Keys that differ only in case (two encryption context pairs ``AppName`` and ``appname``)
        name the same condition key, which then has the values of both.
        """
        given: dict[str, tuple[str, ...]] = {}
        for key, raw in self.context.items():
            lowered = key.lower()
            values = given.get(lowered, ()) + _values(raw)
            given[lowered] = tuple(dict.fromkeys(values))
        merged = self.principal.derived_context()
        for key, values in given.items():
            if values:
                merged[key] = values
            else:
                merged.pop(key, None)
        return merged
