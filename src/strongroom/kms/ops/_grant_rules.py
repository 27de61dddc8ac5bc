"""What a CreateGrant request must satisfy (API Reference CreateGrant; kms-api.md §3.15).

Its principals (ARNs of AWS principals that exist: InvalidArnException otherwise), the grant
operations the key's type allows (ValidationException otherwise), and its constraints (at most
8 encryption context pairs, values up to 384 characters; encryption context constraints only on
symmetric encryption keys; a grant made through a grant at least as strict as its parent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from strongroom.errors import AwsError
from strongroom.kms.authz import KmsAccessControl
from strongroom.kms.domain.keys import KeyRecord
from strongroom.storage import grant_repo

__all__ = [
    "check_constraints",
    "check_operations",
    "check_own_principal",
    "check_principal",
    "check_principal_syntax",
    "stricter",
]

_MANAGE = ("CreateGrant", "RetireGrant", "DescribeKey")
_BY_USAGE: Mapping[tuple[str, bool], frozenset[str]] = {
    ("ENCRYPT_DECRYPT", True): frozenset(
        (
            "Decrypt",
            "Encrypt",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "ReEncryptFrom",
            "ReEncryptTo",
            "GenerateDataKeyPair",
            "GenerateDataKeyPairWithoutPlaintext",
            *_MANAGE,
        )
    ),
    ("ENCRYPT_DECRYPT", False): frozenset(
        ("Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey", *_MANAGE)
    ),
    ("SIGN_VERIFY", False): frozenset(("Sign", "Verify", "GetPublicKey", *_MANAGE)),
    ("GENERATE_VERIFY_MAC", False): frozenset(("GenerateMac", "VerifyMac", *_MANAGE)),
    ("KEY_AGREEMENT", False): frozenset(("DeriveSharedSecret", "GetPublicKey", *_MANAGE)),
    ("ENCAPSULATE_DECAPSULATE", False): frozenset(
        ("Encapsulate", "Decapsulate", "GetPublicKey", *_MANAGE)
    ),
}
_CONTEXT_CONSTRAINTS = ("EncryptionContextSubset", "EncryptionContextEquals")
_NAME = r"[\w+=,.@-]{1,128}"
#: The ARN forms of the principals a grant can name: an account, an IAM user or role (with a
#: path), an assumed-role session or a federated user.
_PRINCIPAL_ARN = re.compile(
    rf"arn:aws:iam::\d{{12}}:(?:root|(?:user|role)/(?:{_NAME}/)*{_NAME})"
    rf"|arn:aws:sts::\d{{12}}:(?:assumed-role/{_NAME}/{_NAME}|federated-user/{_NAME})",
    re.ASCII,
)
#: An AWS service principal, as the grants AWS services create name them.
_SERVICE = re.compile(r"[a-z0-9][a-z0-9.-]*\.amazonaws\.com(?:\.cn)?", re.ASCII)


def check_principal(authorizer: object, value: str) -> None:
    """A GranteePrincipal or RetiringPrincipal: the ARN of a principal that exists (or a
    service principal); InvalidArnException otherwise, as AWS answers for a principal it
    cannot resolve."""
    if _SERVICE.fullmatch(value):
        return
    valid = _PRINCIPAL_ARN.fullmatch(value) is not None
    if valid and isinstance(authorizer, KmsAccessControl):
        valid = authorizer.principal_exists(value)
    if not valid:
        raise AwsError("InvalidArnException", f"ARN does not refer to a valid principal: {value}")


def check_principal_syntax(value: str) -> None:
    """A principal named in a listing filter: an ARN of a principal (it need not exist)."""
    if not (_PRINCIPAL_ARN.fullmatch(value) or _SERVICE.fullmatch(value)):
        raise AwsError("InvalidArnException", f"ARN does not refer to a valid principal: {value}")


def check_own_principal(value: str, account_id: str) -> None:
    """ListRetirableGrants names "a principal in your AWS account" (API Reference): the grants
    of another account's principals, or of a service principal, are not the caller's to
    list (they may be on any account's keys). AccessDeniedException otherwise."""
    parts = value.split(":")
    if len(parts) < 6 or parts[4] != account_id:
        raise AwsError(
            "AccessDeniedException",
            f"ListRetirableGrants lists the grants of a principal in your account "
            f"({account_id}) only: {value}",
        )


def check_operations(rec: KeyRecord, operations: list[str], constraints: object) -> None:
    """The operations fit the key's type; encryption context constraints need a symmetric
    encryption key (the only key whose operations take an encryption context)."""
    symmetric = rec.key_spec == "SYMMETRIC_DEFAULT"
    allowed = _BY_USAGE.get((rec.key_usage, symmetric), frozenset(_MANAGE))
    bad = [op for op in operations if op not in allowed]
    if bad:
        raise AwsError(
            "ValidationException",
            f"Grant operations {bad} are not valid for a key with KeyUsage {rec.key_usage} "
            f"and KeySpec {rec.key_spec}",
        )
    if constraints and not symmetric:
        raise AwsError(
            "ValidationException",
            "Encryption context grant constraints are supported only for symmetric "
            "encryption KMS keys",
        )


def check_constraints(constraints: Mapping[str, object] | None) -> None:
    """Each encryption context constraint holds at most 8 pairs, values up to 384 characters.

    A ``SourceArn`` constraint limits a grant to requests an AWS service makes on behalf of a
    resource; no AWS service calls this endpoint, so such a grant could never be used: it is
    refused, as ``GranteeServicePrincipal`` is.
    """
    for name, pairs in (constraints or {}).items():
        if name not in _CONTEXT_CONSTRAINTS or not isinstance(pairs, Mapping):
            raise AwsError(
                "ValidationException",
                f"The {name} grant constraint is not supported here: no AWS service calls "
                "this endpoint on behalf of a resource",
            )
        if len(pairs) > 8:
            raise AwsError("ValidationException", f"{name} can hold at most 8 pairs")
        if any(len(v) > 384 for v in pairs.values()):
            raise AwsError("ValidationException", f"{name} values are limited to 384 characters")


def stricter(child: Mapping[str, Mapping[str, str]] | None, parent: grant_repo.GrantRow) -> bool:
    """Whether ``child`` constraints are at least as strict as the parent grant's."""
    need = parent.constraints or {}
    if not need:
        return True
    have = child or {}
    if "EncryptionContextEquals" in need:
        return have.get("EncryptionContextEquals") == need["EncryptionContextEquals"]
    sub = need.get("EncryptionContextSubset", {})
    pairs = {**have.get("EncryptionContextSubset", {}), **have.get("EncryptionContextEquals", {})}
    return bool(have) and all(pairs.get(k) == v for k, v in sub.items())
