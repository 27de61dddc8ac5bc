"""End to end: CreateKey, as issue 2 specifies it, against a real ``strongroom serve``.

CreateKey without arguments answers AWS's example metadata, the default policy is AWS's text
exactly; description, tags and policy are stored; unknown or incompatible key specs and usages,
reserved tag prefixes, oversized or malformed policies and unknown custom key stores are refused
with AWS's errors.

Through boto3 against the shared ``strongroom serve`` of the end-to-end tests; the helpers are in
:mod:`tests.kms.keys_support`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import ACCOUNT
from tests.kms.keys_support import DEFAULT_POLICY, close_to, fails, key_arn

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The members of KeyMetadata in AWS's examples-1.json answer to CreateKey without arguments.
EXAMPLE_FIELDS = {
    "AWSAccountId",
    "Arn",
    "CreationDate",
    "CustomerMasterKeySpec",
    "Description",
    "Enabled",
    "EncryptionAlgorithms",
    "KeyId",
    "KeyManager",
    "KeySpec",
    "KeyState",
    "KeyUsage",
    "MultiRegion",
    "Origin",
}


# -- CreateKey -------------------------------------------------------------------------------


def test_create_key_without_arguments_returns_aws_example_metadata(kms: Any) -> None:
    before = datetime.now(UTC)
    meta = kms.create_key()["KeyMetadata"]
    extra = set(meta) - EXAMPLE_FIELDS
    assert set(meta) >= EXAMPLE_FIELDS
    # The newer model adds CurrentKeyMaterialId for symmetric AWS_KMS keys (kms-api.md §3.14).
    assert extra <= {"CurrentKeyMaterialId"}
    if "CurrentKeyMaterialId" in meta:
        assert re.fullmatch(r"[0-9a-f]{64}", meta["CurrentKeyMaterialId"])
    assert UUID_RE.fullmatch(meta["KeyId"])
    assert meta["AWSAccountId"] == ACCOUNT
    assert meta["Arn"] == key_arn(meta["KeyId"])
    assert close_to(meta["CreationDate"], before)
    assert meta["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["Description"] == ""
    assert meta["Enabled"] is True
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert meta["KeyManager"] == "CUSTOMER"
    assert meta["KeyState"] == "Enabled"
    assert meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert meta["MultiRegion"] is False
    assert meta["Origin"] == "AWS_KMS"
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"] == meta


def test_create_key_default_policy_is_aws_text_exactly(kms: Any, key_id: str) -> None:
    got = kms.get_key_policy(KeyId=key_id, PolicyName="default")
    assert got["Policy"] == DEFAULT_POLICY % ACCOUNT
    assert got["PolicyName"] == "default"
    assert kms.list_key_policies(KeyId=key_id)["PolicyNames"] == ["default"]


def test_create_key_stores_description_tags_and_policy(kms: Any) -> None:
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        },
        indent=1,
    )
    tags = [{"TagKey": "team", "TagValue": "vault"}, {"TagKey": "cost", "TagValue": ""}]
    meta = kms.create_key(Description="payroll key", Tags=tags, Policy=policy)["KeyMetadata"]
    assert meta["Description"] == "payroll key"
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["Description"] == "payroll key"
    assert kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"] == policy
    listed = kms.list_resource_tags(KeyId=meta["KeyId"])
    assert sorted(listed["Tags"], key=lambda t: t["TagKey"]) == sorted(
        tags, key=lambda t: t["TagKey"]
    )
    assert listed["Truncated"] is False


def test_create_key_explicit_symmetric_default(kms: Any) -> None:
    meta = kms.create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    assert (meta["KeySpec"], meta["KeyUsage"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")


def test_create_key_unknown_key_spec_is_validation_exception(kms: Any) -> None:
    code, message = fails(lambda: kms.create_key(KeySpec="AES_999"))
    assert code == "ValidationException"
    assert message.startswith(
        "1 validation error detected: Value 'AES_999' at 'keySpec' failed to satisfy "
        "constraint: Member must satisfy enum value set: ["
    )
    assert "SYMMETRIC_DEFAULT" in message


def test_create_key_unknown_key_usage_is_validation_exception(kms: Any) -> None:
    code, message = fails(lambda: kms.create_key(KeyUsage="WRAP"))
    assert code == "ValidationException"
    assert message.startswith(
        "1 validation error detected: Value 'WRAP' at 'keyUsage' failed to satisfy "
        "constraint: Member must satisfy enum value set: ["
    )


@pytest.mark.parametrize("usage", ["SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"])
def test_create_key_usage_incompatible_with_symmetric_spec(kms: Any, usage: str) -> None:
    code, message = fails(lambda: kms.create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage=usage))
    assert code == "ValidationException"
    assert usage in message


def test_create_key_reserved_tag_prefix_is_tag_exception(kms: Any) -> None:
    code, _ = fails(lambda: kms.create_key(Tags=[{"TagKey": "aws:owner", "TagValue": "x"}]))
    assert code == "TagException"


def test_create_key_policy_over_32_kib_is_limit_exceeded(kms: Any) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Padding": "x" * 33_000})
    assert 32_768 < len(policy) <= 131_072  # inside the model's length, over the quota
    code, _ = fails(lambda: kms.create_key(Policy=policy))
    assert code == "LimitExceededException"


@pytest.mark.parametrize("policy", ["not json at all", "[1, 2, 3]", '{"Version": '])
def test_create_key_malformed_policy(kms: Any, policy: str) -> None:
    code, _ = fails(lambda: kms.create_key(Policy=policy))
    assert code == "MalformedPolicyDocumentException"


def test_create_key_unknown_custom_key_store(kms: Any) -> None:
    code, message = fails(
        lambda: kms.create_key(CustomKeyStoreId="cks-1234567890abcdef0", Origin="AWS_CLOUDHSM")
    )
    assert code == "CustomKeyStoreNotFoundException"
    assert "cks-1234567890abcdef0" in message
    # AWS requires Origin AWS_CLOUDHSM (or EXTERNAL_KEY_STORE) with a CustomKeyStoreId.
    code, _ = fails(lambda: kms.create_key(CustomKeyStoreId="cks-1234567890abcdef0"))
    assert code == "ValidationException"
