"""End to end: NotPrincipal, NotAction, NotResource, principal condition keys and ABAC, through
boto3 against a real ``serve``.

Also: a deleted role ends its sessions, the kms:GrantOperations condition, a cross-account
principal named directly in a key policy still needs IAM, resource tags and aliases in identity
and key policies (AWS's "ABAC for AWS KMS"), trust policies with an external id, and a remembered
allow ending with the policy that gave it.

One fresh server per module (started with ``--clock-offset-file`` so that a session can be made to
expire), so listings are exact; the server, its identities and the helpers are in
:mod:`tests.kms.access_support`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import ACCOUNT
from tests.kms.access_support import (
    ACCOUNT_B,
    ALLOW_ALL,
    EXPLICIT_RESOURCE,
    ROOT,
    ROOT_STATEMENT,
    Env,
    Roles,
    access_env,
    allow,
    denial,
    denied,
    deny,
    fails,
    identity,
    make_roles,
    no_identity,
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


# --- NotPrincipal, NotAction, NotResource; principal condition keys; ABAC ------------------------


def test_not_principal_not_action_not_resource(env: Env) -> None:
    admin_arn = f"arn:aws:iam::{ACCOUNT}:user/admin"
    uma = env.user("uma", ALLOW_ALL)
    # Deny everyone but the admin: the account must be listed too (IAM User Guide)
    key = env.key(
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": [admin_arn, ROOT]},
            "Action": "kms:Encrypt",
            "Resource": "*",
        }
    )
    env.admin.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert denied(lambda: uma.client().encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == denial(
        uma.arn, "Encrypt", key["Arn"], EXPLICIT_RESOURCE
    )
    uma.client().describe_key(KeyId=key["KeyId"])

    vic = env.user("vic")  # no identity policy
    key2 = env.key(
        {
            "Effect": "Allow",
            "Principal": {"AWS": vic.arn},
            "NotAction": ["kms:Encrypt", "kms:*KeyPolicy"],
            "Resource": "*",
        }
    )
    kms = vic.client()
    kms.describe_key(KeyId=key2["KeyId"])
    kms.generate_data_key(KeyId=key2["KeyId"], KeySpec="AES_256")
    denied(lambda: kms.encrypt(KeyId=key2["KeyId"], Plaintext=b"x"))
    denied(lambda: kms.get_key_policy(KeyId=key2["KeyId"], PolicyName="default"))

    other = env.key()
    env.put_user_policy(
        "vic",
        "not-other",
        identity({"Effect": "Allow", "Action": "kms:Encrypt", "NotResource": other["Arn"]}),
    )
    kms.encrypt(KeyId=key2["KeyId"], Plaintext=b"x")
    kms.encrypt(KeyId=env.key()["KeyId"], Plaintext=b"x")
    assert denied(lambda: kms.encrypt(KeyId=other["KeyId"], Plaintext=b"x")) == denial(
        vic.arn, "Encrypt", other["Arn"], no_identity("Encrypt")
    )


def test_principal_condition_keys_for_sessions(env: Env, roles: Roles) -> None:
    key = env.key(
        allow(
            "*",
            "kms:Encrypt",
            ArnEquals={"aws:PrincipalArn": roles.role_arn},
            StringEquals={"aws:PrincipalType": "AssumedRole", "aws:PrincipalAccount": ACCOUNT},
        ),
    )
    creds = sts_for(roles.assumer).assume_role(RoleArn=roles.role_arn, RoleSessionName="pk")
    session_client(env, creds["Credentials"]).encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    denied(lambda: roles.stranger.client().encrypt(KeyId=key["KeyId"], Plaintext=b"x"))


def test_deleted_role_ends_its_sessions(env: Env, roles: Roles) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": roles.assumer.arn}, "Action": "sts:AssumeRole"}
        ],
    }
    role = env.roles.create_role(ACCOUNT, "short-lived", json.dumps(trust))
    arn = f"arn:aws:iam::{ACCOUNT}:role/{role.role_name}"
    creds = sts_for(roles.assumer).assume_role(RoleArn=arn, RoleSessionName="gone")["Credentials"]
    sts = session_client(env, creds, "sts")
    assert sts.get_caller_identity()["Arn"].endswith(":assumed-role/short-lived/gone")
    env.roles.delete_role(ACCOUNT, "short-lived")
    assert fails(sts.get_caller_identity)[0] == "InvalidClientTokenId"


def test_grant_operations_condition(env: Env) -> None:
    wes, xia = env.user("wes"), env.user("xia")
    key = env.key(
        allow(
            wes.arn,
            "kms:CreateGrant",
            **{
                "ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt"]},
                "Bool": {"kms:GrantIsForAWSResource": "false"},
            },
        )
    )
    kms = wes.client()
    kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=xia.arn, Operations=["Encrypt"])
    denied(
        lambda: kms.create_grant(
            KeyId=key["KeyId"], GranteePrincipal=xia.arn, Operations=["Encrypt", "GenerateDataKey"]
        )
    )
    xia.client().encrypt(KeyId=key["KeyId"], Plaintext=b"x")


def test_cross_account_principal_named_directly_still_needs_iam(env: Env) -> None:
    yan = env.user("b-yan", account=ACCOUNT_B)  # no identity policy
    key = env.key(allow(yan.arn, "kms:Encrypt"))
    assert denied(lambda: yan.client().encrypt(KeyId=key["Arn"], Plaintext=b"x")) == denial(
        yan.arn, "Encrypt", key["Arn"], no_identity("Encrypt")
    )
    env.put_user_policy("b-yan", "kms", ALLOW_ALL, account=ACCOUNT_B)
    yan.client().encrypt(KeyId=key["Arn"], Plaintext=b"x")


def test_abac_resource_tags_in_an_identity_policy(env: Env) -> None:
    """AWS's "ABAC for AWS KMS": an IAM policy allows keys by their tags; the keys keep AWS's
    default key policy (which never mentions a tag)."""
    zoe = env.user(
        "zoe",
        identity(
            {
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/Project": "Alpha"}},
            }
        ),
    )
    alpha = env.admin.create_key(Tags=[{"TagKey": "Project", "TagValue": "Alpha"}])["KeyMetadata"]
    beta = env.admin.create_key(Tags=[{"TagKey": "Project", "TagValue": "Beta"}])["KeyMetadata"]
    kms = zoe.client()
    denied(lambda: kms.encrypt(KeyId=beta["KeyId"], Plaintext=b"x"))
    kms.encrypt(KeyId=alpha["KeyId"], Plaintext=b"x")


def test_abac_resource_aliases_in_an_identity_policy(env: Env) -> None:
    """AWS's "Use aliases to control access to KMS keys": kms:ResourceAliases in IAM."""
    amy = env.user(
        "amy",
        identity(
            {
                "Effect": "Allow",
                "Action": "kms:Encrypt",
                "Resource": "*",
                "Condition": {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/team-a/*"}},
            }
        ),
    )
    key = env.key()
    env.admin.create_alias(AliasName="alias/team-a/db", TargetKeyId=key["KeyId"])
    other = env.key()
    kms = amy.client()
    denied(lambda: kms.encrypt(KeyId=other["KeyId"], Plaintext=b"x"))
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")


def test_abac_conditions_in_a_key_policy(env: Env) -> None:
    """The same tag and alias conditions work when the key policy holds them."""
    bea = env.user("bea")
    tag_cond = {"StringEquals": {"aws:ResourceTag/Project": "Alpha"}}
    alias_cond = {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/team-b/*"}}
    by_tag = env.key({**allow(bea.arn, "kms:Encrypt"), "Condition": tag_cond})
    by_alias = env.key({**allow(bea.arn, "kms:Encrypt"), "Condition": alias_cond})
    kms = bea.client()
    denied(lambda: kms.encrypt(KeyId=by_tag["KeyId"], Plaintext=b"x"))
    denied(lambda: kms.encrypt(KeyId=by_alias["KeyId"], Plaintext=b"x"))
    env.admin.tag_resource(KeyId=by_tag["KeyId"], Tags=[{"TagKey": "Project", "TagValue": "Alpha"}])
    env.admin.create_alias(AliasName="alias/team-b/app", TargetKeyId=by_alias["KeyId"])
    kms.encrypt(KeyId=by_tag["KeyId"], Plaintext=b"x")
    kms.encrypt(KeyId=by_alias["KeyId"], Plaintext=b"x")


def test_trust_policy_with_external_id(env: Env, roles: Roles) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": roles.assumer.arn},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "tenant-42"}},
            }
        ],
    }
    env.roles.create_role(ACCOUNT, "third-party", json.dumps(trust))
    arn = f"arn:aws:iam::{ACCOUNT}:role/third-party"
    sts = sts_for(roles.assumer)
    for extra in ({}, {"ExternalId": "tenant-43"}):
        code, _ = fails(lambda: sts.assume_role(RoleArn=arn, RoleSessionName="ext", **extra))  # noqa: B023
        assert code == "AccessDenied"
    out = sts.assume_role(RoleArn=arn, RoleSessionName="ext", ExternalId="tenant-42")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/third-party/ext"


def test_a_remembered_allow_ends_with_the_policy_that_gave_it(env: Env) -> None:
    """Allows are remembered between requests; a changed identity or key policy (written by
    another process, here the test's) must take effect on the very next request."""
    key = env.key()
    scoped = identity({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": key["Arn"]})
    erin = env.user("remembered", scoped)
    client = erin.client()
    for _ in range(3):  # the first decides, the next ones are remembered
        client.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    env.roles.delete_policy("user", ACCOUNT, "remembered", "p0")
    assert denied(lambda: client.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == denial(
        erin.arn, "Encrypt", key["Arn"], no_identity("Encrypt")
    )
    # and back: an allow again, then a key policy that denies the user explicitly
    env.put_user_policy("remembered", "p1", ALLOW_ALL)
    for _ in range(3):
        client.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    policy = {"Version": "2012-10-17",
              "Statement": [ROOT_STATEMENT, deny(erin.arn, "kms:Encrypt")]}  # fmt: skip
    env.admin.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(policy))
    assert EXPLICIT_RESOURCE in denied(lambda: client.encrypt(KeyId=key["KeyId"], Plaintext=b"x"))


def test_abac_condition_key_names_in_any_case(env: Env) -> None:
    """Condition key names are case-insensitive in IAM: ``aws:resourcetag/...`` and
    ``kms:resourcealiases`` in lower case read the key's tags and aliases all the same."""
    lou = env.user(
        "lou",
        identity(
            {
                "Effect": "Allow",
                "Action": "kms:Encrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:resourcetag/project": "Gamma"}},
            },
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"ForAnyValue:StringLike": {"kms:resourcealiases": "alias/lou-*"}},
            },
        ),
    )
    gamma = env.admin.create_key(Tags=[{"TagKey": "Project", "TagValue": "Gamma"}])["KeyMetadata"]
    env.admin.create_alias(AliasName="alias/lou-key", TargetKeyId=gamma["KeyId"])
    kms = lou.client()
    blob = kms.encrypt(KeyId=gamma["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    other = env.admin.create_key(Tags=[{"TagKey": "Project", "TagValue": "Delta"}])["KeyMetadata"]
    denied(lambda: kms.encrypt(KeyId=other["KeyId"], Plaintext=b"x"))
