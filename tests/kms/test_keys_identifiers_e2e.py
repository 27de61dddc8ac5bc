"""End to end: DescribeKey and the KeyId forms each operation accepts (reference/kms-api.md
§3.10), against a real ``strongroom serve``.

DescribeKey by key id, key ARN, alias name and alias ARN; AWS's not-found texts; malformed ARNs
are InvalidArnException; which forms each operation of issue 2 accepts; Decrypt's KeyId in every
form.

Through boto3 against the shared ``strongroom serve`` of the end-to-end tests; the helpers are in
:mod:`tests.kms.keys_support`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.kms.keys_support import alias_arn, fails, key_arn, unique_alias

UNKNOWN_KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"


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
    elif form == "alias ARN":
        assert fails(lambda: call(kms, identifier)) == (
            "InvalidArnException",
            "Key Aliases are not supported for this operation.",
        )
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
