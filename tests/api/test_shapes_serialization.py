"""Tests for strongroom.api.shapes: loading, the happy path, and SerializationException.

The shapes of a loaded model are those of the model; valid bodies parse (blobs decoded, timestamps
as epoch seconds, unknown members ignored); a body of the wrong JSON type anywhere is a
SerializationException with AWS's message.

Request bodies are checked against botocore's service models (``tests.api.shapes_support``).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from strongroom.api.shapes import ServiceShapes
from tests.api.shapes_support import KMS_MODEL, error_of, serialization


@pytest.fixture(scope="module")
def kms() -> ServiceShapes:
    return ServiceShapes.load("kms")


# -- loading and the happy path -------------------------------------------------------------


def test_operations_are_those_of_the_model(kms: ServiceShapes) -> None:
    assert kms.operations == frozenset(KMS_MODEL["operations"])
    assert {"Encrypt", "CreateKey", "TagResource"} <= kms.operations


def test_encrypt_returns_a_new_dict_with_blobs_decoded(kms: ServiceShapes) -> None:
    raw = b'{"KeyId": "alias/x", "Plaintext": "aGVsbG8=", "EncryptionContext": {"a": "b"}}'
    body = msgspec.json.decode(raw)
    parsed = kms.parse_input("Encrypt", body)
    assert parsed == {"KeyId": "alias/x", "Plaintext": b"hello", "EncryptionContext": {"a": "b"}}
    assert parsed is not body
    assert parsed["EncryptionContext"] is not body["EncryptionContext"]
    assert body["Plaintext"] == "aGVsbG8="  # the input is left alone


def test_unknown_members_are_ignored_at_every_level(kms: ServiceShapes) -> None:
    body = {
        "KeyId": "k",
        "Tags": [{"TagKey": "a", "TagValue": "b", "Colour": "red"}],
        "Surprise": {"x": 1},
    }
    assert kms.parse_input("TagResource", body) == {
        "KeyId": "k",
        "Tags": [{"TagKey": "a", "TagValue": "b"}],
    }


def test_null_optional_members_are_absent(kms: ServiceShapes) -> None:
    body = {"KeyId": "k", "Plaintext": "AA==", "EncryptionContext": None, "DryRun": None}
    assert kms.parse_input("Encrypt", body) == {"KeyId": "k", "Plaintext": b"\0"}


def test_an_operation_without_arguments_takes_an_empty_object(kms: ServiceShapes) -> None:
    assert kms.parse_input("ListKeys", {}) == {}
    assert kms.parse_input("CreateKey", {}) == {}


def test_unknown_operation_is_refused(kms: ServiceShapes) -> None:
    assert error_of(kms, "Launch", {}).code == "UnknownOperationException"


@pytest.mark.parametrize(
    ("valid_to", "epoch"),
    [
        (1893456000, 1893456000.0),
        (1893456000.5, 1893456000.5),
        ("2030-01-01T00:00:00Z", 1893456000.0),
        ("2030-01-01T01:00:00+01:00", 1893456000.0),
        ("2030-01-01T00:00:00", 1893456000.0),  # no offset: UTC
        ("2030-01-01T00:00:00.250Z", 1893456000.25),
    ],
)
def test_timestamps_become_epoch_seconds(
    kms: ServiceShapes, valid_to: object, epoch: float
) -> None:
    body = {
        "KeyId": "k",
        "ImportToken": "AQ==",
        "EncryptedKeyMaterial": "Ag==",
        "ValidTo": valid_to,
    }
    parsed = kms.parse_input("ImportKeyMaterial", body)
    assert parsed["ValidTo"] == epoch
    assert type(parsed["ValidTo"]) is float
    assert (parsed["ImportToken"], parsed["EncryptedKeyMaterial"]) == (b"\1", b"\2")


# -- SerializationException: wrong JSON types --------------------------------------------------


@pytest.mark.parametrize("body", [[], "{}", 1, None, True, [{"KeyId": "k"}]])
def test_a_body_that_is_not_an_object_is_a_serialization_error(
    kms: ServiceShapes, body: object
) -> None:
    assert serialization(kms, "Encrypt", body) == "The request body must be a JSON object"


BASE: dict[str, dict[str, Any]] = {
    "ListKeys": {},
    "Encrypt": {"KeyId": "k", "Plaintext": "AA=="},
    "TagResource": {"KeyId": "k"},
    "ImportKeyMaterial": {"KeyId": "k", "ImportToken": "AA==", "EncryptedKeyMaterial": "AA=="},
}


@pytest.mark.parametrize(
    ("operation", "members", "path"),
    [
        ("ListKeys", {"Limit": 1.5}, "limit"),
        ("ListKeys", {"Limit": 1.0}, "limit"),
        ("ListKeys", {"Limit": "1"}, "limit"),
        ("ListKeys", {"Limit": True}, "limit"),  # booleans are not integers
        ("ListKeys", {"Marker": 5}, "marker"),
        ("Encrypt", {"KeyId": 1}, "keyId"),
        ("Encrypt", {"Plaintext": ["AA=="]}, "plaintext"),
        ("Encrypt", {"EncryptionContext": []}, "encryptionContext"),
        ("Encrypt", {"EncryptionContext": {"a": 1}}, "encryptionContext.a"),
        ("Encrypt", {"GrantTokens": "t"}, "grantTokens"),
        ("Encrypt", {"GrantTokens": [7]}, "grantTokens.1.member"),
        ("Encrypt", {"DryRun": "true"}, "dryRun"),
        ("Encrypt", {"DryRun": 1}, "dryRun"),
        ("TagResource", {"Tags": ["a=b"]}, "tags.1.member"),
        ("TagResource", {"Tags": [{"TagKey": "a", "TagValue": False}]}, "tags.1.member.tagValue"),
        ("ImportKeyMaterial", {"ValidTo": True}, "validTo"),
    ],
)
def test_a_member_of_the_wrong_json_type_is_a_serialization_error(
    kms: ServiceShapes, operation: str, members: dict[str, Any], path: str
) -> None:
    message = serialization(kms, operation, {**BASE[operation], **members})
    assert re.fullmatch(
        rf"Value at '{re.escape(path)}' must be an? [a-z0-9 ]+, not an? \w+", message
    )


def test_type_messages_name_what_was_expected_and_what_came(kms: ServiceShapes) -> None:
    message = serialization(kms, "ListKeys", {"Limit": "1"})
    assert message == "Value at 'limit' must be an integer, not a string"


@pytest.mark.parametrize("limit", [2**31, -(2**31) - 1, 10**30])
def test_an_integer_beyond_32_bits_is_a_serialization_error(kms: ServiceShapes, limit: int) -> None:
    assert serialization(kms, "ListKeys", {"Limit": limit}) == (
        "Value at 'limit' is out of range for integer"
    )


@pytest.mark.parametrize(
    "blob", ["aGVsbG8", "aGVs bG8=", "aGVsbG8=\n", "aGVsbG8==", "aGVsbG-=", "aGVsbG_=", "é"]
)
def test_invalid_base64_is_a_serialization_error(kms: ServiceShapes, blob: str) -> None:
    message = serialization(kms, "Encrypt", {"KeyId": "k", "Plaintext": blob})
    assert message == "Value at 'plaintext' is not valid base64"


@pytest.mark.parametrize("when", ["tomorrow", "2030-13-01T00:00:00Z", ""])
def test_an_unreadable_timestamp_is_a_serialization_error(kms: ServiceShapes, when: str) -> None:
    body = {"KeyId": "k", "ImportToken": "AA==", "EncryptedKeyMaterial": "AA==", "ValidTo": when}
    message = serialization(kms, "ImportKeyMaterial", body)
    assert message == "Value at 'validTo' is not a valid timestamp"


def test_a_type_error_wins_over_validation_errors(kms: ServiceShapes) -> None:
    body = {"KeyId": "", "Plaintext": "", "DryRun": "yes"}
    assert (
        serialization(kms, "Encrypt", body) == "Value at 'dryRun' must be a boolean, not a string"
    )
