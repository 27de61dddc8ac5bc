"""End to end: AssumeRole sessions, through boto3 against a real ``serve``.

STS GetCallerIdentity and AssumeRole as AWS documents them: a session uses its role's policies,
the trust policy decides who may assume the role, DurationSeconds limits, an expired session (the
server's clock moved forward) and a tampered or missing session token. Roles go through the
``strongroom iam`` CLI itself.

One fresh server per module (started with ``--clock-offset-file`` so that a session can be made to
expire), so listings are exact; the server, its identities and the helpers are in
:mod:`tests.kms.access_support`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from tests.conftest import ACCOUNT
from tests.kms.access_support import (
    ACCOUNT_B,
    ALLOW_ALL,
    EXPLICIT_RESOURCE,
    INVALID_TOKEN,
    Env,
    Roles,
    User,
    access_env,
    allow,
    denial,
    denied,
    deny,
    fails,
    make_roles,
    no_identity,
    roundtrip,
    session_client,
    sts_for,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with access_env(tmp_path_factory.mktemp("access")) as environment:
        yield environment


@pytest.fixture(scope="module")
def roles(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Roles:
    return make_roles(env, tmp_path_factory.mktemp("trust"))


# --- AssumeRole sessions -----------------------------------------------------------------------


def test_get_caller_identity(env: Env, roles: Roles) -> None:
    me = sts_for(roles.assumer).get_caller_identity()
    assert me["Arn"] == roles.assumer.arn
    assert me["Account"] == ACCOUNT
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", me["UserId"])
    admin = env.server.client("sts").get_caller_identity()
    assert admin["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/admin"


def test_assumed_role_session_uses_the_role_policies(env: Env, roles: Roles) -> None:
    before = time.time()
    out = sts_for(roles.assumer).assume_role(RoleArn=roles.role_arn, RoleSessionName="s1")
    creds, who = out["Credentials"], out["AssumedRoleUser"]
    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/encryptor/s1"
    assert who["Arn"] == session_arn
    assert re.fullmatch(r"AROA[A-Z2-7]{17}:s1", who["AssumedRoleId"])
    assert creds["AccessKeyId"].startswith("ASIA")
    assert abs(creds["Expiration"].timestamp() - (before + 3600)) < 30

    me = session_client(env, creds, "sts").get_caller_identity()
    assert (me["Arn"], me["UserId"], me["Account"]) == (session_arn, who["AssumedRoleId"], ACCOUNT)

    kms = session_client(env, creds)
    plain = env.key()  # default policy: the role's identity policy decides
    roundtrip(kms, plain["KeyId"])
    kms.describe_key(KeyId=plain["Arn"])
    assert denied(lambda: kms.generate_data_key(KeyId=plain["KeyId"], KeySpec="AES_256")) == denial(
        session_arn, "GenerateDataKey", plain["Arn"], no_identity("GenerateDataKey")
    )
    # the user who assumed the role has none of its permissions
    denied(lambda: roles.assumer.client().encrypt(KeyId=plain["KeyId"], Plaintext=b"x"))

    # a key policy naming the role ARN allows its sessions directly
    named = env.key(allow(roles.role_arn, "kms:GenerateDataKey"))
    kms.generate_data_key(KeyId=named["KeyId"], KeySpec="AES_256")
    # one naming a session ARN allows only that session
    only_s1 = env.key(allow(session_arn, "kms:GenerateDataKey"))
    kms.generate_data_key(KeyId=only_s1["KeyId"], KeySpec="AES_256")
    s2 = sts_for(roles.assumer).assume_role(RoleArn=roles.role_arn, RoleSessionName="s2")
    kms2 = session_client(env, s2["Credentials"])
    denied(lambda: kms2.generate_data_key(KeyId=only_s1["KeyId"], KeySpec="AES_256"))
    kms2.generate_data_key(KeyId=named["KeyId"], KeySpec="AES_256")
    # an explicit deny naming the role reaches its sessions
    fenced = env.key(deny(roles.role_arn, "kms:Encrypt"))
    assert denied(lambda: kms.encrypt(KeyId=fenced["KeyId"], Plaintext=b"x")) == denial(
        session_arn, "Encrypt", fenced["Arn"], EXPLICIT_RESOURCE
    )
    # a grant to the role is used by its sessions
    granted = env.key()
    denied(lambda: kms.generate_data_key(KeyId=granted["KeyId"], KeySpec="AES_256"))
    env.admin.create_grant(
        KeyId=granted["KeyId"], GranteePrincipal=roles.role_arn, Operations=["GenerateDataKey"]
    )
    kms.generate_data_key(KeyId=granted["KeyId"], KeySpec="AES_256")


def test_trust_policy_decides_who_may_assume(env: Env, roles: Roles) -> None:
    def refused(user: User, role_arn: str) -> tuple[str, str]:
        return fails(lambda: sts_for(user).assume_role(RoleArn=role_arn, RoleSessionName="x1"))

    assert refused(roles.stranger, roles.role_arn) == (
        "AccessDenied",
        f"User: {roles.stranger.arn} is not authorized to perform: sts:AssumeRole on resource: "
        f"{roles.role_arn}",
    )
    # a trust policy naming the account delegates to IAM: the identity policy must allow too
    out = sts_for(roles.assumer).assume_role(RoleArn=roles.delegating_arn, RoleSessionName="d1")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/delegating/d1"
    assert refused(roles.stranger, roles.delegating_arn)[0] == "AccessDenied"
    missing = f"arn:aws:iam::{ACCOUNT}:role/no-such-role"
    assert refused(roles.assumer, missing)[0] == "AccessDenied"
    outsider = env.user("sts-outsider", ALLOW_ALL, account=ACCOUNT_B)
    assert refused(outsider, roles.role_arn)[0] == "AccessDenied"


def test_duration_seconds_limits(env: Env, roles: Roles) -> None:
    sts = sts_for(roles.assumer)
    for arn, seconds, expected in [
        (roles.role_arn, 899, "Member must have value greater than or equal to 900"),
        (roles.role_arn, 43201, "Member must have value less than or equal to 43200"),
        (roles.role_arn, 3601, "exceeds the MaxSessionDuration set for this role"),
        (roles.delegating_arn, 7201, "exceeds the MaxSessionDuration set for this role"),
    ]:
        code, message = fails(
            lambda: sts.assume_role(RoleArn=arn, RoleSessionName="dur", DurationSeconds=seconds)  # noqa: B023
        )
        assert code == "ValidationError"
        assert expected in message
    for arn, seconds in [
        (roles.role_arn, 900),
        (roles.role_arn, 3600),
        (roles.delegating_arn, 7200),
    ]:
        before = time.time()
        out = sts.assume_role(RoleArn=arn, RoleSessionName="dur", DurationSeconds=seconds)
        assert abs(out["Credentials"]["Expiration"].timestamp() - (before + seconds)) < 30


def test_expired_session(env: Env, roles: Roles) -> None:
    out = sts_for(roles.assumer).assume_role(
        RoleArn=roles.role_arn, RoleSessionName="short", DurationSeconds=900
    )
    kms = session_client(env, out["Credentials"])
    sts = session_client(env, out["Credentials"], "sts")
    key = env.key()
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    try:
        env.set_clock_offset(901)
        assert fails(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == (
            "ExpiredTokenException",
            "The security token included in the request is expired",
        )
        assert fails(sts.get_caller_identity)[0] == "ExpiredToken"
        # users' long-term keys do not expire
        env.admin.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    finally:
        env.set_clock_offset(0)


def test_tampered_or_missing_session_token(env: Env, roles: Roles) -> None:
    creds = sts_for(roles.assumer).assume_role(RoleArn=roles.role_arn, RoleSessionName="tamper")[
        "Credentials"
    ]
    other = sts_for(roles.assumer).assume_role(RoleArn=roles.role_arn, RoleSessionName="other")[
        "Credentials"
    ]
    key = env.key()
    token = creds["SessionToken"]
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    for bad in (flipped, token + "x", other["SessionToken"]):
        kms = session_client(env, {**creds, "SessionToken": bad})
        assert fails(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == (  # noqa: B023
            "UnrecognizedClientException",
            INVALID_TOKEN,
        )
        sts = session_client(env, {**creds, "SessionToken": bad}, "sts")
        assert fails(sts.get_caller_identity)[0] == "InvalidClientTokenId"
    no_token = env.server.client(akid=creds["AccessKeyId"], secret=creds["SecretAccessKey"])
    assert fails(lambda: no_token.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == (
        "UnrecognizedClientException",
        INVALID_TOKEN,
    )
    # a user's long-term key with a session token is refused too
    user = roles.assumer
    with_token = session_client(
        env, {"AccessKeyId": user.akid, "SecretAccessKey": user.secret, "SessionToken": token}
    )
    assert fails(with_token.list_keys)[0] == "UnrecognizedClientException"
    session_client(env, creds).encrypt(KeyId=key["KeyId"], Plaintext=b"x")  # the real one works
