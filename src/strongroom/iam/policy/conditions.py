"""The Condition element: operators, ``...IfExists``, ``ForAnyValue:``/``ForAllValues:`` and Null.

Semantics (IAM User Guide, "Condition operators" and "Multivalued context keys"):

* several values for one key are ORed; several keys, and several operators, are ANDed;
* a negated operator (``StringNotEquals``, ``NotIpAddress``, ``ArnNotLike`` ...) is the complement
  of its positive form, so with the key absent it is true and with several request values it is
  true only when no request value matches any policy value;
* a key absent from the request (or with no values) makes a plain operator false (negated: true),
  ``...IfExists`` true, ``ForAllValues:`` true and ``ForAnyValue:`` false;
* ``ForAllValues:`` requires every request value to satisfy the operator, ``ForAnyValue:`` at
  least one; a plain operator over several request values behaves like ``ForAnyValue:``;
* ``Null`` is true for ``"true"`` when the key is absent and for ``"false"`` when it is present.

Policy variables work with the String, ARN and Bool operators only; elsewhere ``${`` is literal.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol

from strongroom.iam.policy.errors import PolicyError
from strongroom.iam.policy.matching import ArnPattern, StringPattern
from strongroom.iam.policy.values import (
    IpNetwork,
    parse_base64,
    parse_bool,
    parse_date,
    parse_ip_address,
    parse_ip_network,
    parse_number,
)
from strongroom.iam.policy.variables import (
    Context,
    Template,
    has_variables,
    literal_text,
    parse_template,
    resolve_string,
)

__all__ = ["OPERATORS", "Condition", "Qualifier", "parse_conditions"]

Qualifier = Literal["", "ForAnyValue", "ForAllValues"]
_VARIABLE_FAMILIES = frozenset({"String", "StringIgnoreCase", "StringLike", "Arn", "Bool"})
_QUALIFIERS: tuple[Qualifier, ...] = ("ForAnyValue", "ForAllValues")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "LessThanEquals": operator.le,
    "GreaterThan": operator.gt,
    "GreaterThanEquals": operator.ge,
}


class _Test(Protocol):
    def matches(self, value: str, context: Context) -> bool:
        """True when the request ``value`` matches one of the policy values."""
        ...


@dataclass(frozen=True, slots=True)
class _StringEquals:
    literals: frozenset[str]
    templates: tuple[Template, ...]
    fold: bool

    def matches(self, value: str, context: Context) -> bool:
        probe = value.lower() if self.fold else value
        if probe in self.literals:
            return True
        for template in self.templates:
            resolved = resolve_string(template, context)
            if resolved is not None and (resolved.lower() if self.fold else resolved) == probe:
                return True
        return False


@dataclass(frozen=True, slots=True)
class _Patterns:
    patterns: tuple[StringPattern | ArnPattern, ...]

    def matches(self, value: str, context: Context) -> bool:
        return any(p.matches(value, context) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class _Ordered:
    compare: Callable[[Any, Any], bool]
    parse: Callable[[str], Decimal | float | None]
    limits: tuple[Decimal | float, ...]

    def matches(self, value: str, context: Context) -> bool:
        parsed = self.parse(value)
        return parsed is not None and any(self.compare(parsed, limit) for limit in self.limits)


@dataclass(frozen=True, slots=True)
class _Binary:
    blobs: frozenset[bytes]

    def matches(self, value: str, context: Context) -> bool:
        return parse_base64(value) in self.blobs


@dataclass(frozen=True, slots=True)
class _Ip:
    networks: tuple[IpNetwork, ...]

    def matches(self, value: str, context: Context) -> bool:
        address = parse_ip_address(value)
        return address is not None and any(address in net for net in self.networks)


def _bad_value(op: str, key: str, value: str, kind: str) -> PolicyError:
    return PolicyError(f'Condition {op} on "{key}" has an invalid {kind} value: "{value}".')


def _templates(values: list[str], variables: bool) -> list[Template]:
    return [parse_template(v, variables=variables) for v in values]


def _string_equals(values: list[str], variables: bool, fold: bool) -> _Test:
    literals: set[str] = set()
    dynamic: list[Template] = []
    for template in _templates(values, variables):
        text = literal_text(template)
        if text is None:
            dynamic.append(template)
        else:
            literals.add(text.lower() if fold else text)
    return _StringEquals(frozenset(literals), tuple(dynamic), fold)


def _bool(values: list[str], variables: bool, op: str, key: str) -> _Test:
    for value, template in zip(values, _templates(values, variables), strict=True):
        if not has_variables(template) and parse_bool(value) is None:
            raise _bad_value(op, key, value, "Boolean")
    return _string_equals(values, variables, True)


def _ordered(
    values: list[str],
    compare: str,
    parse: Callable[[str], Decimal | float | None],
    where: tuple[str, str, str],
) -> _Test:
    limits = []
    for value in values:
        parsed = parse(value)
        if parsed is None:
            raise _bad_value(*where[:2], value, where[2])
        limits.append(parsed)
    return _Ordered(_COMPARE[compare], parse, tuple(limits))


def _build_test(family: str, values: list[str], variables: bool, op: str, key: str) -> _Test:
    """The value test for one operator family over the policy values."""
    if family in ("String", "StringIgnoreCase"):
        return _string_equals(values, variables, family == "StringIgnoreCase")
    if family == "StringLike":
        return _Patterns(tuple(StringPattern.compile(t) for t in _templates(values, variables)))
    if family == "Arn":
        return _Patterns(tuple(ArnPattern.compile(t) for t in _templates(values, variables)))
    if family == "Bool":
        return _bool(values, variables, op, key)
    if family.startswith(("Numeric", "Date")):
        kind = "Numeric" if family.startswith("Numeric") else "Date"
        parse = parse_number if kind == "Numeric" else parse_date
        return _ordered(values, family[len(kind) :], parse, (op, key, kind))
    if family == "Binary":
        blobs = [parse_base64(v) for v in values]
        for value, blob in zip(values, blobs, strict=True):
            if blob is None:
                raise _bad_value(op, key, value, "base64")
        return _Binary(frozenset(b for b in blobs if b is not None))
    networks = [parse_ip_network(v) for v in values]
    for value, net in zip(values, networks, strict=True):
        if net is None:
            raise _bad_value(op, key, value, "IP address or CIDR")
    return _Ip(tuple(n for n in networks if n is not None))


def _table() -> dict[str, tuple[str, bool]]:
    """Operator name → (value family, negated)."""
    table: dict[str, tuple[str, bool]] = {
        "StringEquals": ("String", False),
        "StringNotEquals": ("String", True),
        "StringEqualsIgnoreCase": ("StringIgnoreCase", False),
        "StringNotEqualsIgnoreCase": ("StringIgnoreCase", True),
        "StringLike": ("StringLike", False),
        "StringNotLike": ("StringLike", True),
        "Bool": ("Bool", False),
        "BinaryEquals": ("Binary", False),
        "IpAddress": ("Ip", False),
        "NotIpAddress": ("Ip", True),
        "ArnEquals": ("Arn", False),
        "ArnLike": ("Arn", False),
        "ArnNotEquals": ("Arn", True),
        "ArnNotLike": ("Arn", True),
        "Null": ("Null", False),
    }
    for kind in ("Numeric", "Date"):
        for compare in _COMPARE:
            table[f"{kind}{compare}"] = (f"{kind}{compare}", False)
        table[f"{kind}NotEquals"] = (f"{kind}Equals", True)
    return table


OPERATORS: dict[str, tuple[str, bool]] = _table()
"""Every base condition operator Strongroom evaluates, to (value family, negated)."""


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``operator: {key: values}`` test of a statement's Condition element."""

    operator: str  # as written, e.g. "ForAnyValue:StringLikeIfExists"
    key: str  # lower-cased: condition key names are case-insensitive
    values: tuple[str, ...]
    qualifier: Qualifier
    if_exists: bool
    negated: bool
    test: _Test | None  # None for Null
    null: frozenset[bool]  # for Null: the accepted answers to "is the key absent?"

    def holds(self, context: Context) -> bool:
        """Evaluate this condition against the request context."""
        present = context.get(self.key)
        if self.test is None:
            return (not present) in self.null
        if not present:
            if self.if_exists or self.qualifier == "ForAllValues":
                return True
            return self.negated and self.qualifier == ""
        test, negated = self.test, self.negated
        if len(present) == 1:  # every qualifier agrees on a single value
            return test.matches(present[0], context) != negated
        if self.qualifier == "ForAllValues":
            return all(test.matches(v, context) != negated for v in present)
        if self.qualifier == "ForAnyValue":
            return any(test.matches(v, context) != negated for v in present)
        return any(test.matches(v, context) for v in present) != negated


def _split_operator(name: str) -> tuple[Qualifier, str, bool]:
    """``ForAnyValue:StringLikeIfExists`` → (``ForAnyValue``, ``StringLike``, True)."""
    qualifier: Qualifier = ""
    base = name
    for candidate in _QUALIFIERS:
        if name.startswith(candidate + ":"):
            qualifier, base = candidate, name[len(candidate) + 1 :]
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    if base not in OPERATORS:
        raise PolicyError(f'Condition operator "{name}" is not supported.')
    if base == "Null" and (if_exists or qualifier):
        raise PolicyError(f'Condition operator "{name}" is not valid: Null takes no qualifier.')
    return qualifier, base, if_exists


def _scalar(value: object, op: str, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise PolicyError(f'Condition {op} on "{key}" must have string, number or Boolean values.')


def _values(raw: object, op: str, key: str) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise PolicyError(f'Condition {op} on "{key}" has an empty list of values.')
    return [_scalar(item, op, key) for item in items]


def _check_key(key: str, op: str, qualifier: Qualifier, kind: str) -> None:
    if ":" not in key or key.startswith(":") or key.endswith(":"):
        raise PolicyError(f'Condition key "{key}" under {op} is not of the form "prefix:name".')
    lowered = key.lower()
    overly_permissive = lowered.startswith(("kms:encryptioncontext:", "aws:requesttag/"))
    if kind == "resource" and qualifier == "ForAllValues" and overly_permissive:
        raise PolicyError(
            "OverlyPermissiveCondition: Using the ForAllValues set operator with a single-valued "
            "condition key matches requests without the specified [encryption context or tag] or "
            "with an unspecified [encryption context or tag]. To fix, remove ForAllValues."
        )


def _condition(op: str, key: str, raw: object, variables: bool, kind: str) -> Condition:
    qualifier, base, if_exists = _split_operator(op)
    _check_key(key, op, qualifier, kind)
    values = _values(raw, op, key)
    family, negated = OPERATORS[base]
    if family == "Null":
        answers = [parse_bool(v) for v in values]
        if any(a is None for a in answers):
            raise _bad_value(op, key, values[answers.index(None)], "Boolean")
        null = frozenset(a for a in answers if a is not None)
        return Condition(op, key.lower(), tuple(values), "", False, False, None, null)
    use_variables = variables and family in (
        "String",
        "StringIgnoreCase",
        "StringLike",
        "Arn",
        "Bool",
    )
    test = _build_test(family, values, use_variables, op, key)
    return Condition(
        op, key.lower(), tuple(values), qualifier, if_exists, negated, test, frozenset()
    )


def parse_conditions(block: object, *, variables: bool, kind: str) -> tuple[Condition, ...]:
    """Parse a Condition element; ``variables`` is true for ``"Version": "2012-10-17"``."""
    if not isinstance(block, dict):
        raise PolicyError("Condition must be an object of condition operators.")
    out: list[Condition] = []
    for op, keys in block.items():
        if not isinstance(op, str) or not isinstance(keys, dict) or not keys:
            raise PolicyError(f'Condition operator "{op}" must map to a non-empty object of keys.')
        out.extend(_condition(op, key, raw, variables, kind) for key, raw in keys.items())
    return tuple(out)
