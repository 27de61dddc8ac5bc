"""End to end: cross-account use of KMS keys, through boto3 against a real ``serve``.

The AWS-documented examples (KMS Developer Guide: a key policy and an identity policy are both
needed across accounts, aliases and listings stay per account, and a grant to another account's
principal) as black-box tests.

One fresh server per module (started with ``--clock-offset-file`` so that a session can be made to
expire), so listings are exact; the server, its identities and the helpers are in
:mod:`tests.kms.access_support`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ACCOUNT, REGION
from tests.kms.access_support import (
    ACCOUNT_B,
    ACCOUNT_C,
    ALLOW_ALL,
    Env,
    access_env,
    allow,
    denial,
    denied,
    fails,
    identity,
    no_identity,
    no_resource,
    sts_for,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with access_env(tmp_path_factory.mktemp("access")) as environment:
        yield environment


# --- cross-account -----------------------------------------------------------------------------


def test_cross_account_needs_both_policies(env: Env) -> None:
    shared = env.key(
        allow(
            f"arn:aws:iam::{ACCOUNT_B}:root",
            ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
        )
    )
    closed = env.key()
    b_all = env.user("b-all", ALLOW_ALL, account=ACCOUNT_B)
    b_none = env.user("b-none", account=ACCOUNT_B)
    b_one = env.user(
        "b-one",
        identity({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": shared["Arn"]}),
        account=ACCOUNT_B,
    )
    kms = b_all.client()
    out = kms.encrypt(KeyId=shared["Arn"], Plaintext=b"from B")
    assert out["KeyId"] == shared["Arn"]
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == b"from B"
    assert env.admin.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == b"from B"
    assert kms.describe_key(KeyId=shared["Arn"])["KeyMetadata"]["AWSAccountId"] == ACCOUNT
    kms.generate_data_key(KeyId=shared["Arn"], KeySpec="AES_256")
    # only what A's key policy gives B
    assert denied(lambda: kms.schedule_key_deletion(KeyId=shared["Arn"])) == denial(
        b_all.arn, "ScheduleKeyDeletion", shared["Arn"], no_resource("ScheduleKeyDeletion")
    )
    # B's identity policy alone does not suffice ...
    assert denied(lambda: kms.encrypt(KeyId=closed["Arn"], Plaintext=b"x")) == denial(
        b_all.arn, "Encrypt", closed["Arn"], no_resource("Encrypt")
    )
    # ... nor does A's key policy alone
    assert denied(lambda: b_none.client().encrypt(KeyId=shared["Arn"], Plaintext=b"x")) == denial(
        b_none.arn, "Encrypt", shared["Arn"], no_identity("Encrypt")
    )
    one = b_one.client()
    one.encrypt(KeyId=shared["Arn"], Plaintext=b"x")
    assert denied(lambda: one.decrypt(CiphertextBlob=out["CiphertextBlob"])) == denial(
        b_one.arn, "Decrypt", shared["Arn"], no_identity("Decrypt")
    )
    # a bare key id is looked up in the caller's own account
    code, message = fails(lambda: kms.encrypt(KeyId=shared["KeyId"], Plaintext=b"x"))
    assert (code, message) == (
        "NotFoundException",
        f"Key 'arn:aws:kms:{REGION}:{ACCOUNT_B}:key/{shared['KeyId']}' does not exist",
    )


def test_cross_account_aliases_and_listings(env: Env) -> None:
    shared = env.key(allow(f"arn:aws:iam::{ACCOUNT_B}:root", ["kms:Encrypt", "kms:DescribeKey"]))
    env.admin.create_alias(AliasName="alias/shared-a", TargetKeyId=shared["KeyId"])
    user = env.user("b-alias", ALLOW_ALL, account=ACCOUNT_B)
    kms = user.client()
    code, message = fails(lambda: kms.encrypt(KeyId="alias/shared-a", Plaintext=b"x"))
    assert (code, message) == (
        "NotFoundException",
        f"Alias arn:aws:kms:{REGION}:{ACCOUNT_B}:alias/shared-a is not found.",
    )
    code, _ = fails(lambda: kms.create_alias(AliasName="alias/mine", TargetKeyId=shared["Arn"]))
    assert code == "NotFoundException"
    assert all(a["AliasName"] != "alias/shared-a" for a in kms.list_aliases()["Aliases"])
    # (the alias ARN names A's alias explicitly: that works across accounts, as in AWS)
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/shared-a"
    assert kms.encrypt(KeyId=alias_arn, Plaintext=b"x")["KeyId"] == shared["Arn"]

    c_user = env.user("c-all", ALLOW_ALL, account=ACCOUNT_C)
    c_kms = c_user.client()
    made = {c_kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2)}
    listed = c_kms.list_keys()["Keys"]
    assert {k["KeyId"] for k in listed} == made
    assert all(f":{ACCOUNT_C}:key/" in k["KeyArn"] for k in listed)
    a_keys = env.admin.list_keys(Limit=1000)["Keys"]
    assert not made & {k["KeyId"] for k in a_keys}
    assert shared["KeyId"] in {k["KeyId"] for k in a_keys}
    assert all(f":{ACCOUNT}:key/" in k["KeyArn"] for k in a_keys)


def test_cross_account_grant(env: Env) -> None:
    key = env.key()
    b_user = env.user("b-grantee", account=ACCOUNT_B)  # no identity policy at all
    kms = b_user.client()
    denied(lambda: kms.encrypt(KeyId=key["Arn"], Plaintext=b"x"))
    env.admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=b_user.arn, Operations=["Encrypt"])
    assert kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")["KeyId"] == key["Arn"]


def test_only_the_cross_account_operations_work_across_accounts(env: Env) -> None:
    """A key policy that gives another account kms:* gives it only the operations AWS allows
    across accounts; a permission for any other operation has no effect there."""
    key = env.key(allow(f"arn:aws:iam::{ACCOUNT_B}:root", "kms:*"))
    other = env.user("b-everything", ALLOW_ALL, account=ACCOUNT_B).client()
    arn = key["Arn"]
    blob = other.encrypt(KeyId=arn, Plaintext=b"shared")["CiphertextBlob"]
    assert other.decrypt(CiphertextBlob=blob)["Plaintext"] == b"shared"
    assert other.describe_key(KeyId=arn)["KeyMetadata"]["KeyId"] == key["KeyId"]
    other.get_key_rotation_status(KeyId=arn)
    grant = other.create_grant(
        KeyId=arn, GranteePrincipal=f"arn:aws:iam::{ACCOUNT_B}:root", Operations=["Encrypt"]
    )
    other.revoke_grant(KeyId=arn, GrantId=grant["GrantId"])
    refused = {
        "DisableKey": lambda: other.disable_key(KeyId=arn),
        "ScheduleKeyDeletion": lambda: other.schedule_key_deletion(KeyId=arn),
        "GetKeyPolicy": lambda: other.get_key_policy(KeyId=arn),
        "PutKeyPolicy": lambda: other.put_key_policy(KeyId=arn, Policy="{}"),
        "TagResource": lambda: other.tag_resource(
            KeyId=arn, Tags=[{"TagKey": "k", "TagValue": "v"}]
        ),
        "EnableKeyRotation": lambda: other.enable_key_rotation(KeyId=arn),
        "UpdateKeyDescription": lambda: other.update_key_description(KeyId=arn, Description="x"),
        "GetKeyLastUsage": lambda: other.get_key_last_usage(KeyId=arn),
    }
    for action, call in refused.items():
        message = denied(call)
        assert f"kms:{action} on resource: {arn}" in message, message
        assert "in another account" in message
    meta = env.admin.describe_key(KeyId=arn)["KeyMetadata"]
    assert (meta["KeyState"], meta["Description"]) == ("Enabled", "")
    assert env.admin.list_resource_tags(KeyId=arn)["Tags"] == []


def _created(record: dict[str, Any]) -> str:
    """The ARN a CreateKey record's response names ('' for a failed call)."""
    return str(((record["responseElements"] or {}).get("keyMetadata") or {}).get("Arn", ""))


def test_each_account_looks_up_its_own_events(env: Env) -> None:
    """LookupEvents shows an account its principals' calls, and calls from other accounts on
    its keys, never another account's own calls (CloudTrail trails are per account)."""
    shared = env.key(allow(f"arn:aws:iam::{ACCOUNT_B}:root", ["kms:Encrypt", "kms:DescribeKey"]))
    private = env.admin.create_key(Description="A's own")["KeyMetadata"]["Arn"]
    b = env.user("b-auditor", ALLOW_ALL, account=ACCOUNT_B)
    b_kms = b.client()
    encrypted = b_kms.encrypt(KeyId=shared["Arn"], Plaintext=b"x")["ResponseMetadata"]["RequestId"]
    b_key = b_kms.create_key(Description="B's own")["KeyMetadata"]["Arn"]

    def seen(client: Any, name: str) -> list[dict[str, Any]]:
        pages = client.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}]
        )
        return [json.loads(e["CloudTrailEvent"]) for page in pages for e in page["Events"]]

    a_trail, b_trail = env.server.client("cloudtrail"), b.client("cloudtrail")
    b_creates = {_created(r) for r in seen(b_trail, "CreateKey")}
    assert b_key in b_creates and private not in b_creates
    a_creates = {_created(r) for r in seen(a_trail, "CreateKey")}
    assert private in a_creates and b_key not in a_creates
    # B's call on A's key is in both trails, the resource under its owner's account
    for trail in (a_trail, b_trail):
        (record,) = [r for r in seen(trail, "Encrypt") if r["requestID"] == encrypted]
        assert record["recipientAccountId"] == ACCOUNT_B
        assert record["resources"] == [
            {"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": shared["Arn"]}
        ]
    # so is B's AssumeRole of a role of A's
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = env.roles.create_role(ACCOUNT, "for-b", json.dumps(trust))
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{role.role_name}"
    sts_for(b).assume_role(RoleArn=role_arn, RoleSessionName="from-b")
    for trail in (a_trail, b_trail):
        (record,) = [r for r in seen(trail, "AssumeRole") if r["userIdentity"]["arn"] == b.arn]
        assert record["resources"] == [
            {"accountId": ACCOUNT, "type": "AWS::IAM::Role", "ARN": role_arn}
        ]
    assert all(
        r["recipientAccountId"] == ACCOUNT_B or r["resources"][0]["ARN"].split(":")[4] == ACCOUNT_B
        for name in ("Encrypt", "CreateKey", "DescribeKey")
        for r in seen(b_trail, name)
    )
