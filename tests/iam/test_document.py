"""Parsing and validation: what a stored policy may look like (MalformedPolicyDocumentException)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strongroom.iam.policy import PolicyError, parse_policy, principal_arns
from tests.iam._support import ACCOUNT, OTHER, policy, stmt

DEFAULT_KEY_POLICY = f"""{{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {{
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:aws:iam::{ACCOUNT}:root"
    }},
    "Action" : "kms:*",
    "Resource" : "*"
  }} ]
}}"""


def _error(doc: Any, kind: str = "resource") -> str:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(PolicyError) as info:
        parse_policy(text, kind=kind)  # type: ignore[arg-type]
    assert info.value.message == str(info.value)
    return info.value.message


def test_the_default_key_policy_parses() -> None:
    parsed = parse_policy(DEFAULT_KEY_POLICY, kind="resource")
    assert parsed.version == "2012-10-17"
    assert parsed.id == "key-default-1"
    assert [s.sid for s in parsed.statements] == ["Enable IAM User Permissions"]
    assert principal_arns(parsed) == [f"arn:aws:iam::{ACCOUNT}:root"]


def test_statement_may_be_a_single_object_and_version_may_be_absent() -> None:
    doc = {"Statement": {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}}
    parsed = parse_policy(json.dumps(doc), kind="resource")
    assert parsed.version is None and len(parsed.statements) == 1
    assert parse_policy(json.dumps({"Version": "2008-10-17", **doc}), kind="resource").version


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('{"Statement": [], "Statement": []}', "more than once"),
        ('{"Version": "2012-10-17", "Statement": NaN}', "NaN is not allowed"),
        ("[]", "must be a JSON object"),
        ({"Version": "2012-10-17"}, "must have a Statement"),
        ({"Statement": []}, "at least one statement"),
        ({"Version": "2020-01-01", "Statement": {}}, "Version must be one of"),
        ({"Id": 5, "Statement": {}}, "Id must be a string"),
        ({"Statement": {}, "Extra": 1}, 'Policy element "Extra"'),
        ({"Statement": ["x"]}, "must be a JSON object"),
    ],
)
def test_document_level_errors(doc: Any, fragment: str) -> None:
    assert fragment in _error(doc)


def _one(**statement: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [statement]}


BASE: dict[str, Any] = {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"Effect": "allow"}, "Effect must be"),
        ({"Effect": None}, "Effect must be"),
        ({"Sid": 3}, "Sid must be a string"),
        ({"Foo": 1}, 'Statement element "Foo"'),
        ({"NotAction": "kms:Encrypt"}, "both Action and NotAction"),
        ({"NotResource": "*"}, "both Resource and NotResource"),
        ({"NotPrincipal": "*"}, "both Principal and NotPrincipal"),
        ({"Action": "Encrypt"}, 'Action "Encrypt" is not valid'),
        ({"Action": []}, "non-empty"),
        ({"Action": [1]}, "non-empty"),
        ({"Resource": "key/abc"}, "must be"),
        ({"Resource": "arn:aws:kms:*"}, "must be"),
        ({"Principal": "bob"}, "Principal must be"),
        ({"Principal": {}}, "Principal must be"),
        ({"Principal": {"Federated": "x"}}, 'type "Federated" is not supported'),
        ({"Principal": {"AWS": "bob"}}, "invalid principals"),
        ({"Principal": {"AWS": "12345"}}, "invalid principals"),
        ({"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/*"}}, "invalid principals"),
        ({"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:group/devs"}}, "invalid principals"),
        ({"Principal": {"Service": "*"}}, "invalid principals"),
        ({"Principal": {"AWS": []}}, "non-empty"),
        ({"Condition": []}, "Condition must be an object"),
        ({"Condition": {"StringEquals": {}}}, "non-empty object"),
        ({"Condition": {"StringEquals": "x"}}, "non-empty object"),
        ({"Condition": {"StringEqual": {"aws:username": "x"}}}, "not supported"),
        ({"Condition": {"stringequals": {"aws:username": "x"}}}, "not supported"),
        ({"Condition": {"ForSomeValues:StringEquals": {"a:b": "x"}}}, "not supported"),
        ({"Condition": {"NullIfExists": {"a:b": "true"}}}, "Null takes no qualifier"),
        ({"Condition": {"ForAnyValue:Null": {"a:b": "true"}}}, "Null takes no qualifier"),
        ({"Condition": {"StringEquals": {"username": "x"}}}, '"prefix:name"'),
        ({"Condition": {"StringEquals": {"aws:username": []}}}, "empty list"),
        ({"Condition": {"StringEquals": {"aws:username": {"a": 1}}}}, "string, number or"),
        ({"Condition": {"StringEquals": {"aws:username": None}}}, "string, number or"),
        ({"Condition": {"NumericEquals": {"s3:max-keys": "ten"}}}, "invalid Numeric"),
        ({"Condition": {"DateLessThan": {"aws:CurrentTime": "tomorrow"}}}, "invalid Date"),
        ({"Condition": {"DateLessThan": {"aws:CurrentTime": "2020-13-01"}}}, "invalid Date"),
        ({"Condition": {"Bool": {"aws:SecureTransport": "yes"}}}, "invalid Boolean"),
        ({"Condition": {"Null": {"aws:TokenIssueTime": "maybe"}}}, "invalid Boolean"),
        ({"Condition": {"BinaryEquals": {"a:b": "not base64!"}}}, "invalid base64"),
        ({"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}}, "invalid IP"),
        ({"Condition": {"NotIpAddress": {"aws:SourceIp": "bogus"}}}, "invalid IP"),
    ],
)
def test_statement_level_errors(change: dict[str, Any], fragment: str) -> None:
    statement = {**BASE, **change}
    assert fragment in _error(_one(**{k: v for k, v in statement.items() if v is not None}))


def test_for_all_values_on_single_valued_kms_keys_is_refused_in_key_policies() -> None:
    for key in ("kms:EncryptionContext:Department", "aws:RequestTag/Project"):
        statement = {**BASE, "Condition": {"ForAllValues:StringEquals": {key: "IT"}}}
        assert _error(_one(**statement)).startswith("OverlyPermissiveCondition")
        statement.pop("Principal")
        parse_policy(json.dumps(_one(**statement)), kind="identity")  # IAM does not check this


def test_key_policy_statements_missing_action_or_resource_are_accepted_but_ineffective() -> None:
    parsed = policy({"Effect": "Allow", "Principal": "*", "Action": "kms:*"})
    assert not parsed.statements[0].effective and parsed.allows == ()
    parsed = policy({"Effect": "Deny", "Principal": "*", "Resource": "*"})
    assert not parsed.statements[0].effective and parsed.denies == ()


def test_identity_policies_forbid_principals_and_require_action_and_resource() -> None:
    assert "cannot specify a principal" in _error(_one(**BASE), "identity")
    no_principal = {k: v for k, v in BASE.items() if k != "Principal"}
    parse_policy(json.dumps(_one(**no_principal)), kind="identity")
    no_resource = {k: v for k, v in no_principal.items() if k != "Resource"}
    assert "Resource or NotResource" in _error(_one(**no_resource), "identity")
    no_action = {k: v for k, v in no_principal.items() if k != "Action"}
    assert "Action or NotAction" in _error(_one(**no_action), "identity")


def test_resource_and_trust_policies_require_a_principal() -> None:
    no_principal = {k: v for k, v in BASE.items() if k != "Principal"}
    assert "Principal or NotPrincipal" in _error(_one(**no_principal), "resource")
    trust = {k: v for k, v in no_principal.items() if k != "Resource"}
    assert "Principal or NotPrincipal" in _error(_one(**trust), "trust")


def test_trust_policies_have_no_resource_and_need_an_action() -> None:
    trust = {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}
    parsed = parse_policy(json.dumps(_one(**trust)), kind="trust")
    assert parsed.statements[0].effective
    assert "cannot specify Resource" in _error(_one(**trust, Resource="*"), "trust")
    no_action = {k: v for k, v in trust.items() if k != "Action"}
    assert "Action or NotAction" in _error(_one(**no_action), "trust")


def test_condition_values_may_be_json_booleans_and_numbers() -> None:
    # The KMS Developer Guide writes {"Bool": {"kms:BypassPolicyLockoutSafetyCheck": true}}.
    parsed = policy(
        stmt(
            Condition={
                "Bool": {"kms:BypassPolicyLockoutSafetyCheck": True},
                "NumericLessThanEquals": {"s3:max-keys": 10},
                "Null": {"kms:EncryptionContextKeys": False},
            }
        )
    )
    values = [c.values for c in parsed.statements[0].conditions]
    assert values == [("true",), ("10",), ("false",)]


def test_principal_arns_lists_every_named_aws_principal_once() -> None:
    parsed = policy(
        stmt(Principal={"AWS": [ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/bob", "*"]}),
        stmt(
            "Deny",
            Principal=None,
            NotPrincipal={
                "AWS": [
                    f"arn:aws:iam::{OTHER}:root",
                    f"arn:aws:iam::{OTHER}:role/path/to/Admin",
                    f"arn:aws:sts::{OTHER}:assumed-role/Admin/session@example.com",
                    f"arn:aws:iam::{ACCOUNT}:user/bob",
                ],
                "Service": "ec2.amazonaws.com",
            },
        ),
    )
    assert principal_arns(parsed) == [
        f"arn:aws:iam::{ACCOUNT}:root",
        f"arn:aws:iam::{ACCOUNT}:user/bob",
        f"arn:aws:iam::{OTHER}:root",
        f"arn:aws:iam::{OTHER}:role/path/to/Admin",
        f"arn:aws:sts::{OTHER}:assumed-role/Admin/session@example.com",
    ]


def test_parsed_policies_are_immutable() -> None:
    parsed = parse_policy(DEFAULT_KEY_POLICY, kind="resource")
    with pytest.raises(AttributeError):
        parsed.statements[0].deny = True  # type: ignore[misc]
