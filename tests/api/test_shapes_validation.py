"""Tests for strongroom.api.shapes: ValidationException, the model's constraints.

Lengths, ranges, enums, patterns and required members of KMS requests, every violation listed
and named as AWS names them (nested members by list position, map values by key, sensitive
values not quoted).

Request bodies are checked against botocore's service models (``tests.api.shapes_support``).
"""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.api.shapes import ServiceShapes
from tests.api.shapes_support import KMS_MODEL, b64, validation


@pytest.fixture(scope="module")
def kms() -> ServiceShapes:
    return ServiceShapes.load("kms")


# -- ValidationException: the model's constraints --------------------------------------------


def test_plaintext_longer_than_4096_bytes(kms: ServiceShapes) -> None:
    body = {"KeyId": "k", "Plaintext": b64(b"x" * 4097)}
    assert validation(kms, "Encrypt", body) == (
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length less than or equal to 4096"
    )
    assert kms.parse_input("Encrypt", {"KeyId": "k", "Plaintext": b64(b"x" * 4096)})


def test_empty_plaintext(kms: ServiceShapes) -> None:
    assert validation(kms, "Encrypt", {"KeyId": "k", "Plaintext": ""}) == (
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_generate_data_key_lists_every_violation(kms: ServiceShapes) -> None:
    body = {"KeyId": "k", "NumberOfBytes": 0, "KeySpec": "FOO"}
    assert validation(kms, "GenerateDataKey", body) == (
        "2 validation errors detected: "
        "Value 'FOO' at 'keySpec' failed to satisfy constraint: "
        "Member must satisfy enum value set: [AES_256, AES_128]; "
        "Value '0' at 'numberOfBytes' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )


def test_generate_data_key_does_not_enforce_rules_the_model_does_not_state(
    kms: ServiceShapes,
) -> None:
    body = {"KeyId": "k", "NumberOfBytes": 32, "KeySpec": "AES_256"}  # "one of" is not modelled
    assert kms.parse_input("GenerateDataKey", body) == body


@pytest.mark.parametrize(
    "body",
    [{"Plaintext": "AA=="}, {"KeyId": None, "Plaintext": "AA=="}],
    ids=["missing", "null"],
)
def test_a_required_member_must_not_be_null(kms: ServiceShapes, body: dict[str, Any]) -> None:
    assert validation(kms, "Encrypt", body) == (
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_alias_name_pattern(kms: ServiceShapes) -> None:
    body = {"AliasName": "alias/x y", "TargetKeyId": "k"}
    assert validation(kms, "CreateAlias", body) == (
        "1 validation error detected: Value 'alias/x y' at 'aliasName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
    )
    body["AliasName"] = "alias/x_y-1:2"
    assert kms.parse_input("CreateAlias", body) == body


def test_one_value_may_break_several_constraints(kms: ServiceShapes) -> None:
    message = validation(kms, "CreateAlias", {"AliasName": "", "TargetKeyId": "k"})
    assert message == (
        "2 validation errors detected: "
        "Value '' at 'aliasName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1; "
        "Value '' at 'aliasName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
    )


def test_tag_resource_names_nested_members_by_list_position(kms: ServiceShapes) -> None:
    tags: list[dict[str, Any]] = [{"TagKey": f"k{i}", "TagValue": "v"} for i in range(12)]
    tags[1] = {"TagKey": "", "TagValue": "v"}
    tags[9] = {"TagKey": "k"}
    tags[10] = {"TagKey": "k", "TagValue": "v" * 257}
    assert validation(kms, "TagResource", {"KeyId": "k", "Tags": tags}) == (
        "3 validation errors detected: "
        "Value '' at 'tags.2.member.tagKey' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1; "
        "Value null at 'tags.10.member.tagValue' failed to satisfy constraint: "
        "Member must not be null; "
        f"Value '{'v' * 257}' at 'tags.11.member.tagValue' failed to satisfy constraint: "
        "Member must have length less than or equal to 256"
    )


def test_a_null_list_element_must_not_be_null(kms: ServiceShapes) -> None:
    message = validation(kms, "TagResource", {"KeyId": "k", "Tags": [None]})
    assert message == (
        "1 validation error detected: Value null at 'tags.1.member' failed to satisfy "
        "constraint: Member must not be null"
    )


def test_create_key_enums(kms: ServiceShapes) -> None:
    specs = ", ".join(KMS_MODEL["shapes"]["KeySpec"]["enum"])
    message = validation(kms, "CreateKey", {"KeySpec": "RSA_1024", "KeyUsage": "ENCRYPT_DECRYPT"})
    assert message == (
        "1 validation error detected: Value 'RSA_1024' at 'keySpec' failed to satisfy "
        f"constraint: Member must satisfy enum value set: [{specs}]"
    )
    body = {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY", "Origin": "AWS_KMS"}
    assert kms.parse_input("CreateKey", body) == body
    assert "at 'origin'" in validation(kms, "CreateKey", {"Origin": "aws_kms"})  # case matters


@pytest.mark.parametrize(("limit", "ok"), [(0, False), (1, True), (1000, True), (1001, False)])
def test_list_keys_limit_range(kms: ServiceShapes, limit: int, ok: bool) -> None:
    if ok:
        assert kms.parse_input("ListKeys", {"Limit": limit}) == {"Limit": limit}
        return
    bound = "greater than or equal to 1" if limit < 1 else "less than or equal to 1000"
    assert validation(kms, "ListKeys", {"Limit": limit}) == (
        f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
        f"Member must have value {bound}"
    )


def test_string_length_counts_code_points(kms: ServiceShapes) -> None:
    description = "\U0001f511" * 8192  # 4 bytes and 2 UTF-16 units each; 8192 characters
    assert kms.parse_input("CreateKey", {"Description": description})
    message = validation(kms, "CreateKey", {"Description": description + "é"})
    assert message.endswith("Member must have length less than or equal to 8192")


def test_lists_are_shown_short(kms: ServiceShapes) -> None:
    body = {"KeyId": "k", "Plaintext": "AA==", "GrantTokens": ["t"] * 11}
    assert validation(kms, "Encrypt", body) == (
        "1 validation error detected: Value '[t, t, t, ...]' at 'grantTokens' failed to satisfy "
        "constraint: Member must have length less than or equal to 10"
    )


def test_list_elements_are_checked(kms: ServiceShapes) -> None:
    body = {"KeyId": "k", "Plaintext": "AA==", "GrantTokens": ["t", ""]}
    assert validation(kms, "Encrypt", body) == (
        "1 validation error detected: Value '' at 'grantTokens.2.member' failed to satisfy "
        "constraint: Member must have length greater than or equal to 1"
    )


def test_map_values_are_named_by_key(kms: ServiceShapes) -> None:
    body = {"KeyId": "k", "Plaintext": "AA==", "EncryptionContext": {"purpose": None}}
    assert validation(kms, "Encrypt", body) == (
        "1 validation error detected: Value null at 'encryptionContext.purpose' failed to "
        "satisfy constraint: Member must not be null"
    )


def test_sensitive_values_are_not_quoted(kms: ServiceShapes) -> None:
    body = {"CustomKeyStoreName": "s", "KeyStorePassword": "hunter2hunter2hunter2hunter2hunter2"}
    message = validation(kms, "CreateCustomKeyStore", body)
    assert message == (
        "1 validation error detected: Value at 'keyStorePassword' failed to satisfy constraint: "
        "Member must have length less than or equal to 32"
    )
    assert "hunter2" not in message


def test_patterns_must_match_the_whole_value(kms: ServiceShapes) -> None:
    body = {"CustomKeyStoreName": "s", "CloudHsmClusterId": "cluster-abcdefghijkX"}
    assert kms.parse_input("CreateCustomKeyStore", body) == body
    body["CloudHsmClusterId"] = "xcluster-abcdefghijk"
    assert "at 'cloudHsmClusterId'" in validation(kms, "CreateCustomKeyStore", body)
