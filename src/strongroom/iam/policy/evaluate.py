"""Decisions: AWS's evaluation logic for one policy and one request.

Default deny, explicit deny wins: a statement applies when its Principal/NotPrincipal (if
``match_principal``), Action/NotAction, Resource/NotResource and every condition match. Any
applicable Deny gives :attr:`Effect.DENY`; otherwise any applicable Allow gives
:attr:`Effect.ALLOW`; otherwise :attr:`Effect.NONE` (an implicit deny). Statement order never
changes the effect.

For resource policies the decision also says whether the allow was *delegated*: every applicable
Allow named the caller only through its account (``"AWS": "111122223333"`` or ``...:root``), so, as
in AWS KMS, an identity policy of the caller must also allow the request. An Allow that names the
caller itself, its role, its account's root user as the caller, or ``*`` allows directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from strongroom.iam.policy.decision import Decision, Effect
from strongroom.iam.policy.document import Policy, Statement
from strongroom.iam.policy.facts import RequestFacts
from strongroom.iam.policy.principals import PrincipalMatch

__all__ = ["Decision", "Effect", "applies", "evaluate"]


_NONE = Decision(Effect.NONE)
_NO_CONTEXT: Mapping[str, tuple[str, ...]] = MappingProxyType({})
_INDEX_LIMIT = 1024  # distinct (action, resource) pairs remembered per policy


def _principal_match(statement: Statement, facts: RequestFacts) -> PrincipalMatch:
    if statement.principal is not None:
        return statement.principal.match(facts.principal)
    if statement.not_principal is not None:
        excluded = statement.not_principal.excludes_all_of(facts.principal)
        return PrincipalMatch.NONE if excluded else PrincipalMatch.DIRECT
    return PrincipalMatch.NONE


def _static_match(statement: Statement, action_key: str, resource: str) -> bool:
    """The request-independent part: Action/NotAction and a variable-free Resource/NotResource."""
    actions, resources = statement.actions, statement.resources
    if actions is None or not actions.matches(action_key):
        return False
    return resources is None or resources.dynamic or resources.matches(resource, _NO_CONTEXT)


def _dynamic_match(
    statement: Statement, facts: RequestFacts, match_principal: bool
) -> PrincipalMatch:
    """The rest: Resource with variables, Principal/NotPrincipal, then the conditions."""
    resources = statement.resources
    if (
        resources is not None
        and resources.dynamic
        and not resources.matches(facts.resource, facts.condition_context)
    ):
        return PrincipalMatch.NONE
    strength = _principal_match(statement, facts) if match_principal else PrincipalMatch.DIRECT
    if strength is PrincipalMatch.NONE or not statement.conditions:
        return strength
    context = facts.condition_context
    for condition in statement.conditions:
        if not condition.holds(context):
            return PrincipalMatch.NONE
    return strength


def applies(statement: Statement, facts: RequestFacts, *, match_principal: bool) -> PrincipalMatch:
    """How ``statement`` applies to the request: NONE, or the strength of its principal match."""
    if not _static_match(statement, facts.action_key, facts.resource):
        return PrincipalMatch.NONE
    return _dynamic_match(statement, facts, match_principal)


def _candidates(
    policy: Policy, facts: RequestFacts
) -> tuple[tuple[Statement, ...], tuple[Statement, ...]]:
    key = (facts.action_key, facts.resource)
    found = policy.index.get(key)
    if found is None:
        action, resource = key
        found = (
            tuple(s for s in policy.denies if _static_match(s, action, resource)),
            tuple(s for s in policy.allows if _static_match(s, action, resource)),
        )
        if len(policy.index) < _INDEX_LIMIT:
            policy.index[key] = found
    return found


def evaluate(policy: Policy, facts: RequestFacts, *, match_principal: bool) -> Decision:
    """Evaluate ``policy`` for ``facts``; ``match_principal`` checks Principal/NotPrincipal.

    Pass ``match_principal=True`` for resource and trust policies and ``False`` for identity
    policies (which name no principal: they apply to whoever they are attached to).
    """
    if match_principal and policy.kind == "identity":
        raise ValueError("identity policies name no principal: use match_principal=False")
    if not match_principal and policy.kind != "identity":
        raise ValueError(f"{policy.kind} policies must be evaluated with match_principal=True")
    denies, allows = _candidates(policy, facts)
    for statement in denies:
        if _dynamic_match(statement, facts, match_principal):
            return statement.decisions[0]
    best: Statement | None = None
    strength = PrincipalMatch.NONE
    for statement in allows:
        found = _dynamic_match(statement, facts, match_principal)
        if found > strength:
            best, strength = statement, found
            if found is PrincipalMatch.DIRECT:
                break
    if best is None:
        return _NONE
    return best.decisions[strength]
