"""End to end: condition keys in key and identity policies, through boto3 against a real ``serve``.

The AWS-documented examples (KMS Developer Guide: encryption context conditions, kms:ViaService,
aws:SourceIp, kms:CallerAccount, policy variables, and explicit deny overriding an allow in a key or
an identity policy) as black-box tests.

One fresh server per module (started with ``--clock-offset-file`` so that a session can be made to
expire), so listings are exact; the server, its identities and the helpers are in
:mod:`tests.kms.access_support`.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from tests.conftest import ACCOUNT, REGION
from tests.kms.access_support import (
    ACCOUNT_B,
    ALLOW_ALL,
    EXPLICIT_IDENTITY,
    EXPLICIT_RESOURCE,
    Env,
    User,
    access_env,
    allow,
    denial,
    denied,
    deny,
    identity,
    no_identity,
    no_resource,
    roundtrip,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with access_env(tmp_path_factory.mktemp("access")) as environment:
        yield environment


# --- condition keys ----------------------------------------------------------------------------

NONE = None
EC_CASES: list[tuple[str, dict[str, Any], list[tuple[dict[str, str] | None, bool]]]] = [
    (
        "StringEquals on one context pair",
        {"StringEquals": {"kms:EncryptionContext:Department": "IT"}},
        [
            ({"Department": "IT"}, True),
            ({"department": "IT"}, True),
            ({"Department": "IT", "Project": "x"}, True),
            ({"Department": "it"}, False),
            ({"Department": "HR"}, False),
            ({"Dept": "IT"}, False),
            (NONE, False),
        ],
    ),
    (
        "ForAllValues on the context keys",
        {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}},
        [
            ({"Department": "a"}, True),
            ({"Department": "a", "Project": "b"}, True),
            ({"Department": "a", "Other": "b"}, False),
            ({"Other": "b"}, False),
            (NONE, True),
        ],  # no context: nothing to fail ForAllValues (as AWS warns)
    ),
    (
        "ForAnyValue on the context keys",
        {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "Department"}},
        [({"Department": "a", "Other": "b"}, True), ({"Other": "b"}, False), (NONE, False)],
    ),
    (
        "ForAllValues and Null together (the documented fix)",
        {
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]},
            "Null": {"kms:EncryptionContextKeys": "false"},
        },
        [({"Project": "a"}, True), ({"Other": "b"}, False), (NONE, False)],
    ),
    (
        "Null: some context required",
        {"Null": {"kms:EncryptionContextKeys": "false"}},
        [({"any": "thing"}, True), (NONE, False)],
    ),
    (
        "Null: one pair required",
        {"Null": {"kms:EncryptionContext:Department": "false"}},
        [({"Department": "x"}, True), ({"Project": "x"}, False), (NONE, False)],
    ),
    (
        "StringLike on a context value",
        {"StringLike": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::bucket/*"}},
        [
            ({"aws:s3:arn": "arn:aws:s3:::bucket/a/b"}, True),
            ({"aws:s3:arn": "arn:aws:s3:::other/a"}, False),
        ],
    ),
]


@pytest.fixture(scope="module")
def ec_user(env: Env) -> User:
    return env.user("ec")  # no identity policy: only the key policy speaks for it


@pytest.mark.parametrize(
    ("condition", "cases"), [c[1:] for c in EC_CASES], ids=[c[0] for c in EC_CASES]
)
def test_encryption_context_conditions(
    env: Env,
    ec_user: User,
    condition: dict[str, Any],
    cases: list[tuple[dict[str, str] | None, bool]],
) -> None:
    key = env.key(
        {
            **allow(ec_user.arn, ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]),
            "Condition": condition,
        }
    )
    kms = ec_user.client()
    for context, allowed in cases:
        extra = {"EncryptionContext": context} if context is not None else {}
        if allowed:
            roundtrip(kms, key["KeyId"], context)
            kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", **extra)
        else:
            msg = denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", **extra))  # noqa: B023
            # the statement for ec does not apply; the account's does, and IAM has no allow
            assert msg == denial(ec_user.arn, "Encrypt", key["Arn"], no_identity("Encrypt"))
            denied(lambda: kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=16, **extra))  # noqa: B023
            if context is not None:  # Decrypt is checked against the context given
                blob = env.admin.encrypt(KeyId=key["KeyId"], Plaintext=b"x", **extra)
                denied(
                    lambda: kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], **extra)  # noqa: B023
                )


def test_via_service_never_matches_a_direct_call(env: Env, ec_user: User) -> None:
    via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    key = env.key({**allow(ec_user.arn, ["kms:Encrypt", "kms:Decrypt"]), "Condition": via_s3})
    kms = ec_user.client()
    assert denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == denial(
        ec_user.arn, "Encrypt", key["Arn"], no_identity("Encrypt")
    )
    # ...IfExists: the key is absent from a direct call, so the condition holds
    if_exists = {"StringEqualsIfExists": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    key2 = env.key({**allow(ec_user.arn, "kms:Encrypt"), "Condition": if_exists})
    kms.encrypt(KeyId=key2["KeyId"], Plaintext=b"x")
    # The documented "only through a service" Deny (negated operator, key absent) denies direct
    # calls even of a principal the policy allows everything.
    admin_arn = f"arn:aws:iam::{ACCOUNT}:user/admin"
    only_via = {"StringNotEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    key3 = env.key({**deny(admin_arn, "kms:Decrypt"), "Condition": only_via})
    blob = env.admin.encrypt(KeyId=key3["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert denied(lambda: env.admin.decrypt(CiphertextBlob=blob)) == denial(
        admin_arn, "Decrypt", key3["Arn"], EXPLICIT_RESOURCE
    )


def test_source_ip(env: Env, ec_user: User) -> None:
    kms = ec_user.client()
    local = env.key(allow(ec_user.arn, "kms:Encrypt", IpAddress={"aws:SourceIp": "127.0.0.0/8"}))
    kms.encrypt(KeyId=local["KeyId"], Plaintext=b"x")
    exact = env.key(allow(ec_user.arn, "kms:Encrypt", IpAddress={"aws:SourceIp": "127.0.0.1/32"}))
    kms.encrypt(KeyId=exact["KeyId"], Plaintext=b"x")
    remote = env.key(
        allow(
            ec_user.arn, "kms:Encrypt", IpAddress={"aws:SourceIp": ["192.0.2.0/24", "10.0.0.0/8"]}
        )
    )
    assert denied(lambda: kms.encrypt(KeyId=remote["KeyId"], Plaintext=b"x")) == denial(
        ec_user.arn, "Encrypt", remote["Arn"], no_identity("Encrypt")
    )
    admin_arn = f"arn:aws:iam::{ACCOUNT}:user/admin"
    fenced = env.key(
        deny(
            admin_arn,
            ["kms:Encrypt", "kms:Decrypt"],
            NotIpAddress={"aws:SourceIp": "198.51.100.0/24"},
        )
    )
    assert denied(lambda: env.admin.encrypt(KeyId=fenced["KeyId"], Plaintext=b"x")) == denial(
        admin_arn, "Encrypt", fenced["Arn"], EXPLICIT_RESOURCE
    )


def test_explicit_deny_in_the_key_policy_overrides_an_allow(env: Env) -> None:
    dan = env.user("dan", ALLOW_ALL)
    for statements in (
        [allow(dan.arn, "kms:*"), deny(dan.arn, "kms:Encrypt")],
        [deny(dan.arn, "kms:Encrypt"), allow(dan.arn, "kms:*")],  # order does not matter
        [deny(f"arn:aws:iam::{ACCOUNT}:root", "kms:Encrypt")],  # the account: all its users
    ):
        key = env.key(*statements)
        kms = dan.client()
        assert denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == denial(  # noqa: B023
            dan.arn, "Encrypt", key["Arn"], EXPLICIT_RESOURCE
        )
        kms.describe_key(KeyId=key["KeyId"])  # the rest is still allowed
        # a grant never overrides an explicit deny
        env.admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=dan.arn, Operations=["Encrypt"])
        denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x"))  # noqa: B023


def test_explicit_deny_in_an_identity_policy_overrides_an_allow(env: Env) -> None:
    no_encrypt = identity({"Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"})
    erin = env.user("erin", ALLOW_ALL, no_encrypt)
    key = env.key(allow(erin.arn, "kms:*"))  # the key policy names erin directly
    kms = erin.client()
    assert denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == denial(
        erin.arn, "Encrypt", key["Arn"], EXPLICIT_IDENTITY
    )
    kms.describe_key(KeyId=key["KeyId"])
    blob = env.admin.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    env.admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=erin.arn, Operations=["Encrypt"])
    denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x"))


def test_caller_account(env: Env) -> None:
    key = env.key(
        allow(
            "*",
            ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
            StringEquals={"kms:CallerAccount": ACCOUNT},
        )
    )
    frank = env.user("frank")  # no identity policy: Principal "*" names him directly
    roundtrip(frank.client(), key["KeyId"])
    outsider = env.user("outsider", ALLOW_ALL, account=ACCOUNT_B)
    kms_b = outsider.client()
    assert denied(lambda: kms_b.encrypt(KeyId=key["Arn"], Plaintext=b"x")) == denial(
        outsider.arn, "Encrypt", key["Arn"], no_resource("Encrypt")
    )


def test_policy_variables(env: Env) -> None:
    gina, hank = env.user("gina"), env.user("hank")
    owner = {"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}}
    key = env.key(
        {**allow([gina.arn, hank.arn], ["kms:Encrypt", "kms:Decrypt"]), "Condition": owner}
    )
    for me, other in ((gina, hank), (hank, gina)):
        kms = me.client()
        roundtrip(kms, key["KeyId"], {"owner": me.name})
        for owner_name in (other.name, "${aws:username}"):
            denied(
                partial(
                    kms.encrypt,
                    KeyId=key["KeyId"],
                    Plaintext=b"x",
                    EncryptionContext={"owner": owner_name},
                )
            )

    # in an identity policy
    ivan = env.user(
        "ivan",
        identity(
            {
                "Effect": "Allow",
                "Action": "kms:Encrypt",
                "Resource": f"arn:aws:kms:*:{ACCOUNT}:key/*",
                "Condition": {"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}},
            }
        ),
    )
    default = env.key()
    kms = ivan.client()
    kms.encrypt(KeyId=default["KeyId"], Plaintext=b"x", EncryptionContext={"owner": "ivan"})
    assert denied(
        lambda: kms.encrypt(
            KeyId=default["KeyId"], Plaintext=b"x", EncryptionContext={"owner": "gina"}
        )
    ) == denial(ivan.arn, "Encrypt", default["Arn"], no_identity("Encrypt"))

    # Version 2008-10-17 has no variables: "${aws:username}" is a literal string
    old = env.key({**allow(gina.arn, "kms:Encrypt"), "Condition": owner}, version="2008-10-17")
    kms = gina.client()
    denied(
        lambda: kms.encrypt(KeyId=old["KeyId"], Plaintext=b"x", EncryptionContext={"owner": "gina"})
    )
    kms.encrypt(KeyId=old["KeyId"], Plaintext=b"x", EncryptionContext={"owner": "${aws:username}"})
