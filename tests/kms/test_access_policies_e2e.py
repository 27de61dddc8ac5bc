"""End to end: key policies as AWS KMS applies them, through boto3 against a real ``serve``.

The AWS-documented examples (KMS Developer Guide: the default key policy that delegates to IAM, a
key policy that does not allow the caller, and the console's default policy for key
administrators and key users) as black-box tests.

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
    ALLOW_ALL,
    ROOT_STATEMENT,
    Env,
    access_env,
    allow,
    denial,
    denied,
    identity,
    no_identity,
    no_resource,
    roundtrip,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with access_env(tmp_path_factory.mktemp("access")) as environment:
        yield environment


# --- the default key policy --------------------------------------------------------------------


def test_default_policy_delegates_to_iam(env: Env) -> None:
    key = env.key()
    alice = env.user("alice", ALLOW_ALL)
    bob = env.user("bob")
    roundtrip(alice.client(), key["Arn"])  # an identity policy that allows: enough
    kms = bob.client()
    assert denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == denial(
        bob.arn, "Encrypt", key["Arn"], no_identity("Encrypt")
    )
    assert denied(lambda: kms.describe_key(KeyId=key["Arn"])) == denial(
        bob.arn, "DescribeKey", key["Arn"], no_identity("DescribeKey")
    )
    # An identity policy scoped to this key's ARN and to Encrypt opens exactly that, at once.
    env.put_user_policy(
        "bob",
        "encrypt-one",
        identity({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": key["Arn"]}),
    )
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert denied(lambda: kms.decrypt(CiphertextBlob=blob)) == denial(
        bob.arn, "Decrypt", key["Arn"], no_identity("Decrypt")
    )
    other = env.key()
    denied(lambda: kms.encrypt(KeyId=other["KeyId"], Plaintext=b"x"))
    # CreateKey and ListKeys have no key policy: the identity policy alone decides.
    assert denied(kms.create_key) == (
        f"User: {bob.arn} is not authorized to perform: kms:CreateKey on resource: * "
        + no_identity("CreateKey")
    )
    assert alice.client().list_keys()["Keys"]


def test_key_policy_that_does_not_allow_the_caller(env: Env) -> None:
    admin_arn = f"arn:aws:iam::{ACCOUNT}:user/admin"
    key = env.key(allow(admin_arn, "kms:*"), root=False)
    carol = env.user("carol", ALLOW_ALL)  # IAM allows everything, but the key policy decides
    kms = carol.client()
    assert denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == denial(
        carol.arn, "Encrypt", key["Arn"], no_resource("Encrypt")
    )
    denied(lambda: kms.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(ALLOW_ALL)))
    roundtrip(env.admin, key["KeyId"])


# --- key administrators and key users (the console's default policy) ---------------------------


def test_key_administrators_versus_key_users(env: Env) -> None:
    admin = env.user("keyadmin")
    user = env.user("keyuser")
    policy = {
        "Id": "key-consolepolicy-3",
        "Version": "2012-10-17",
        "Statement": [
            ROOT_STATEMENT,
            {
                "Sid": "Allow access for Key Administrators",
                "Effect": "Allow",
                "Principal": {"AWS": admin.arn},
                "Action": [
                    "kms:Create*",
                    "kms:Describe*",
                    "kms:Enable*",
                    "kms:List*",
                    "kms:Put*",
                    "kms:Update*",
                    "kms:Revoke*",
                    "kms:Disable*",
                    "kms:Get*",
                    "kms:Delete*",
                    "kms:TagResource",
                    "kms:UntagResource",
                    "kms:ScheduleKeyDeletion",
                    "kms:CancelKeyDeletion",
                    "kms:RotateKeyOnDemand",
                ],
                "Resource": "*",
            },
            {
                "Sid": "Allow use of the key",
                "Effect": "Allow",
                "Principal": {"AWS": user.arn},
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:DescribeKey",
                ],
                "Resource": "*",
            },
            {
                "Sid": "Allow attachment of persistent resources",
                "Effect": "Allow",
                "Principal": {"AWS": user.arn},
                "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                "Resource": "*",
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
        ],
    }
    text = json.dumps(policy, indent=2)
    key = dict(env.admin.create_key(Policy=text)["KeyMetadata"])
    kid, arn = key["KeyId"], key["Arn"]

    mgr = admin.client()
    assert mgr.describe_key(KeyId=kid)["KeyMetadata"]["KeyId"] == kid
    assert mgr.get_key_policy(KeyId=kid, PolicyName="default")["Policy"] == text
    mgr.tag_resource(KeyId=kid, Tags=[{"TagKey": "team", "TagValue": "sec"}])
    mgr.disable_key(KeyId=kid)
    mgr.enable_key(KeyId=kid)
    mgr.update_key_description(KeyId=kid, Description="managed by keyadmin")
    mgr.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    mgr.cancel_key_deletion(KeyId=kid)
    mgr.enable_key(KeyId=kid)
    mgr.put_key_policy(KeyId=kid, PolicyName="default", Policy=text)
    for action, call in [
        ("Encrypt", lambda: mgr.encrypt(KeyId=kid, Plaintext=b"x")),
        ("GenerateDataKey", lambda: mgr.generate_data_key(KeyId=kid, KeySpec="AES_256")),
    ]:
        assert denied(call) == denial(admin.arn, action, arn, no_identity(action))

    use = user.client()
    roundtrip(use, kid, {"purpose": "test"})
    assert len(use.generate_data_key(KeyId=kid, NumberOfBytes=32)["Plaintext"]) == 32
    use.generate_data_key_without_plaintext(KeyId=kid, KeySpec="AES_128")
    blob = use.encrypt(KeyId=kid, Plaintext=b"y")["CiphertextBlob"]
    use.re_encrypt(CiphertextBlob=blob, DestinationKeyId=kid)
    assert use.describe_key(KeyId=arn)["KeyMetadata"]["Description"] == "managed by keyadmin"
    for action, call in [
        ("ScheduleKeyDeletion", lambda: use.schedule_key_deletion(KeyId=kid)),
        ("PutKeyPolicy", lambda: use.put_key_policy(KeyId=kid, PolicyName="default", Policy=text)),
        ("DisableKey", lambda: use.disable_key(KeyId=kid)),
        ("GetKeyPolicy", lambda: use.get_key_policy(KeyId=kid, PolicyName="default")),
    ]:
        assert denied(call) == denial(user.arn, action, arn, no_identity(action))
    # a grant for an AWS service only: a direct CreateGrant is not one
    denied(lambda: use.create_grant(KeyId=kid, GranteePrincipal=admin.arn, Operations=["Decrypt"]))
    assert env.admin.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
