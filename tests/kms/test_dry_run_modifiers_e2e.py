"""Two request members of the current KMS model, through boto3 against a real server:
Decrypt's and ReEncrypt's ``DryRunModifiers: [IGNORE_CIPHERTEXT]`` (a dry run that checks
permissions without a valid ciphertext) and ListKeys' ``ResourceOwners``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import ACCOUNT
from tests.kms.access_support import (
    Env,
    access_env,
    allow,
    denied,
    fails,
    identity,
    identity_statement,
)

GARBAGE = b"\x01" * 64  # not a ciphertext of any key
IGNORE = ["IGNORE_CIPHERTEXT"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with access_env(tmp_path_factory.mktemp("dry-run-modifiers")) as environment:
        yield environment


def test_decrypt_ignoring_the_ciphertext_checks_permissions_only(env: Env) -> None:
    kms = env.admin
    key = env.key()["Arn"]
    dry = {"CiphertextBlob": GARBAGE, "DryRun": True, "DryRunModifiers": IGNORE}
    assert fails(lambda: kms.decrypt(KeyId=key, **dry))[0] == "DryRunOperationException"
    # without the modifier the ciphertext is read, and without DryRun the modifier is ignored
    plain_dry = {"CiphertextBlob": GARBAGE, "DryRun": True}
    unreadable = {"InvalidCiphertextException", "IncorrectKeyException"}
    assert fails(lambda: kms.decrypt(KeyId=key, **plain_dry))[0] in unreadable
    ignored = {"CiphertextBlob": GARBAGE, "DryRunModifiers": IGNORE}
    assert fails(lambda: kms.decrypt(KeyId=key, **ignored))[0] in unreadable
    # the key must be named, usable and fit for decryption
    code, message = fails(lambda: kms.decrypt(**dry))
    assert code == "ValidationException" and "KeyId is required" in message
    signer = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert fails(lambda: kms.decrypt(KeyId=signer["KeyId"], **dry))[0] == (
        "InvalidKeyUsageException"
    )
    off = env.key()["KeyId"]
    kms.disable_key(KeyId=off)
    assert fails(lambda: kms.decrypt(KeyId=off, **dry))[0] == "DisabledException"
    # the trail keeps the modifier
    events = env.server.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key}]
    )["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    assert any(
        (r["requestParameters"] or {}).get("dryRunModifiers") == IGNORE
        and r["errorCode"] == "DryRunOperationException"
        for r in records
    )


def test_the_caller_s_policies_and_conditions_decide(env: Env) -> None:
    user = env.user("dry-runner", identity(identity_statement("Allow", "kms:ListKeys")))
    condition = {"StringEquals": {"kms:EncryptionContext:purpose": "dry"}}
    key = env.key(allow(user.arn, ["kms:Decrypt", "kms:ReEncrypt*"], **condition))["Arn"]
    closed = env.key()["Arn"]
    kms = user.client()
    dry = {"CiphertextBlob": GARBAGE, "DryRun": True, "DryRunModifiers": IGNORE}
    right = {"purpose": "dry"}
    assert fails(lambda: kms.decrypt(KeyId=key, EncryptionContext=right, **dry))[0] == (
        "DryRunOperationException"
    )
    assert "kms:Decrypt" in denied(
        lambda: kms.decrypt(KeyId=key, EncryptionContext={"purpose": "wet"}, **dry)
    )
    assert "kms:Decrypt" in denied(lambda: kms.decrypt(KeyId=closed, **dry))
    # ReEncrypt: the source (SourceKeyId) and the destination are both authorized
    assert fails(
        lambda: kms.re_encrypt(
            SourceKeyId=key, SourceEncryptionContext=right, DestinationKeyId=key,
            DestinationEncryptionContext=right, **dry,
        )
    )[0] == "DryRunOperationException"  # fmt: skip
    assert "kms:ReEncryptFrom" in denied(
        lambda: kms.re_encrypt(
            SourceKeyId=closed, DestinationKeyId=key, DestinationEncryptionContext=right, **dry
        )
    )
    assert "kms:ReEncryptTo" in denied(
        lambda: kms.re_encrypt(
            SourceKeyId=key, SourceEncryptionContext=right, DestinationKeyId=closed, **dry
        )
    )
    assert fails(lambda: env.admin.re_encrypt(DestinationKeyId=closed, **dry)) == (
        "ValidationException",
        "SourceKeyId is required when DryRunModifiers includes IGNORE_CIPHERTEXT.",
    )


def test_list_keys_resource_owners(env: Env) -> None:
    kms = env.admin
    own = [k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]]
    assert own
    assert [k["KeyId"] for k in kms.list_keys(ResourceOwners=["SELF"], Limit=1000)["Keys"]] == own
    both = kms.list_keys(ResourceOwners=["OTHER_ACCOUNTS_VIA_RAM", "SELF"], Limit=1000)
    assert [k["KeyId"] for k in both["Keys"]] == own
    shared = kms.list_keys(ResourceOwners=["OTHER_ACCOUNTS_VIA_RAM"])
    assert (shared["Keys"], shared["Truncated"]) == ([], False)  # no AWS RAM: nothing shared
    first = kms.list_keys(Limit=1)
    assert first["Truncated"] and first["Keys"][0]["KeyArn"].split(":")[4] == ACCOUNT
    code, _ = fails(
        lambda: kms.list_keys(ResourceOwners=["OTHER_ACCOUNTS_VIA_RAM"], Marker=first["NextMarker"])
    )
    assert code == "InvalidMarkerException"
    assert fails(lambda: kms.list_keys(ResourceOwners=["EVERYONE"]))[0] == "ValidationException"
