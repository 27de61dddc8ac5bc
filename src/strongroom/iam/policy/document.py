"""Policy documents: parse and validate JSON into typed, precompiled, frozen statements.

One grammar serves the three kinds of policy Strongroom stores:

* ``resource`` — key policies: each statement needs exactly one of Principal / NotPrincipal;
* ``identity`` — user and role policies: Principal / NotPrincipal are forbidden;
* ``trust`` — a role's trust policy: Principal / NotPrincipal required, Resource forbidden.

As AWS KMS does, a key-policy statement without Action/NotAction or without Resource/NotResource is
accepted but never applies. Identity policies must name both; trust statements must name actions.
Duplicate JSON object keys are refused: two parsers could otherwise read different policies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from strongroom.iam.policy.conditions import Condition, parse_conditions
from strongroom.iam.policy.decision import Decision, Effect
from strongroom.iam.policy.errors import PolicyError
from strongroom.iam.policy.matching import ArnPattern, Glob
from strongroom.iam.policy.principals import PrincipalSet, parse_principal
from strongroom.iam.policy.variables import Context, parse_template

__all__ = [
    "ActionSet",
    "Policy",
    "PolicyKind",
    "ResourceSet",
    "Statement",
    "parse_policy",
    "principal_arns",
]

PolicyKind = Literal["resource", "identity", "trust"]
VERSIONS = ("2012-10-17", "2008-10-17")
_TOP = frozenset({"Version", "Id", "Statement"})
_ELEMENTS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_ACTION = re.compile(r"[A-Za-z0-9*?-]+:[A-Za-z0-9*?_-]+")


@dataclass(frozen=True, slots=True)
class ActionSet:
    """An Action (``negated`` False) or NotAction element; patterns are lower-cased."""

    negated: bool
    patterns: tuple[Glob, ...]

    def matches(self, action_key: str) -> bool:
        """``action_key`` is the lower-cased action; True when the element covers it."""
        for pattern in self.patterns:
            if pattern.match(action_key):
                return not self.negated
        return self.negated


@dataclass(frozen=True, slots=True)
class ResourceSet:
    """A Resource (``negated`` False) or NotResource element; matching is case-sensitive."""

    negated: bool
    patterns: tuple[ArnPattern, ...]
    dynamic: bool  # some pattern has variables: matching needs the request context

    def matches(self, resource: str, context: Context) -> bool:
        """True when the element covers ``resource`` (variables resolved from ``context``)."""
        for pattern in self.patterns:
            if pattern.matches(resource, context):
                return not self.negated
        return self.negated


@dataclass(frozen=True, slots=True)
class Statement:
    """One parsed statement. ``effective`` is False when KMS would accept but never apply it."""

    index: int  # position in the document
    sid: str | None
    deny: bool
    principal: PrincipalSet | None
    not_principal: PrincipalSet | None
    actions: ActionSet | None
    resources: ResourceSet | None
    conditions: tuple[Condition, ...]
    effective: bool
    # What evaluation answers when this statement decides, indexed by PrincipalMatch strength
    # (for a Deny, every entry is the Deny): built once here, off the hot path.
    decisions: tuple[Decision, Decision, Decision] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.deny:
            deny = Decision(Effect.DENY, False, self.sid, self.index)
            decisions = (deny, deny, deny)
        else:
            delegated = Decision(Effect.ALLOW, True, self.sid, self.index)
            direct = Decision(Effect.ALLOW, False, self.sid, self.index)
            decisions = (Decision(Effect.NONE), delegated, direct)
        object.__setattr__(self, "decisions", decisions)


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed policy document. ``variables`` is true for ``"Version": "2012-10-17"``."""

    kind: PolicyKind
    version: str | None
    id: str | None
    statements: tuple[Statement, ...]
    denies: tuple[Statement, ...] = field(init=False, repr=False, compare=False)
    allows: tuple[Statement, ...] = field(init=False, repr=False, compare=False)
    # (action, resource) → the (denies, allows) whose Action and variable-free Resource match:
    # filled by evaluation, bounded there. Requests repeat few actions on few resources.
    index: dict[tuple[str, str], tuple[tuple[Statement, ...], tuple[Statement, ...]]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        live = [s for s in self.statements if s.effective]
        object.__setattr__(self, "denies", tuple(s for s in live if s.deny))
        object.__setattr__(self, "allows", tuple(s for s in live if not s.deny))

    @property
    def variables(self) -> bool:
        return self.version == "2012-10-17"


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise PolicyError(f'The policy contains the element "{key}" more than once.')
        out[key] = value
    return out


def _reject_constant(name: str) -> object:
    raise PolicyError(f"The policy is not valid JSON: {name} is not allowed.")


def _load(text: str) -> dict[str, object]:
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PolicyError(
            f"The policy is not valid JSON: {exc.msg} at position {exc.pos}."
        ) from None
    except RecursionError:
        raise PolicyError("The policy is not valid JSON: it is nested too deeply.") from None
    if not isinstance(doc, dict):
        raise PolicyError("The policy must be a JSON object.")
    return doc


def _strings(value: object, element: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise PolicyError(f"{element} must be a non-empty string or a non-empty list of strings.")
    return [str(item) for item in items]


def _only_one(raw: dict[str, object], a: str, b: str) -> tuple[str, object] | None:
    if a in raw and b in raw:
        raise PolicyError(f"A statement cannot have both {a} and {b}.")
    for name in (a, b):
        if name in raw:
            return name, raw[name]
    return None


def _actions(raw: dict[str, object]) -> ActionSet | None:
    found = _only_one(raw, "Action", "NotAction")
    if found is None:
        return None
    name, value = found
    patterns = []
    for action in _strings(value, name):
        if action != "*" and not _ACTION.fullmatch(action):
            raise PolicyError(f'{name} "{action}" is not valid: use "*" or "<service>:<action>".')
        patterns.append(Glob(action.lower()))
    return ActionSet(name == "NotAction", tuple(patterns))


def _resources(raw: dict[str, object], variables: bool) -> ResourceSet | None:
    found = _only_one(raw, "Resource", "NotResource")
    if found is None:
        return None
    name, value = found
    patterns = []
    for resource in _strings(value, name):
        pattern = ArnPattern.compile(parse_template(resource, variables=variables))
        if not pattern.wellformed:
            raise PolicyError(f'{name} "{resource}" must be "*" or an ARN (arn:partition:...).')
        patterns.append(pattern)
    dynamic = any(p.glob is None for p in patterns)
    return ResourceSet(name == "NotResource", tuple(patterns), dynamic)


def _principals(raw: dict[str, object], kind: PolicyKind) -> tuple[PrincipalSet | None, ...]:
    found = _only_one(raw, "Principal", "NotPrincipal")
    if kind == "identity":
        if found is not None:
            raise PolicyError(f"Identity policies cannot specify a principal ({found[0]}).")
        return None, None
    if found is None:
        raise PolicyError("Each statement of this policy must have a Principal or NotPrincipal.")
    name, value = found
    parsed = parse_principal(value, name)
    return (parsed, None) if name == "Principal" else (None, parsed)


def _require(raw: dict[str, object], kind: PolicyKind) -> None:
    has_action = "Action" in raw or "NotAction" in raw
    has_resource = "Resource" in raw or "NotResource" in raw
    if kind == "trust" and has_resource:
        raise PolicyError("Trust policies cannot specify Resource or NotResource.")
    if kind != "resource" and not has_action:
        raise PolicyError("Each statement of this policy must have an Action or NotAction.")
    if kind == "identity" and not has_resource:
        raise PolicyError("Each statement of this policy must have a Resource or NotResource.")


def _statement(index: int, raw: object, kind: PolicyKind, variables: bool) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError("Each statement must be a JSON object.")
    unknown = sorted(set(raw) - _ELEMENTS)
    if unknown:
        raise PolicyError(f'Statement element "{unknown[0]}" is not supported.')
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError("Sid must be a string.")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f'Effect must be "Allow" or "Deny", not {json.dumps(effect)}.')
    _require(raw, kind)
    principal, not_principal = _principals(raw, kind)
    actions = _actions(raw)
    resources = _resources(raw, variables)
    conditions = parse_conditions(raw.get("Condition", {}), variables=variables, kind=kind)
    effective = actions is not None and (resources is not None or kind == "trust")
    return Statement(
        index,
        sid,
        effect == "Deny",
        principal,
        not_principal,
        actions,
        resources,
        conditions,
        effective,
    )


def parse_policy(text: str, *, kind: PolicyKind) -> Policy:
    """Parse and validate a policy document; raise :class:`PolicyError` if it is not acceptable."""
    doc = _load(text)
    unknown = sorted(set(doc) - _TOP)
    if unknown:
        raise PolicyError(f'Policy element "{unknown[0]}" is not supported.')
    version = doc.get("Version")
    if version is not None and version not in VERSIONS:
        raise PolicyError(f"Version must be one of {', '.join(VERSIONS)}.")
    policy_id = doc.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise PolicyError("Id must be a string.")
    if "Statement" not in doc:
        raise PolicyError("The policy must have a Statement element.")
    raw = doc["Statement"]
    statements = raw if isinstance(raw, list) else [raw]
    if not statements:
        raise PolicyError("The policy must have at least one statement.")
    variables = version == "2012-10-17"
    parsed = tuple(_statement(i, s, kind, variables) for i, s in enumerate(statements))
    return Policy(kind, str(version) if version else None, policy_id, parsed)


def _named(policy: Policy) -> Iterator[str]:
    for statement in policy.statements:
        for principals in (statement.principal, statement.not_principal):
            if principals is not None:
                yield from principals.named


def principal_arns(policy: Policy) -> list[str]:
    """Every AWS principal the policy names, once each, account ids as ``...:root`` ARNs."""
    return list(dict.fromkeys(_named(policy)))
