"""The Principal and NotPrincipal elements: parsing, validation and matching.

Supported: ``"*"``, ``{"AWS": ...}`` with ``"*"``, a 12-digit account id,
``arn:aws:iam::<acct>:root``, user and role ARNs (with paths) and
``arn:aws:sts::<acct>:assumed-role/<role>/<session>``, and ``{"Service": ...}`` with service
principal names. An account id is the same principal as the account's root ARN.

A caller is a chain of identities, as AWS evaluates it: the account, then the role (for a
session), then the user, session or root itself. ``Principal`` applies when it names any identity
of the chain: naming the account matches every principal of the account (KMS calls this delegating
to IAM), naming a role matches its sessions. ``NotPrincipal`` applies when some identity of the
chain is not named: each identity is tested as the complement of ``Principal``, which is why the
IAM User Guide asks a Deny with NotPrincipal to list the account and the role too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from strongroom.iam.policy.errors import PolicyError
from strongroom.iam.policy.facts import Caller

__all__ = ["PrincipalMatch", "PrincipalSet", "caller_identities", "parse_principal"]

_ACCOUNT = re.compile(r"\d{12}")
_ROOT = re.compile(r"arn:aws:iam::(\d{12}):root")
_NAME = r"[\w+=,.@-]{1,128}"
_IDENTITY = re.compile(
    rf"arn:aws:iam::\d{{12}}:(?:user|role)/(?:{_NAME}/)*{_NAME}"
    rf"|arn:aws:sts::\d{{12}}:assumed-role/{_NAME}/{_NAME}"
)
_SERVICE = re.compile(r"[a-z0-9][a-z0-9.-]*\.amazonaws\.com(?:\.cn)?")
_TYPES = ("AWS", "Service")


class PrincipalMatch(IntEnum):
    """How a statement's Principal names the caller; higher is stronger."""

    NONE = 0
    ACCOUNT = 1  # through the caller's account: an identity policy must also allow
    DIRECT = 2  # the caller itself, its role, or everyone


@dataclass(frozen=True, slots=True)
class PrincipalSet:
    """The principals one Principal or NotPrincipal element names."""

    wildcard: bool
    accounts: frozenset[str]
    arns: frozenset[str]
    services: frozenset[str]
    named: tuple[str, ...]  # AWS principals in document order, account ids as root ARNs

    def match(self, caller: Caller) -> PrincipalMatch:
        """How this set, used as ``Principal``, names ``caller``."""
        if self.wildcard:
            return PrincipalMatch.DIRECT
        if caller.type == "Service":
            return PrincipalMatch.DIRECT if caller.arn in self.services else PrincipalMatch.NONE
        if caller.arn in self.arns or (
            caller.role_arn is not None and caller.role_arn in self.arns
        ):
            return PrincipalMatch.DIRECT
        if caller.account_id in self.accounts:
            return PrincipalMatch.DIRECT if caller.type == "Root" else PrincipalMatch.ACCOUNT
        return PrincipalMatch.NONE

    def excludes_all_of(self, caller: Caller) -> bool:
        """True when this set, used as ``NotPrincipal``, names every identity of ``caller``."""
        if self.wildcard:
            return True
        for kind, value in caller_identities(caller):
            pool = {"account": self.accounts, "arn": self.arns, "service": self.services}[kind]
            if value not in pool:
                return False
        return True


def caller_identities(caller: Caller) -> tuple[tuple[str, str], ...]:
    """The chain of identities AWS evaluates for ``caller``, outermost first."""
    if caller.type == "Service":
        return (("service", caller.arn),)
    if caller.type == "Root":
        return (("account", caller.account_id),)
    if caller.type == "AssumedRole" and caller.role_arn is not None:
        return (("account", caller.account_id), ("arn", caller.role_arn), ("arn", caller.arn))
    return (("account", caller.account_id), ("arn", caller.arn))


def _strings(value: object, what: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise PolicyError(f"{what} must be a non-empty string or a non-empty list of strings.")
    return [str(item) for item in items]


def _invalid(element: str, kind: str, value: str) -> PolicyError:
    return PolicyError(
        "Policy contains a statement with one or more invalid principals: "
        f'{element} "{kind}": "{value}".'
    )


def _add_aws(value: str, element: str, acc: dict[str, list[str]]) -> None:
    if value == "*":
        acc["wildcard"].append(value)
    elif _ACCOUNT.fullmatch(value):
        acc["accounts"].append(value)
        acc["named"].append(f"arn:aws:iam::{value}:root")
    elif root := _ROOT.fullmatch(value):
        acc["accounts"].append(root.group(1))
        acc["named"].append(value)
    elif _IDENTITY.fullmatch(value):
        acc["arns"].append(value)
        acc["named"].append(value)
    else:
        raise _invalid(element, "AWS", value)


def parse_principal(value: object, element: str) -> PrincipalSet:
    """Parse the value of a ``Principal`` or ``NotPrincipal`` element (``element`` names it)."""
    if value == "*":
        return PrincipalSet(True, frozenset(), frozenset(), frozenset(), ())
    if not isinstance(value, dict) or not value:
        raise PolicyError(f'{element} must be "*" or an object such as {{"AWS": "<principal>"}}.')
    acc: dict[str, list[str]] = {k: [] for k in ("wildcard", "accounts", "arns", "named")}
    services: list[str] = []
    for kind, raw in value.items():
        if kind not in _TYPES:
            raise PolicyError(f'{element} type "{kind}" is not supported; use "AWS" or "Service".')
        for item in _strings(raw, f'{element} "{kind}"'):
            if kind == "AWS":
                _add_aws(item, element, acc)
            elif _SERVICE.fullmatch(item):
                services.append(item)
            else:
                raise _invalid(element, kind, item)
    return PrincipalSet(
        wildcard=bool(acc["wildcard"]),
        accounts=frozenset(acc["accounts"]),
        arns=frozenset(acc["arns"]),
        services=frozenset(services),
        named=tuple(dict.fromkeys(acc["named"])),
    )
