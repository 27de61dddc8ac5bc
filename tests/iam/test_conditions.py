"""Condition operators, ``...IfExists``, ``ForAnyValue:``/``ForAllValues:``, Null, and key case."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.iam.policy.conditions import OPERATORS
from tests.iam._support import decide, facts, holds, policy, stmt

K = "custom:key"


def _h(op: str, values: Any, *request: str) -> bool:
    """Condition ``op`` on ``custom:key`` = ``values``; the request has ``request`` (or no key)."""
    return holds(op, K, values, {K: list(request)} if request else {})


@pytest.mark.parametrize(
    ("op", "policy_values", "request_value", "expected"),
    [
        ("StringEquals", "johndoe", "johndoe", True),
        ("StringEquals", "johndoe", "JohnDoe", False),
        ("StringEquals", "a*", "abc", False),
        ("StringEquals", "a*", "a*", True),
        ("StringNotEquals", "johndoe", "JohnDoe", True),
        ("StringNotEquals", "johndoe", "johndoe", False),
        ("StringEqualsIgnoreCase", "johndoe", "JohnDoe", True),
        ("StringEqualsIgnoreCase", "johndoe", "Jane", False),
        ("StringNotEqualsIgnoreCase", "johndoe", "JOHNDOE", False),
        ("StringNotEqualsIgnoreCase", "johndoe", "jane", True),
        ("StringLike", "home/*", "home/bob/x", True),
        ("StringLike", "home/?", "home/b", True),
        ("StringLike", "home/?", "home/bb", False),
        ("StringLike", "Home/*", "home/b", False),
        ("StringNotLike", "key1*", "key2:audit", True),
        ("StringNotLike", "key1*", "key1:legal", False),
        ("NumericEquals", "10", "10.0", True),
        ("NumericEquals", "10", "11", False),
        ("NumericNotEquals", "10", "11", True),
        ("NumericLessThan", "10", "9.5", True),
        ("NumericLessThan", "10", "10", False),
        ("NumericLessThanEquals", "10", "10", True),
        ("NumericGreaterThan", "-1", "0", True),
        ("NumericGreaterThan", "1e3", "999", False),
        ("NumericGreaterThanEquals", "1e3", "1000", True),
        ("NumericEquals", "10", "ten", False),
        ("NumericNotEquals", "10", "ten", True),
        ("DateEquals", "2020-01-01T00:00:00Z", "1577836800", True),
        ("DateEquals", "2020-01-01", "2020-01-01T00:00:00Z", True),
        ("DateEquals", "2020-01-01T01:00:00+01:00", "2020-01-01T00:00:00Z", True),
        ("DateNotEquals", "2020-01-01T00:00:00Z", "2020-01-01T00:00:01Z", True),
        ("DateLessThan", "2020-01-01T00:00:01Z", "2019-12-31T23:59:59Z", True),
        ("DateLessThan", "2020-01-01T00:00:01Z", "2020-06-01T00:00:00.5Z", False),
        ("DateLessThanEquals", "1577836800", "2020-01-01T00:00:00Z", True),
        ("DateGreaterThan", "2020-01-01T00:00:01Z", "2020-01-01T00:00:02Z", True),
        ("DateGreaterThan", "2020", "2019-12-31T23:59:59Z", False),
        ("DateGreaterThanEquals", "2020-01", "2020-01-01T00:00:00Z", True),
        ("DateGreaterThan", "2020-01-01T00:00:00Z", "not a date", False),
        ("Bool", "true", "true", True),
        ("Bool", "true", "True", True),
        ("Bool", "false", "true", False),
        ("BinaryEquals", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", True),
        ("BinaryEquals", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", "QmluYXJ5", False),
        ("BinaryEquals", "QQ==", "not base64", False),
        ("IpAddress", "203.0.113.0/24", "203.0.113.255", True),
        ("IpAddress", "203.0.113.0/24", "203.0.114.1", False),
        ("IpAddress", "203.0.113.9", "203.0.113.9", True),  # no prefix: /32
        ("IpAddress", "203.0.113.9", "203.0.113.10", False),
        ("IpAddress", "2001:DB8:1234:5678::/64", "2001:db8:1234:5678::1", True),
        ("IpAddress", "2001:DB8:1234:5678::/64", "2001:db8:1234:5679::1", False),
        ("IpAddress", "2001:DB8:1234:5678::/64", "203.0.113.1", False),
        ("IpAddress", "203.0.113.0/24", "garbage", False),
        ("NotIpAddress", "203.0.113.0/24", "198.51.100.1", True),
        ("NotIpAddress", "203.0.113.0/24", "203.0.113.1", False),
        (
            "ArnEquals",
            "arn:aws:sns:us-east-1:111122223333:topic",
            "arn:aws:sns:us-east-1:111122223333:topic",
            True,
        ),
        ("ArnLike", "arn:aws:iam::*:role/Admin*", "arn:aws:iam::111122223333:role/AdminX", True),
        ("ArnLike", "arn:aws:iam::*:role/Admin*", "arn:aws:iam::111122223333:role/admin", False),
        ("ArnEquals", "arn:aws:iam::*:role/*", "arn:aws:iam::1:2:role/x", False),
        ("ArnNotEquals", "arn:aws:iam::*:role/*", "arn:aws:iam::111122223333:user/x", True),
        ("ArnNotLike", "arn:aws:iam::*:role/*", "arn:aws:iam::111122223333:role/x", False),
        ("ArnLike", "*", "arn:aws:iam::111122223333:role/x", True),
    ],
)
def test_operator(op: str, policy_values: str, request_value: str, expected: bool) -> None:
    assert _h(op, policy_values, request_value) is expected


def test_every_operator_is_covered_above() -> None:
    assert set(OPERATORS) == {
        *(
            f"String{s}"
            for s in (
                "Equals",
                "NotEquals",
                "EqualsIgnoreCase",
                "NotEqualsIgnoreCase",
                "Like",
                "NotLike",
            )
        ),
        *(
            f"{k}{s}"
            for k in ("Numeric", "Date")
            for s in (
                "Equals",
                "NotEquals",
                "LessThan",
                "LessThanEquals",
                "GreaterThan",
                "GreaterThanEquals",
            )
        ),
        *("Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "Null"),
        *("ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"),
    }


NEGATED = [
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "NumericNotEquals",
    "DateNotEquals",
    "NotIpAddress",
    "ArnNotEquals",
    "ArnNotLike",
]
POSITIVE = [
    "StringEquals",
    "StringLike",
    "NumericEquals",
    "NumericLessThan",
    "DateGreaterThan",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "ArnLike",
]
SAMPLE = {
    "Numeric": "1",
    "Date": "2020-01-01T00:00:00Z",
    "Bool": "true",
    "Binary": "QQ==",
    "Ip": "10.0.0.0/8",
    "Arn": "arn:aws:iam::*:role/x",
}


def _sample(op: str) -> str:
    for prefix, value in SAMPLE.items():
        if prefix in op:
            return value
    return "v"


@pytest.mark.parametrize("op", NEGATED)
def test_negated_operators_are_true_when_the_key_is_absent(op: str) -> None:
    assert _h(op, _sample(op))
    assert _h(f"{op}IfExists", _sample(op))
    assert not _h(f"ForAnyValue:{op}", _sample(op))
    assert _h(f"ForAllValues:{op}", _sample(op))


@pytest.mark.parametrize("op", POSITIVE)
def test_positive_operators_are_false_when_the_key_is_absent(op: str) -> None:
    assert not _h(op, _sample(op))
    assert _h(f"{op}IfExists", _sample(op))
    assert not _h(f"ForAnyValue:{op}", _sample(op))
    assert _h(f"ForAllValues:{op}", _sample(op))


def test_if_exists_tests_the_key_when_it_is_present() -> None:
    assert _h("StringLikeIfExists", ["t1.*", "t2.*"], "t2.micro")
    assert not _h("StringLikeIfExists", ["t1.*", "t2.*"], "m5.large")
    # IAM UG: a Deny with StringNotEqualsIfExists still denies when the key is missing.
    assert _h("StringNotEqualsIfExists", "x")


def test_empty_context_value_list_is_an_absent_key() -> None:
    p = policy(stmt(Condition={"Null": {K: "true"}}))
    assert decide(p, facts(ctx={K: []})).allowed


def test_null() -> None:
    assert _h("Null", "true")
    assert not _h("Null", "true", "x")
    assert _h("Null", "false", "x")
    assert not _h("Null", "false")
    assert _h("Null", ["true", "false"])


def test_multiple_values_are_ored_and_multiple_keys_and_operators_anded() -> None:
    assert _h("StringEquals", ["Restricted", "Production"], "Production")
    two_keys = {
        "StringEquals": {
            "kms:EncryptionContext:Department": "IT",
            "kms:EncryptionContext:Project": "Alpha",
        }
    }
    p = policy(stmt(Condition=two_keys))
    both = {"kms:EncryptionContext:Department": "IT", "kms:EncryptionContext:Project": "Alpha"}
    assert decide(p, facts(ctx=both)).allowed
    assert not decide(p, facts(ctx={"kms:EncryptionContext:Department": "IT"})).allowed
    two_ops = {"StringEquals": {K: "a"}, "StringLike": {"custom:other": "b*"}}
    p = policy(stmt(Condition=two_ops))
    assert decide(p, facts(ctx={K: "a", "custom:other": "bc"})).allowed
    assert not decide(p, facts(ctx={K: "a", "custom:other": "c"})).allowed


# IAM UG "Multivalued context keys examples": Deny with ForAllValues:StringNotLike on aws:TagKeys.
@pytest.mark.parametrize(
    ("tag_keys", "matches"),
    [
        (["key1:legal"], False),
        (["key1:hr", "key1:personnel"], False),
        (["key2:audit"], True),
        ([], True),
        (["key1:a", "key2:b"], False),
    ],
)
def test_for_all_values_string_not_like_table(tag_keys: list[str], matches: bool) -> None:
    assert _h("ForAllValues:StringNotLike", "key1*", *tag_keys) is matches


@pytest.mark.parametrize(
    ("request_keys", "any_value", "all_values"),
    [
        (["AppName"], True, True),
        (["AppName", "Project"], True, False),
        (["Project"], False, False),
        ([], False, True),
        (["appname"], False, False),  # StringEquals is case-sensitive on values
    ],
)
def test_set_operators_on_encryption_context_keys(
    request_keys: list[str], any_value: bool, all_values: bool
) -> None:
    # KMS DG, kms:EncryptionContextKeys with ForAnyValue / ForAllValues.
    context = {"kms:EncryptionContextKeys": request_keys}
    assert (
        holds("ForAnyValue:StringEquals", "kms:EncryptionContextKeys", "AppName", context)
        is any_value
    )
    assert (
        holds("ForAllValues:StringEquals", "kms:EncryptionContextKeys", ["AppName"], context)
        is all_values
    )


def test_for_any_value_negated_needs_one_unlisted_request_value() -> None:
    assert _h("ForAnyValue:StringNotEquals", ["a", "b"], "a", "c")
    assert not _h("ForAnyValue:StringNotEquals", ["a", "b"], "a", "b")


def test_plain_operator_over_several_request_values_is_any_and_its_negation_is_none() -> None:
    assert _h("StringEquals", "a", "a", "b")
    assert not _h("StringNotEquals", "a", "a", "b")
    assert _h("StringNotEquals", "a", "b", "c")


def test_condition_key_names_ignore_case() -> None:
    # IAM UG: aws:SourceIP is the same key as AWS:SourceIp.
    assert holds("IpAddress", "AWS:SourceIP", "10.0.0.0/8", {"aws:sourceip": "10.1.2.3"})
    assert holds("IpAddress", "aws:sourceip", "10.0.0.0/8", {"AWS:SourceIP": "10.1.2.3"})


def test_encryption_context_key_part_ignores_case_but_values_do_not() -> None:
    # KMS DG "Case sensitivity of the encryption context condition".
    condition = {"StringEquals": {"kms:EncryptionContext:Appname": "ExampleApp"}}
    p = policy(stmt(Condition=condition))
    assert decide(p, facts(ctx={"kms:EncryptionContext:AppName": "ExampleApp"})).allowed
    assert decide(p, facts(ctx={"KMS:ENCRYPTIONCONTEXT:APPNAME": "ExampleApp"})).allowed
    assert not decide(p, facts(ctx={"kms:EncryptionContext:AppName": "exampleapp"})).allowed
    ignore_case = policy(
        stmt(Condition={"StringEqualsIgnoreCase": {"kms:EncryptionContext:Appname": "ExampleApp"}})
    )
    assert decide(ignore_case, facts(ctx={"kms:EncryptionContext:AppName": "exampleapp"})).allowed


def test_encryption_context_pairs_differing_only_in_case_are_one_key_with_both_values() -> None:
    context = {
        "kms:EncryptionContext:AppName": "ExampleApp",
        "kms:EncryptionContext:appname": "Other",
    }
    deny = policy(
        stmt("Deny", Condition={"StringEquals": {"kms:EncryptionContext:appname": "Other"}}), stmt()
    )
    assert decide(deny, facts(ctx=context)).denied


def test_bypass_lockout_examples_from_the_kms_guide() -> None:
    deny = policy(
        stmt(
            "Deny",
            Action=["kms:CreateKey", "kms:PutKeyPolicy"],
            Condition={"Bool": {"kms:BypassPolicyLockoutSafetyCheck": True}},
        ),
        stmt(),
    )
    assert decide(
        deny, facts(action="kms:PutKeyPolicy", ctx={"kms:BypassPolicyLockoutSafetyCheck": "true"})
    ).denied
    assert decide(
        deny, facts(action="kms:PutKeyPolicy", ctx={"kms:BypassPolicyLockoutSafetyCheck": "false"})
    ).allowed
    allow = policy(
        stmt(
            Action="kms:PutKeyPolicy",
            Condition={"Null": {"kms:BypassPolicyLockoutSafetyCheck": True}},
        )
    )
    assert decide(allow, facts(action="kms:PutKeyPolicy")).allowed
    assert not decide(
        allow, facts(action="kms:PutKeyPolicy", ctx={"kms:BypassPolicyLockoutSafetyCheck": "false"})
    ).allowed


def test_date_and_numeric_examples_from_the_iam_guide() -> None:
    assert holds(
        "DateGreaterThan",
        "aws:TokenIssueTime",
        "2020-01-01T00:00:01Z",
        {"aws:TokenIssueTime": "2020-05-05T10:00:00Z"},
    )
    assert not holds("DateGreaterThan", "aws:TokenIssueTime", "2020-01-01T00:00:01Z", {})
    assert holds("NumericLessThanEquals", "s3:max-keys", "10", {"s3:max-keys": "10"})
    assert not holds("NumericLessThanEquals", "s3:max-keys", "10", {"s3:max-keys": "11"})
    epoch = {"aws:EpochTime": "1700000000"}
    assert holds("DateLessThan", "aws:EpochTime", "2024-01-01T00:00:00Z", epoch)
