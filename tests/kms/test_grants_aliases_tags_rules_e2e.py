"""End to end: the validation rules of grants, aliases and tags where Strongroom once differed
from AWS KMS, through boto3 against a real ``strongroom serve``.

CreateGrant's GranteePrincipal and RetiringPrincipal must name principals (InvalidArnException
otherwise, as AWS answers for a principal it cannot resolve); ListRetirableGrants' too; the
SourceArn grant constraint is refused plainly. UpdateAlias compares key *types* (symmetric,
asymmetric, HMAC) and usage, so an RSA and an ECC signing key are interchangeable, and it keeps
the 50-aliases-per-key limit (per key in each region: a multi-Region replica's aliases
are its own). The reserved tag prefix ``aws:`` is reserved in every letter case.
Each error is checked for its HTTP status and ``__type``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.kms.access_support import ACCOUNT_B, ROOT, Env, access_env
from tests.kms.keys_support import unique_alias


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with access_env(tmp_path_factory.mktemp("rules")) as environment:
        yield environment


def refused(call: Callable[[], Any]) -> tuple[int, str]:
    """The HTTP status and ``__type`` of a call that must fail."""
    with pytest.raises(ClientError) as excinfo:
        call()
    response = excinfo.value.response
    return int(response["ResponseMetadata"]["HTTPStatusCode"]), str(response["Error"]["Code"])


# -- CreateGrant principals --------------------------------------------------------------------


@pytest.mark.parametrize(
    "principal",
    [
        "not-an-arn",
        "111122223333",  # an account id, not an ARN
        "arn:aws:s3:::a-bucket",  # an ARN, but not of a principal
        "arn:aws:iam::111122223333:user/nobody-by-that-name",
        "arn:aws:iam::111122223333:role/no-such-role",
        "arn:aws:iam::111122223333:group/admins",  # groups cannot be principals
    ],
)
def test_create_grant_refuses_what_is_not_a_principal(env: Env, principal: str) -> None:
    kms = env.admin
    kid = env.key()["KeyId"]
    user = env.user(f"rules-{uuid.uuid4().hex[:12]}")
    assert refused(
        lambda: kms.create_grant(KeyId=kid, GranteePrincipal=principal, Operations=["Encrypt"])
    ) == (400, "InvalidArnException")
    assert refused(
        lambda: kms.create_grant(
            KeyId=kid,
            GranteePrincipal=user.arn,
            RetiringPrincipal=principal,
            Operations=["Encrypt"],
        )
    ) == (400, "InvalidArnException")
    assert kms.list_grants(KeyId=kid)["Grants"] == []


def test_create_grant_accepts_every_kind_of_principal(env: Env) -> None:
    kms = env.admin
    kid = env.key()["KeyId"]
    user = env.user("rules-grantee")
    principals = [
        user.arn,
        ROOT,
        f"arn:aws:iam::{ACCOUNT_B}:root",
        "arn:aws:sts::111122223333:assumed-role/some-role/a-session",
    ]
    for principal in principals:
        kms.create_grant(
            KeyId=kid, GranteePrincipal=principal, RetiringPrincipal=ROOT, Operations=["Encrypt"]
        )
    listed = kms.list_grants(KeyId=kid)["Grants"]
    assert sorted(g["GranteePrincipal"] for g in listed) == sorted(principals)


def test_list_retirable_grants_refuses_a_malformed_principal(env: Env) -> None:
    kms = env.admin
    assert refused(lambda: kms.list_retirable_grants(RetiringPrincipal="not-an-arn")) == (
        400,
        "InvalidArnException",
    )
    # a principal that does not (or no longer) exist is a filter that matches nothing
    gone = "arn:aws:iam::111122223333:user/gone-user"
    assert kms.list_retirable_grants(RetiringPrincipal=gone)["Grants"] == []


def test_list_retirable_grants_is_for_principals_of_the_callers_account(env: Env) -> None:
    """Another account's principal may retire grants on this account's key; only that other
    account lists them (AWS: "a principal in your AWS account")."""
    kid = env.key()["KeyId"]
    allow = {"Effect": "Allow", "Action": "kms:ListRetirableGrants", "Resource": "*"}
    other = env.user(
        f"r{uuid.uuid4().hex[:8]}",
        {"Version": "2012-10-17", "Statement": [allow]},
        account=ACCOUNT_B,
    )
    env.admin.create_grant(
        KeyId=kid, GranteePrincipal=ROOT, RetiringPrincipal=other.arn, Operations=["Encrypt"]
    )
    listed = other.client().list_retirable_grants(RetiringPrincipal=other.arn)["Grants"]
    assert [g["KeyId"].rsplit("/", 1)[-1] for g in listed] == [kid]
    for principal in (other.arn, f"arn:aws:iam::{ACCOUNT_B}:root", "dynamodb.amazonaws.com"):
        status, error = refused(
            partial(env.admin.list_retirable_grants, RetiringPrincipal=principal)
        )
        assert (status, error) == (400, "AccessDeniedException"), principal


def test_source_arn_constraint_is_refused_plainly(env: Env) -> None:
    kms = env.admin
    kid = env.key()["KeyId"]
    with pytest.raises(ClientError) as excinfo:
        kms.create_grant(
            KeyId=kid,
            GranteePrincipal=ROOT,
            Operations=["Encrypt"],
            Constraints={"SourceArn": "arn:aws:s3:us-east-1:111122223333:a-bucket"},
        )
    error = excinfo.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "SourceArn" in error["Message"] and "not supported" in error["Message"]
    assert kms.list_grants(KeyId=kid)["Grants"] == []


def test_grant_name_idempotency_among_many_grants_of_one_grantee(env: Env) -> None:
    """A retried named CreateGrant finds its grant however many grants the grantee has (it
    once looked only at the grantee's first 1000 grants, in grant-id order)."""
    kms = env.admin
    kid = env.key()["KeyId"]
    user = env.user(f"many-{uuid.uuid4().hex[:12]}")
    grant = partial(kms.create_grant, KeyId=kid, GranteePrincipal=user.arn)
    ids: list[str] = []
    for attempt in range(64):  # a named grant late in grant-id order
        named = grant(Operations=["Encrypt"], Name=f"late-{attempt}")["GrantId"]
        if named >= "c":
            break
        ids.append(named)
    while sum(i < named for i in ids) < 1000:  # ... preceded by 1000 grants of its grantee
        ids.append(grant(Operations=["Decrypt"])["GrantId"])
    retried = grant(Operations=["Encrypt"], Name=f"late-{attempt}")["GrantId"]
    assert retried == named
    listed = kms.list_grants(KeyId=kid, GrantId=named)["Grants"]
    assert [g["Name"] for g in listed] == [f"late-{attempt}"]


def test_create_grant_with_an_alias_arn_is_invalid_arn(env: Env) -> None:
    """CreateGrant takes a key id or key ARN; with an alias ARN AWS answers InvalidArnException
    "Key Aliases are not supported for this operation." (quoted in the errors of services that
    call CreateGrant for a user, e.g. Lambda). An alias name is NotFoundException."""
    kms = env.admin
    kid = env.key()["KeyId"]
    alias = unique_alias()
    kms.create_alias(AliasName=alias, TargetKeyId=kid)
    arn = kms.list_aliases(KeyId=kid)["Aliases"][0]["AliasArn"]
    grant = partial(kms.create_grant, GranteePrincipal=ROOT, Operations=["Encrypt"])
    with pytest.raises(ClientError) as excinfo:
        grant(KeyId=arn)
    error = excinfo.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "InvalidArnException",
        "Key Aliases are not supported for this operation.",
    )
    assert refused(lambda: grant(KeyId=alias)) == (400, "NotFoundException")
    assert refused(lambda: kms.list_grants(KeyId=arn)) == (400, "InvalidArnException")
    assert kms.list_grants(KeyId=kid)["Grants"] == []  # nothing was made


# -- UpdateAlias -------------------------------------------------------------------------------


def test_update_alias_between_asymmetric_keys_of_the_same_usage(env: Env) -> None:
    kms = env.admin

    def key(spec: str, usage: str) -> str:
        return str(kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"])

    rsa_sign, ecc_sign = key("RSA_2048", "SIGN_VERIFY"), key("ECC_NIST_P256", "SIGN_VERIFY")
    rsa_encrypt, hmac = key("RSA_2048", "ENCRYPT_DECRYPT"), key("HMAC_256", "GENERATE_VERIFY_MAC")
    name = unique_alias("sign")
    kms.create_alias(AliasName=name, TargetKeyId=rsa_sign)
    kms.update_alias(AliasName=name, TargetKeyId=ecc_sign)  # both asymmetric, both signing
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == ecc_sign
    kms.update_alias(AliasName=name, TargetKeyId=rsa_sign)
    for other in (rsa_encrypt, hmac, str(env.key()["KeyId"])):  # another usage or key type
        assert refused(partial(kms.update_alias, AliasName=name, TargetKeyId=other)) == (
            400,
            "ValidationException",
        )
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == rsa_sign


def test_update_alias_onto_a_key_with_fifty_aliases_is_limit_exceeded(env: Env) -> None:
    kms = env.admin
    full, other = env.key()["KeyId"], env.key()["KeyId"]
    names = [unique_alias("full") for _ in range(50)]
    for name in names:
        kms.create_alias(AliasName=name, TargetKeyId=full)
    moving = unique_alias("moving")
    kms.create_alias(AliasName=moving, TargetKeyId=other)
    assert refused(lambda: kms.update_alias(AliasName=moving, TargetKeyId=full)) == (
        400,
        "LimitExceededException",
    )
    assert kms.describe_key(KeyId=moving)["KeyMetadata"]["KeyId"] == other
    assert len(kms.list_aliases(KeyId=full, Limit=100)["Aliases"]) == 50
    kms.update_alias(AliasName=names[0], TargetKeyId=full)  # onto its own key: no new alias


def test_alias_limit_is_per_key_in_each_region(env: Env) -> None:
    """A multi-Region replica is a key of its own region: the primary's 50 aliases do not
    count against it."""
    east, west = env.admin, env.server.client(region="us-west-2")
    key = east.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    east.replicate_key(KeyId=key, ReplicaRegion="us-west-2")
    for _ in range(50):
        east.create_alias(AliasName=unique_alias("mrk"), TargetKeyId=key)
    assert refused(partial(east.create_alias, AliasName=unique_alias(), TargetKeyId=key)) == (
        400,
        "LimitExceededException",
    )
    name = unique_alias("replica")
    west.create_alias(AliasName=name, TargetKeyId=key)
    assert [a["AliasName"] for a in west.list_aliases(KeyId=key)["Aliases"]] == [name]


# -- tags --------------------------------------------------------------------------------------


@pytest.mark.parametrize("reserved", ["AWS:cost", "Aws:cost", "aWS:team"])
def test_reserved_tag_prefix_in_any_letter_case(env: Env, reserved: str) -> None:
    kms = env.admin
    kid = env.key()["KeyId"]
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "keep", "TagValue": "1"}])
    assert refused(
        lambda: kms.tag_resource(KeyId=kid, Tags=[{"TagKey": reserved, "TagValue": "x"}])
    ) == (400, "TagException")
    assert refused(lambda: kms.untag_resource(KeyId=kid, TagKeys=[reserved])) == (
        400,
        "TagException",
    )
    assert refused(lambda: kms.create_key(Tags=[{"TagKey": reserved, "TagValue": "x"}])) == (
        400,
        "TagException",
    )
    tags = kms.list_resource_tags(KeyId=kid)["Tags"]
    assert tags == [{"TagKey": "keep", "TagValue": "1"}]
    # the prefix is reserved only as a prefix with its colon
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "awsome", "TagValue": "aws:value is fine"}])
