"""AWS's authorization logic over the policy engine: a resource-based policy (a key policy, a
role's trust policy) together with the caller's identity-based policies.

* An explicit Deny in any applicable policy wins.
* Same account: the resource policy must allow the caller; if it names the caller directly
  (user, role, session or ``*``) that suffices, if it names the account (root) it delegates to
  IAM and an identity policy of the caller must allow too.
* Cross-account: the resource policy must allow (the caller or its account) *and* an identity
  policy of the caller must allow.
* Actions with no resource policy (CreateKey, ListKeys, ...) need an identity policy allow.
* A role session with a session policy (AssumeRole's ``Policy``) is allowed at most what that
  policy allows, and an explicit Deny in it wins. (AWS exempts what a resource-based policy
  grants to the session's own ARN; here the session policy limits that too.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from strongroom.errors import AwsError
from strongroom.iam.policy import (
    Caller,
    Decision,
    Effect,
    Policy,
    PolicyKind,
    RequestFacts,
    evaluate,
    parse_policy,
)
from strongroom.iam.principal import Principal
from strongroom.iam.roles import RoleStore
from strongroom.storage.iam_repo import RoleRow

__all__ = ["Authorizer", "Verdict", "caller_of"]

_PARSE_CACHE_LIMIT = 4096
_IAM_ARN = re.compile(r"arn:aws:iam::(\d{12}):(user|role)/(.+)")


@dataclass(frozen=True, slots=True)
class Verdict:
    """An authorization outcome; ``reason`` completes AWS's AccessDenied sentence."""

    allowed: bool
    reason: str = ""
    resource_decision: Decision | None = None

    @property
    def explicit_deny(self) -> bool:
        return self.reason.startswith("with an explicit deny")


def caller_of(principal: Principal) -> Caller:
    """The policy engine's view of a principal."""
    if principal.kind == "AssumedRole":
        return Caller(
            principal.arn,
            principal.account_id,
            "AssumedRole",
            role_arn=principal.identity_arn,
            userid=principal.unique_id,
            source_identity=principal.source_identity,
            principal_tags=principal.session_tags,
        )
    return Caller(
        principal.arn,
        principal.account_id,
        "User",
        username=principal.name,
        userid=principal.unique_id,
    )


class Authorizer:
    """Parses (with a cache) and evaluates policies for principals of the identity store."""

    def __init__(self, roles: RoleStore) -> None:
        self._roles = roles
        self._parsed: dict[tuple[PolicyKind, str], Policy] = {}

    def parsed(self, text: str, kind: PolicyKind) -> Policy:
        """A stored policy document, parsed once (stored documents were validated)."""
        key = (kind, text)
        found = self._parsed.get(key)
        if found is None:
            if len(self._parsed) >= _PARSE_CACHE_LIMIT:
                self._parsed.clear()
            found = self._parsed[key] = parse_policy(text, kind=kind)
        return found

    def principal_exists(self, arn: str) -> bool:
        """Whether a principal named in a policy exists (accounts and sessions always do)."""
        match = _IAM_ARN.fullmatch(arn)
        if match is None:
            return True
        account, kind, name = match.group(1), match.group(2), match.group(3).rsplit("/", 1)[-1]
        if kind == "role":
            return self._roles.get_role(account, name) is not None
        return self._roles.user_exists(account, name)

    def identity_documents(self, principal: Principal) -> tuple[str, ...]:
        """The inline policy documents of a user, or of a session's role."""
        owner_kind = "role" if principal.kind == "AssumedRole" else "user"
        return self._roles.documents(owner_kind, principal.account_id, principal.name)

    def identity_effect(self, principal: Principal, facts: RequestFacts) -> Effect:
        """DENY if any identity policy explicitly denies, ALLOW if one allows, else NONE."""
        allowed = False
        for text in self.identity_documents(principal):
            decision = evaluate(self.parsed(text, "identity"), facts, match_principal=False)
            if decision.denied:
                return Effect.DENY
            allowed = allowed or decision.allowed
        return Effect.ALLOW if allowed else Effect.NONE

    def decide(
        self,
        principal: Principal,
        facts: RequestFacts,
        resource_policy: Policy | None,
        resource_account: str,
    ) -> Verdict:
        """The combined decision (see the module docstring), within the caller's session
        policy if it has one."""
        verdict = self._decide(principal, facts, resource_policy, resource_account)
        if principal.session_policy is None or verdict.explicit_deny:
            return verdict
        session = evaluate(
            self.parsed(principal.session_policy, "identity"), facts, match_principal=False
        )
        if session.denied:
            return Verdict(False, "with an explicit deny in a session policy", None)
        if verdict.allowed and not session.allowed:
            return Verdict(False, f"because no session policy allows the {facts.action} action")
        return verdict

    def _decide(
        self,
        principal: Principal,
        facts: RequestFacts,
        resource_policy: Policy | None,
        resource_account: str,
    ) -> Verdict:
        action = facts.action
        res = None
        if resource_policy is not None:
            res = evaluate(resource_policy, facts, match_principal=True)
            if res.denied:
                return Verdict(False, "with an explicit deny in a resource-based policy", res)
        identity = self.identity_effect(principal, facts)
        if identity is Effect.DENY:
            return Verdict(False, "with an explicit deny in an identity-based policy", res)
        no_identity = f"because no identity-based policy allows the {action} action"
        if res is None:
            ok = identity is Effect.ALLOW and principal.account_id == resource_account
            return Verdict(ok, "" if ok else no_identity)
        if not res.allowed:
            return Verdict(
                False, f"because no resource-based policy allows the {action} action", res
            )
        needs_identity = res.delegated or principal.account_id != resource_account
        if needs_identity and identity is not Effect.ALLOW:
            return Verdict(False, no_identity, res)
        return Verdict(True, "", res)

    def check_assume_role(
        self,
        caller: Principal,
        role_arn: str,
        role: RoleRow | None,
        context: Mapping[str, tuple[str, ...]],
        action: str = "sts:AssumeRole",
    ) -> None:
        """AccessDenied unless ``caller`` may assume ``role`` (its trust policy and, where
        the trust policy delegates or the caller is in another account, IAM); ``action`` is
        sts:AssumeRole, or what the call also asks (sts:SetSourceIdentity)."""
        facts = RequestFacts(action, role_arn, caller_of(caller), dict(context))
        verdict = (
            Verdict(False)
            if role is None
            else self.decide(
                caller, facts, self.parsed(role.trust_policy, "trust"), role.account_id
            )
        )
        if not verdict.allowed:
            raise AwsError(
                "AccessDenied",
                f"User: {caller.arn} is not authorized to perform: {action} on resource: "
                f"{role_arn}",
                403,
            )
