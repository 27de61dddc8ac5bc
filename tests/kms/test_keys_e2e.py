"""End to end: the key lifecycle operations of issue 2 against a real ``strongroom serve``.

CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey, UpdateKeyDescription,
ScheduleKeyDeletion, CancelKeyDeletion through boto3; the key-state table (reference/kms-api.md
§3.2) cell by cell for every operation of issue 2 in Enabled / Disabled / PendingDeletion; and
which KeyId forms (§3.10) each operation accepts.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION, STRONGROOM, Server, error_code

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
DEFAULT_POLICY = """{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::%s:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}"""
UNKNOWN_KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"
DAY = timedelta(days=1)


def key_arn(key_id: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


def alias_arn(name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:kms:{region}:{account}:{name}"


def unique_alias() -> str:
    return f"alias/e2e-{uuid.uuid4().hex[:12]}"


def fails(call: Callable[[], Any]) -> tuple[str, str]:
    """Run a call that must fail; its (error code, message)."""
    with pytest.raises(ClientError) as excinfo:
        call()
    return error_code(excinfo), str(excinfo.value.response["Error"]["Message"])


def close_to(when: datetime, expected: datetime, slack: float = 60.0) -> bool:
    return abs((when - expected).total_seconds()) <= slack


def new_account_client(
    server: Server, account: str, region: str = REGION
) -> tuple[Any, dict[str, str]]:
    """A boto3 client of a new user in ``account`` (made through ``strongroom iam``), and its
    access key pair."""
    base = [
        "--data-dir",
        str(server.data_dir),
        "--account-id",
        account,
    ]
    subprocess.run(
        [STRONGROOM, "iam", "create-user", "lister", *base],
        check=True,
        capture_output=True,
        timeout=60,
    )
    allow_all = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
    )
    subprocess.run(
        [
            STRONGROOM,
            "iam",
            "put-user-policy",
            "lister",
            "all",
            "--policy-document",
            allow_all,
            *base,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    out = subprocess.run(
        [STRONGROOM, "iam", "create-access-key", "lister", *base],
        check=True,
        capture_output=True,
        timeout=60,
    )
    pair = json.loads(out.stdout)["AccessKey"]
    return server.client(
        region=region, akid=pair["AccessKeyId"], secret=pair["SecretAccessKey"]
    ), pair


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


# -- DescribeKey and identifiers -------------------------------------------------------------


def test_describe_key_by_every_identifier_form(kms: Any, key_id: str) -> None:
    alias = unique_alias()
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    forms = [key_id, key_arn(key_id), alias, alias_arn(alias)]
    for form in forms:
        meta = kms.describe_key(KeyId=form)["KeyMetadata"]
        assert meta["KeyId"] == key_id, form
        assert meta["Arn"] == key_arn(key_id), form


def test_describe_key_not_found_texts(kms: Any) -> None:
    assert fails(lambda: kms.describe_key(KeyId=UNKNOWN_KEY)) == (
        "NotFoundException",
        f"Key '{key_arn(UNKNOWN_KEY)}' does not exist",
    )
    assert fails(lambda: kms.describe_key(KeyId=key_arn(UNKNOWN_KEY))) == (
        "NotFoundException",
        f"Key '{key_arn(UNKNOWN_KEY)}' does not exist",
    )
    missing = unique_alias()
    assert fails(lambda: kms.describe_key(KeyId=missing)) == (
        "NotFoundException",
        f"Alias {alias_arn(missing)} is not found.",
    )
    assert fails(lambda: kms.describe_key(KeyId=alias_arn(missing))) == (
        "NotFoundException",
        f"Alias {alias_arn(missing)} is not found.",
    )
    code, _ = fails(lambda: kms.describe_key(KeyId="not-a-key-id"))
    assert code == "NotFoundException"


@pytest.mark.parametrize(
    "bad_arn",
    [
        "arn:aws:kms:us-east-1:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:us-east-1:111122223333:thing/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:us-east-1:111122223333",
        "arn:aws:kms",
    ],
)
@pytest.mark.parametrize("operation", ["DescribeKey", "EnableKey", "Encrypt", "TagResource"])
def test_malformed_arn_is_invalid_arn_exception(kms: Any, operation: str, bad_arn: str) -> None:
    calls: dict[str, Callable[[], Any]] = {
        "DescribeKey": lambda: kms.describe_key(KeyId=bad_arn),
        "EnableKey": lambda: kms.enable_key(KeyId=bad_arn),
        "Encrypt": lambda: kms.encrypt(KeyId=bad_arn, Plaintext=b"x"),
        "TagResource": lambda: kms.tag_resource(
            KeyId=bad_arn, Tags=[{"TagKey": "a", "TagValue": "b"}]
        ),
    }
    code, _ = fails(calls[operation])
    assert code == "InvalidArnException"


# Operations and the KeyId forms they accept (kms-api.md §3.10). Each call gets a fresh key
# whose alias exists, and the identifier to pass.
FORM_CALLS: dict[str, Callable[[Any, str], Any]] = {
    "DescribeKey": lambda k, i: k.describe_key(KeyId=i),
    "Encrypt": lambda k, i: k.encrypt(KeyId=i, Plaintext=b"forms"),
    "GenerateDataKey": lambda k, i: k.generate_data_key(KeyId=i, KeySpec="AES_256"),
    "GenerateDataKeyWithoutPlaintext": lambda k, i: k.generate_data_key_without_plaintext(
        KeyId=i, NumberOfBytes=16
    ),
    "EnableKey": lambda k, i: k.enable_key(KeyId=i),
    "DisableKey": lambda k, i: k.disable_key(KeyId=i),
    "UpdateKeyDescription": lambda k, i: k.update_key_description(KeyId=i, Description="f"),
    "ScheduleKeyDeletion": lambda k, i: k.schedule_key_deletion(KeyId=i, PendingWindowInDays=7),
    "TagResource": lambda k, i: k.tag_resource(KeyId=i, Tags=[{"TagKey": "f", "TagValue": "v"}]),
    "UntagResource": lambda k, i: k.untag_resource(KeyId=i, TagKeys=["f"]),
    "ListResourceTags": lambda k, i: k.list_resource_tags(KeyId=i),
    "GetKeyPolicy": lambda k, i: k.get_key_policy(KeyId=i, PolicyName="default"),
    "ListKeyPolicies": lambda k, i: k.list_key_policies(KeyId=i),
    "CreateAlias": lambda k, i: k.create_alias(AliasName=unique_alias(), TargetKeyId=i),
    "ListAliases": lambda k, i: k.list_aliases(KeyId=i),
}
ALIAS_FORMS_ACCEPTED = {
    "DescribeKey",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
}


@pytest.mark.parametrize("form", ["key id", "key ARN", "alias name", "alias ARN"])
@pytest.mark.parametrize("operation", sorted(FORM_CALLS))
def test_key_id_forms_each_operation_accepts(kms: Any, operation: str, form: str) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    alias = unique_alias()
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    identifier = {
        "key id": key_id,
        "key ARN": key_arn(key_id),
        "alias name": alias,
        "alias ARN": alias_arn(alias),
    }[form]
    call = FORM_CALLS[operation]
    if form.startswith("key") or operation in ALIAS_FORMS_ACCEPTED:
        call(kms, identifier)
    else:
        code, message = fails(lambda: call(kms, identifier))
        assert code == "NotFoundException"
        assert identifier in message


def test_decrypt_key_id_in_every_form(kms: Any, key_id: str) -> None:
    alias = unique_alias()
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    blob = kms.encrypt(KeyId=alias, Plaintext=b"secret")["CiphertextBlob"]
    for form in (key_id, key_arn(key_id), alias, alias_arn(alias)):
        out = kms.decrypt(CiphertextBlob=blob, KeyId=form)
        assert out["Plaintext"] == b"secret"
        assert out["KeyId"] == key_arn(key_id)


# -- ListKeys, accounts and regions ----------------------------------------------------------


@dataclass
class Account:
    """A fresh account on the shared server: its clients per region know only its keys."""

    account: str
    east: Any
    west: Any


@pytest.fixture(scope="module")
def fresh_account(server: Server) -> Iterator[Account]:
    account = f"{uuid.uuid4().int % 10**12:012d}"
    east, pair = new_account_client(server, account)
    west = server.client(
        region="eu-west-1", akid=pair["AccessKeyId"], secret=pair["SecretAccessKey"]
    )
    yield Account(account, east, west)


def test_list_keys_pagination_is_exact(fresh_account: Account) -> None:
    kms = fresh_account.east
    empty = kms.list_keys()
    assert (empty["Keys"], empty["Truncated"]) == ([], False)
    made = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(5)}

    pages, marker = [], None
    while True:
        page = kms.list_keys(Limit=2, **({"Marker": marker} if marker else {}))
        pages.append(page)
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert [len(p["Keys"]) for p in pages] == [2, 2, 1]
    listed = [k["KeyId"] for p in pages for k in p["Keys"]]
    assert len(listed) == len(set(listed)) == 5
    assert set(listed) == made
    for page in pages:
        for entry in page["Keys"]:
            assert entry["KeyArn"] == key_arn(entry["KeyId"], account=fresh_account.account)

    whole = kms.list_keys()
    assert {k["KeyId"] for k in whole["Keys"]} == made
    assert whole["Truncated"] is False
    assert "NextMarker" not in whole
    exact = kms.list_keys(Limit=5)
    assert len(exact["Keys"]) == 5
    assert exact["Truncated"] is False

    paged = kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 3})
    assert {k["KeyId"] for page in paged for k in page["Keys"]} == made


def test_failed_create_key_leaves_no_key(fresh_account: Account) -> None:
    kms = fresh_account.east
    before = {k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]}
    fails(lambda: kms.create_key(Tags=[{"TagKey": "aws:x", "TagValue": "y"}]))
    fails(lambda: kms.create_key(Policy="{not json"))
    fails(lambda: kms.create_key(KeyUsage="SIGN_VERIFY"))
    assert {k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]} == before


def test_keys_live_in_their_region(fresh_account: Account) -> None:
    east, west, account = fresh_account.east, fresh_account.west, fresh_account.account
    east_id = east.create_key()["KeyMetadata"]["KeyId"]
    assert east.describe_key(KeyId=east_id)["KeyMetadata"]["Arn"] == key_arn(
        east_id, account=account
    )
    assert fails(lambda: west.describe_key(KeyId=east_id)) == (
        "NotFoundException",
        f"Key '{key_arn(east_id, 'eu-west-1', account)}' does not exist",
    )
    code, _ = fails(lambda: west.describe_key(KeyId=key_arn(east_id, account=account)))
    assert code == "NotFoundException"
    assert east_id not in {k["KeyId"] for k in west.list_keys(Limit=1000)["Keys"]}

    west_meta = west.create_key()["KeyMetadata"]
    assert west_meta["Arn"] == key_arn(west_meta["KeyId"], "eu-west-1", account)
    assert [k["KeyId"] for k in west.list_keys()["Keys"]] == [west_meta["KeyId"]]
    assert west_meta["KeyId"] not in {k["KeyId"] for k in east.list_keys(Limit=1000)["Keys"]}
    code, _ = fails(lambda: east.encrypt(KeyId=west_meta["KeyId"], Plaintext=b"x"))
    assert code == "NotFoundException"


@pytest.mark.parametrize("marker", ["zzz", "not-a-marker"])
def test_list_keys_bad_marker(kms: Any, marker: str) -> None:
    code, _ = fails(lambda: kms.list_keys(Marker=marker))
    assert code == "InvalidMarkerException"


@pytest.mark.parametrize("marker", ["!!", "Z2FyYmFnZQ=="])
def test_list_keys_marker_not_issued_by_the_server(kms: Any, marker: str) -> None:
    code, _ = fails(lambda: kms.list_keys(Marker=marker))
    assert code == "InvalidMarkerException"


def test_list_keys_limit_range(kms: Any) -> None:
    code, message = fails(lambda: kms.list_keys(Limit=1001))
    assert code == "ValidationException"
    assert message == (
        "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 1000"
    )


# -- EnableKey, DisableKey, UpdateKeyDescription ---------------------------------------------


def test_disable_and_enable_key(kms: Any, key_id: str) -> None:
    assert kms.disable_key(KeyId=key_id)["ResponseMetadata"]["HTTPStatusCode"] == 200
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Disabled", False)
    kms.disable_key(KeyId=key_id)  # disabling a disabled key succeeds
    assert fails(lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x")) == (
        "DisabledException",
        f"{key_arn(key_id)} is disabled.",
    )
    kms.enable_key(KeyId=key_id)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Enabled", True)
    kms.enable_key(KeyId=key_id)  # enabling an enabled key succeeds
    assert kms.encrypt(KeyId=key_id, Plaintext=b"x")["KeyId"] == key_arn(key_id)


def test_update_key_description(kms: Any, key_id: str) -> None:
    kms.update_key_description(KeyId=key_id, Description="rotated quarterly")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "rotated quarterly"
    kms.update_key_description(KeyId=key_id, Description="")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == ""
    code, message = fails(lambda: kms.update_key_description(KeyId=key_id, Description="d" * 8193))
    assert code == "ValidationException"
    assert message.endswith(
        "at 'description' failed to satisfy constraint: "
        "Member must have length less than or equal to 8192"
    )


# -- ScheduleKeyDeletion, CancelKeyDeletion --------------------------------------------------


@pytest.mark.parametrize("days", [None, 7, 30])
def test_schedule_key_deletion(kms: Any, key_id: str, days: int | None) -> None:
    window = 30 if days is None else days
    now = datetime.now(UTC)
    args = {} if days is None else {"PendingWindowInDays": days}
    out = kms.schedule_key_deletion(KeyId=key_id, **args)
    assert out["KeyId"] == key_arn(key_id)
    assert out["KeyState"] == "PendingDeletion"
    assert out["PendingWindowInDays"] == window
    assert close_to(out["DeletionDate"], now + window * DAY)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion"
    assert meta["Enabled"] is False
    assert meta["DeletionDate"] == out["DeletionDate"]


@pytest.mark.parametrize(
    ("days", "bound"),
    [(6, "greater than or equal to 7"), (31, "less than or equal to 30")],
)
def test_schedule_key_deletion_window_out_of_range(
    kms: Any, key_id: str, days: int, bound: str
) -> None:
    assert fails(lambda: kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=days)) == (
        "ValidationException",
        f"1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to "
        f"satisfy constraint: Member must have value {bound}",
    )
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_cancel_key_deletion_leaves_key_disabled(kms: Any, key_id: str) -> None:
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    out = kms.cancel_key_deletion(KeyId=key_id)
    assert out["KeyId"] == key_arn(key_id)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "Disabled"
    assert meta["Enabled"] is False
    assert "DeletionDate" not in meta
    kms.enable_key(KeyId=key_id)
    assert kms.encrypt(KeyId=key_id, Plaintext=b"back")["KeyId"] == key_arn(key_id)


# -- The key-state table, end to end ---------------------------------------------------------


@dataclass
class Subject:
    """A key brought into a state, with what the operations need."""

    kms: Any
    key_id: str
    arn: str
    blob: bytes  # encrypted under the key while it was Enabled
    alias: str  # points at the key
    other_id: str  # an Enabled key
    other_blob: bytes  # encrypted under the other key


def _update_alias_onto(s: Subject) -> Any:
    alias = unique_alias()
    s.kms.create_alias(AliasName=alias, TargetKeyId=s.other_id)
    return s.kms.update_alias(AliasName=alias, TargetKeyId=s.key_id)


STATE_OPS: dict[str, Callable[[Subject], Any]] = {
    "DescribeKey": lambda s: s.kms.describe_key(KeyId=s.key_id),
    "EnableKey": lambda s: s.kms.enable_key(KeyId=s.key_id),
    "DisableKey": lambda s: s.kms.disable_key(KeyId=s.key_id),
    "UpdateKeyDescription": lambda s: s.kms.update_key_description(KeyId=s.key_id, Description="x"),
    "ScheduleKeyDeletion": lambda s: s.kms.schedule_key_deletion(
        KeyId=s.key_id, PendingWindowInDays=7
    ),
    "CancelKeyDeletion": lambda s: s.kms.cancel_key_deletion(KeyId=s.key_id),
    "Encrypt": lambda s: s.kms.encrypt(KeyId=s.key_id, Plaintext=b"state"),
    "Decrypt": lambda s: s.kms.decrypt(CiphertextBlob=s.blob),
    "ReEncrypt(source)": lambda s: s.kms.re_encrypt(
        CiphertextBlob=s.blob, DestinationKeyId=s.other_id
    ),
    "ReEncrypt(destination)": lambda s: s.kms.re_encrypt(
        CiphertextBlob=s.other_blob, DestinationKeyId=s.key_id
    ),
    "GenerateDataKey": lambda s: s.kms.generate_data_key(KeyId=s.key_id, KeySpec="AES_128"),
    "GenerateDataKeyWithoutPlaintext": lambda s: s.kms.generate_data_key_without_plaintext(
        KeyId=s.key_id, KeySpec="AES_256"
    ),
    "CreateAlias": lambda s: s.kms.create_alias(AliasName=unique_alias(), TargetKeyId=s.key_id),
    "UpdateAlias(onto this key)": _update_alias_onto,
    "UpdateAlias(away from this key)": lambda s: s.kms.update_alias(
        AliasName=s.alias, TargetKeyId=s.other_id
    ),
    "DeleteAlias": lambda s: s.kms.delete_alias(AliasName=s.alias),
    "ListAliases": lambda s: s.kms.list_aliases(KeyId=s.key_id),
    "TagResource": lambda s: s.kms.tag_resource(
        KeyId=s.key_id, Tags=[{"TagKey": "k", "TagValue": "v"}]
    ),
    "UntagResource": lambda s: s.kms.untag_resource(KeyId=s.key_id, TagKeys=["setup"]),
    "ListResourceTags": lambda s: s.kms.list_resource_tags(KeyId=s.key_id),
    "GetKeyPolicy": lambda s: s.kms.get_key_policy(KeyId=s.key_id, PolicyName="default"),
    "PutKeyPolicy": lambda s: s.kms.put_key_policy(
        KeyId=s.key_id, PolicyName="default", Policy=DEFAULT_POLICY % ACCOUNT
    ),
    "ListKeyPolicies": lambda s: s.kms.list_key_policies(KeyId=s.key_id),
}

OK = None
DISABLED = ("DisabledException", "is disabled.")  # footnote [1]
PENDING = ("KMSInvalidStateException", "is pending deletion.")  # footnote [3]
NOT_PENDING = ("KMSInvalidStateException", "is not pending deletion.")  # footnote [4]
STATES = ("Enabled", "Disabled", "PendingDeletion")

# DG key-state table (kms-api.md §3.2), columns Enabled / Disabled / PendingDeletion.
_ALWAYS = (OK, OK, OK)
_EDIT = (OK, OK, PENDING)
# Under PendingDeletion the DG says "[2] or [3]"; the service answers [3] (KMSInvalidState).
_CRYPTO = (OK, DISABLED, PENDING)
STATE_TABLE: dict[str, tuple[tuple[str, str] | None, ...]] = {
    "DescribeKey": _ALWAYS,
    "EnableKey": _EDIT,
    "DisableKey": _EDIT,
    "UpdateKeyDescription": _EDIT,
    "ScheduleKeyDeletion": _EDIT,
    "CancelKeyDeletion": (NOT_PENDING, NOT_PENDING, OK),
    "Encrypt": _CRYPTO,
    "Decrypt": _CRYPTO,
    "ReEncrypt(source)": _CRYPTO,
    "ReEncrypt(destination)": _CRYPTO,
    "GenerateDataKey": _CRYPTO,
    "GenerateDataKeyWithoutPlaintext": _CRYPTO,
    "CreateAlias": _EDIT,
    "UpdateAlias(onto this key)": _EDIT,  # footnote [10]: the new target may not be pending
    "UpdateAlias(away from this key)": _ALWAYS,  # footnote [10]: the old target may be
    "DeleteAlias": _ALWAYS,
    "ListAliases": _ALWAYS,
    "TagResource": _EDIT,
    "UntagResource": _EDIT,
    "ListResourceTags": _ALWAYS,
    "GetKeyPolicy": _ALWAYS,
    "PutKeyPolicy": _ALWAYS,
    "ListKeyPolicies": _ALWAYS,
}
assert set(STATE_TABLE) == set(STATE_OPS)


def _state_cases() -> Iterator[Any]:
    for operation, row in STATE_TABLE.items():
        for state, expected in zip(STATES, row, strict=True):
            yield pytest.param(operation, state, expected, id=f"{operation}-{state}")


@pytest.fixture(scope="module")
def other_key(kms: Any) -> tuple[str, bytes]:
    other_id = kms.create_key(Description="state-table partner")["KeyMetadata"]["KeyId"]
    return other_id, kms.encrypt(KeyId=other_id, Plaintext=b"partner")["CiphertextBlob"]


@pytest.mark.parametrize(("operation", "state", "expected"), list(_state_cases()))
def test_key_state_table(
    kms: Any,
    other_key: tuple[str, bytes],
    operation: str,
    state: str,
    expected: tuple[str, str] | None,
) -> None:
    key_id = kms.create_key(Description=f"state table {state}")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"state")["CiphertextBlob"]
    alias = unique_alias()
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "setup", "TagValue": "1"}])
    if state == "Disabled":
        kms.disable_key(KeyId=key_id)
    elif state == "PendingDeletion":
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == state
    subject = Subject(kms, key_id, key_arn(key_id), blob, alias, *other_key)

    if expected is None:
        STATE_OPS[operation](subject)
    else:
        code, text = expected
        assert fails(lambda: STATE_OPS[operation](subject)) == (code, f"{key_arn(key_id)} {text}")


def test_refused_operation_changes_nothing(kms: Any, key_id: str) -> None:
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=9)
    before = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    for call in (
        lambda: kms.enable_key(KeyId=key_id),
        lambda: kms.disable_key(KeyId=key_id),
        lambda: kms.update_key_description(KeyId=key_id, Description="changed"),
        lambda: kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=20),
    ):
        fails(call)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"] == before


def test_crypto_round_trip_after_state_changes(kms: Any, key_id: str) -> None:
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"survives", EncryptionContext={"a": "b"})[
        "CiphertextBlob"
    ]
    kms.disable_key(KeyId=key_id)
    kms.schedule_key_deletion(KeyId=key_id)
    kms.cancel_key_deletion(KeyId=key_id)
    kms.enable_key(KeyId=key_id)
    out = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})
    assert out["Plaintext"] == b"survives"
    assert out["KeyId"] == key_arn(key_id)
