"""Policy variables: ``${key}``, defaults, escapes, and where they apply."""

from __future__ import annotations

import pytest

from strongroom.iam.policy.variables import (
    Escaped,
    Text,
    Variable,
    parse_template,
    resolve_string,
)
from tests.iam._support import (
    ACCOUNT,
    BOB,
    KEY_ARN,
    ROOT,
    SESSION,
    decide,
    facts,
    holds,
    policy,
    stmt,
)


@pytest.mark.parametrize(
    ("raw", "parts"),
    [
        ("plain", (Text("plain"),)),
        ("", ()),
        ("home/${aws:username}/", (Text("home/"), Variable("aws:username", None), Text("/"))),
        ("${AWS:UserName}", (Variable("aws:username", None),)),
        ("${ aws:userid , 'anonymous' }", (Variable("aws:userid", "anonymous"),)),
        ("${aws:userid, 'it''s'}", (Variable("aws:userid", "it's"),)),
        ("${aws:userid, 'a}b'}x", (Variable("aws:userid", "a}b"), Text("x"))),
        (
            "a${*}b${?}c${$}",
            (Text("a"), Escaped("*"), Text("b"), Escaped("?"), Text("c"), Escaped("$")),
        ),
        ("${unterminated", (Text("${unterminated"),)),
        ("${}", (Text("${}"),)),
        ("${a b}", (Text("${a b}"),)),
        ("${k, unquoted}", (Text("${k, unquoted}"),)),
        ("${k, 'open}", (Text("${k, 'open}"),)),
        ("$ {x}", (Text("$ {x}"),)),
    ],
)
def test_parse_template(raw: str, parts: tuple[object, ...]) -> None:
    assert parse_template(raw, variables=True) == parts


def test_without_variables_everything_is_literal_text() -> None:
    assert parse_template("${aws:username}", variables=False) == (Text("${aws:username}"),)


def test_resolution_needs_exactly_one_value_and_falls_back_to_the_default() -> None:
    template = parse_template("u-${aws:userid, 'anon'}-${k}", variables=True)
    assert resolve_string(template, {"aws:userid": ("X",), "k": ("1",)}) == "u-X-1"
    assert resolve_string(template, {"k": ("1",)}) == "u-anon-1"
    assert resolve_string(template, {"aws:userid": ("X", "Y"), "k": ("1",)}) == "u-anon-1"
    assert resolve_string(template, {"aws:userid": ("X",)}) is None


def test_username_variable_in_encryption_context_condition() -> None:
    # KMS DG, "Using variables in an encryption context condition".
    p = policy(stmt(Condition={"StringEquals": {"kms:EncryptionContext:user": "${aws:username}"}}))
    assert decide(p, facts(BOB, ctx={"kms:EncryptionContext:user": "bob"})).allowed
    assert not decide(p, facts(BOB, ctx={"kms:EncryptionContext:user": "alice"})).allowed
    # aws:username exists only for IAM users: for a role session the variable does not resolve.
    assert not decide(p, facts(SESSION, ctx={"kms:EncryptionContext:user": "bob"})).allowed


def test_variables_from_the_principal_and_the_context() -> None:
    context = {"aws:SourceIp": "203.0.113.7", "kms:EncryptionContext:ip": "203.0.113.7"}
    assert holds("StringEquals", "kms:EncryptionContext:ip", "${aws:SourceIp}", context)
    for key, value in [
        ("aws:userid", "AIDABOB"),
        ("aws:PrincipalAccount", ACCOUNT),
        ("kms:CallerAccount", ACCOUNT),
        ("aws:PrincipalType", "User"),
        ("aws:PrincipalArn", BOB.arn),
    ]:
        assert holds(
            "StringEquals",
            "kms:EncryptionContext:x",
            f"${{{key}}}",
            {"kms:EncryptionContext:x": value},
        )


def test_unresolved_variable_never_matches_but_the_default_does() -> None:
    context = {"kms:EncryptionContext:tier": "gold"}
    assert not holds("StringEquals", "kms:EncryptionContext:tier", "${custom:tier}", context)
    assert holds("StringNotEquals", "kms:EncryptionContext:tier", "${custom:tier}", context)
    assert holds("StringEquals", "kms:EncryptionContext:tier", "${custom:tier, 'gold'}", context)


def test_escapes_are_literal_even_in_like_operators() -> None:
    star = {"kms:EncryptionContext:p": "a*"}
    assert holds("StringLike", "kms:EncryptionContext:p", "a${*}", star)
    assert not holds(
        "StringLike", "kms:EncryptionContext:p", "a${*}", {"kms:EncryptionContext:p": "ab"}
    )
    assert holds("StringLike", "kms:EncryptionContext:p", "a*", {"kms:EncryptionContext:p": "ab"})
    assert holds(
        "StringEquals", "kms:EncryptionContext:p", "${$}${?}", {"kms:EncryptionContext:p": "$?"}
    )


def test_variable_values_are_literal_not_wildcards() -> None:
    context = {"kms:EncryptionContext:k": "anything", "custom:pat": "*"}
    assert not holds("StringLike", "kms:EncryptionContext:k", "${custom:pat}", context)


def test_variables_in_resource() -> None:
    p = policy(stmt(Resource=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/${{aws:username}}-*"))
    own = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/bob-1"
    assert decide(p, facts(BOB, resource=own)).allowed
    assert not decide(p, facts(BOB, resource=KEY_ARN)).allowed
    assert not decide(p, facts(ROOT, resource=own)).allowed  # no aws:username for root


def test_version_2008_treats_variables_as_literal_text() -> None:
    literal = {"kms:EncryptionContext:user": "${aws:username}"}
    assert holds(
        "StringEquals",
        "kms:EncryptionContext:user",
        "${aws:username}",
        literal,
        Version="2008-10-17",
    )
    assert not holds(
        "StringEquals",
        "kms:EncryptionContext:user",
        "${aws:username}",
        {"kms:EncryptionContext:user": "bob"},
        Version=None,
    )


def test_variables_do_not_apply_to_numeric_operators() -> None:
    from strongroom.iam.policy import PolicyError

    with pytest.raises(PolicyError):
        policy(stmt(Condition={"NumericEquals": {"custom:n": "${custom:m}"}}))


def test_bool_accepts_variables() -> None:
    context = {"aws:SecureTransport": "true", "custom:flag": "TRUE"}
    assert holds("Bool", "aws:SecureTransport", "${custom:flag}", context)
