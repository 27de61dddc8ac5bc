"""Tests for strongroom.api.shapes: request bodies checked against botocore's service models."""

from __future__ import annotations

import base64
import re
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from botocore.loaders import Loader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.api.shapes import ServiceShapes, java_regex
from strongroom.errors import AwsError

Pair = tuple[Any, Any]  # (value as sent on the wire, value parse_input returns)

KMS_MODEL = Loader().load_service_model("kms", "service-2")
HSM_MODEL = Loader().load_service_model("cloudhsmv2", "service-2")


@pytest.fixture(scope="module")
def kms() -> ServiceShapes:
    return ServiceShapes.load("kms")


@pytest.fixture(scope="module")
def hsm() -> ServiceShapes:
    return ServiceShapes.load("cloudhsmv2")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def error_of(shapes: ServiceShapes, operation: str, body: object) -> AwsError:
    with pytest.raises(AwsError) as caught:
        shapes.parse_input(operation, body)
    return caught.value


def validation(shapes: ServiceShapes, operation: str, body: object) -> str:
    error = error_of(shapes, operation, body)
    assert (error.code, error.status) == ("ValidationException", 400), error.message
    return error.message


def serialization(shapes: ServiceShapes, operation: str, body: object) -> str:
    error = error_of(shapes, operation, body)
    assert (error.code, error.status) == ("SerializationException", 400), error.message
    return error.message


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


# -- cloudhsmv2: the same machinery on another service ---------------------------------------


def test_cloudhsmv2_loads(hsm: ServiceShapes) -> None:
    assert hsm.operations == frozenset(HSM_MODEL["operations"])


def test_cloudhsmv2_create_cluster_round_trip(hsm: ServiceShapes) -> None:
    body = {
        "HsmType": "hsm2m.medium",
        "SubnetIds": ["subnet-0123abcd"],
        "TagList": [{"Key": "Équipe 42", "Value": "crypto/ops"}],
        "BackupRetentionPolicy": {"Type": "DAYS", "Value": "90"},
    }
    assert hsm.parse_input("CreateCluster", msgspec.json.decode(msgspec.json.encode(body))) == body


def test_cloudhsmv2_unicode_property_patterns(hsm: ServiceShapes) -> None:
    body = {"HsmType": "hsm1.medium", "SubnetIds": [], "TagList": [{"Key": "a|b", "Value": ""}]}
    assert validation(hsm, "CreateCluster", body) == (
        "2 validation errors detected: "
        "Value '[]' at 'subnetIds' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1; "
        "Value 'a|b' at 'tagList.1.member.key' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$"
    )


def test_cloudhsmv2_map_keys_and_values(hsm: ServiceShapes) -> None:
    body = {"Filters": {"states": ["READY"], "clusterIds": ["cluster-abcdefghijk"]}}
    assert hsm.parse_input("DescribeBackups", body) == body
    assert validation(hsm, "DescribeBackups", {"Filters": {"bad key": ["x"]}}) == (
        "1 validation error detected: Value 'bad key' at 'filters' failed to satisfy constraint: "
        "Map keys must satisfy constraint: "
        "[Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+]"
    )
    message = serialization(hsm, "DescribeBackups", {"Filters": {"states": "READY"}})
    assert message == "Value at 'filters.states' must be a list, not a string"


# -- generic machinery, on a small synthetic model -------------------------------------------

SYNTHETIC: dict[str, Any] = {
    "metadata": {"protocol": "json"},
    "operations": {
        "Op": {"name": "Op", "input": {"shape": "OpRequest"}},
        "Bare": {"name": "Bare"},
    },
    "shapes": {
        "OpRequest": {
            "type": "structure",
            "required": ["Name"],
            "members": {
                "Name": {"shape": "Name"},
                "Ratio": {"shape": "Ratio"},
                "Big": {"shape": "Big"},
                "Labels": {"shape": "Labels"},
                "Secrets": {"shape": "Secrets"},
                "Node": {"shape": "Node"},
                "Renamed": {"shape": "Name", "locationName": "wireName"},
            },
        },
        "Name": {"type": "string", "min": 1, "max": 8},
        "Ratio": {"type": "double", "min": 0, "max": 1},
        "Big": {"type": "long", "min": 1},
        "Labels": {
            "type": "map",
            "key": {"shape": "LabelKey"},
            "value": {"shape": "Name"},
            "max": 2,
        },
        "LabelKey": {"type": "string", "pattern": "[a-z]+", "max": 3},
        "Secrets": {"type": "list", "member": {"shape": "Secret"}, "max": 1},
        "Secret": {"type": "string", "sensitive": True, "min": 2},
        "Node": {
            "type": "structure",
            "members": {"Child": {"shape": "Node"}, "Name": {"shape": "Name"}},
        },
    },
}


@pytest.fixture(scope="module")
def synthetic() -> ServiceShapes:
    return ServiceShapes.from_model("synthetic", SYNTHETIC)


def only_problem(shapes: ServiceShapes, body: dict[str, Any]) -> str:
    message = validation(shapes, "Op", {"Name": "n", **body})
    prefix = "1 validation error detected: "
    assert message.startswith(prefix), message
    return message.removeprefix(prefix)


def test_recursive_structures(synthetic: ServiceShapes) -> None:
    body = {"Node": {"Child": {"Child": {"Name": "leaf"}}}}
    assert synthetic.parse_input("Op", {"Name": "n", **body}) == {"Name": "n", **body}
    assert only_problem(synthetic, {"Node": {"Child": {"Child": {"Name": ""}}}}) == (
        "Value '' at 'node.child.child.name' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_map_keys_are_reported_at_the_map(synthetic: ServiceShapes) -> None:
    assert only_problem(synthetic, {"Labels": {"ABCD": "x"}}) == (
        "Value 'ABCD' at 'labels' failed to satisfy constraint: Map keys must satisfy "
        "constraint: [Member must have length less than or equal to 3, "
        "Member must satisfy regular expression pattern: [a-z]+]"
    )
    assert only_problem(synthetic, {"Labels": {"a": ""}}) == (
        "Value '' at 'labels.a' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )
    assert only_problem(synthetic, {"Labels": {"a": "x", "b": "x", "c": "x"}}) == (
        "Value '{a=x, b=x, c=x}' at 'labels' failed to satisfy constraint: "
        "Member must have length less than or equal to 2"
    )


def test_sensitive_list_elements_are_not_shown(synthetic: ServiceShapes) -> None:
    message = validation(synthetic, "Op", {"Name": "n", "Secrets": ["x", "yy"]})
    assert message == (
        "2 validation errors detected: "
        "Value at 'secrets' failed to satisfy constraint: "
        "Member must have length less than or equal to 1; "
        "Value at 'secrets.1.member' failed to satisfy constraint: "
        "Member must have length greater than or equal to 2"
    )


def test_doubles_and_longs(synthetic: ServiceShapes) -> None:
    assert synthetic.parse_input("Op", {"Name": "n", "Ratio": 1, "Big": 2**63 - 1})["Big"] > 0
    assert only_problem(synthetic, {"Ratio": 1.5}) == (
        "Value '1.5' at 'ratio' failed to satisfy constraint: "
        "Member must have value less than or equal to 1"
    )
    assert only_problem(synthetic, {"Big": 0}) == (
        "Value '0' at 'big' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )
    assert serialization(synthetic, "Op", {"Name": "n", "Big": 2**63}) == (
        "Value at 'big' is out of range for long"
    )
    assert serialization(synthetic, "Op", {"Name": "n", "Ratio": False}) == (
        "Value at 'ratio' must be a number, not a boolean"
    )


def test_location_names_and_operations_without_input(synthetic: ServiceShapes) -> None:
    parsed = synthetic.parse_input("Op", {"Name": "n", "wireName": "w", "Renamed": "ignored"})
    assert parsed == {"Name": "n", "Renamed": "w"}
    assert synthetic.parse_input("Bare", {"Anything": 1}) == {}
    assert serialization(synthetic, "Bare", []) == "The request body must be a JSON object"


def test_unsupported_shape_types_fail_at_load() -> None:
    model = {
        "operations": {"Op": {"input": {"shape": "In"}}},
        "shapes": {
            "In": {"type": "structure", "members": {"D": {"shape": "Doc"}}},
            "Doc": {"type": "document"},
        },
    }
    with pytest.raises(ValueError, match="unsupported type 'document'"):
        ServiceShapes.from_model("odd", model)


# -- Java patterns ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", [KMS_MODEL, HSM_MODEL], ids=["kms", "cloudhsmv2"])
def test_every_pattern_of_the_models_compiles(model: Mapping[str, Any]) -> None:
    patterns = {s["pattern"] for s in model["shapes"].values() if "pattern" in s}
    assert patterns
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. FutureWarning on "possible nested set"
        for pattern in patterns:
            java_regex.cache_clear()
            java_regex(pattern)


TAG_PATTERN = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"  # cloudhsmv2 TagKey, TagValue


@pytest.mark.parametrize(
    ("pattern", "accepted", "refused"),
    [
        (TAG_PATTERN, ["Équipe 42", "東京", "٣", "a\u3000b", ""], ["a|b", "a\tb"]),
        (r"\p{Lu}+", ["ÀB"], ["àb"]),
        (r"\pN+", ["12"], ["x"]),
        (r"\P{L}+", ["12 !"], ["a"]),
        (r"[\w]+", ["ab_9"], ["é"]),  # \w is ASCII in Java
        (r"\d+", ["12"], ["١٢"]),
        (".*", ["a b"], ["a\nb", "a\rb", "a\u2028b"]),
        (r"[0-9]{12}", ["123456789012"], ["1234567890123", "x123456789012"]),
        (r"\Qa.b\E+", ["a.bbb"], ["axb"]),
        (r"(?<word>[a-z]+)-\k", [], []),
        (r"\x{41}\e?", ["A", "A\x1b"], ["B"]),
        (r"\p{Alpha}\p{IsL}", ["aé"], ["éa"]),
        (r"a\h\v", ["a \n"], ["a\n "]),
        (r"[\u0020-\u00FF]*", ["ÿ"], ["Ā"]),
    ],
)  # fmt: skip
def test_java_regex_translation(pattern: str, accepted: list[str], refused: list[str]) -> None:
    if not accepted:
        with pytest.raises(ValueError, match="unsupported"):
            java_regex(pattern)
        return
    regex = java_regex(pattern)
    for text in accepted:
        assert regex.fullmatch(text), text
    for text in refused:
        assert not regex.fullmatch(text), text


def test_java_named_groups() -> None:
    assert java_regex("(?<year>[0-9]{4})(?<=19[0-9]{2})").fullmatch("1999")


@pytest.mark.parametrize("pattern", ["[a-z&&[^b]]", "[a[b]]", r"\p{IsLatin}", "[a-", r"\R"])
def test_java_regex_constructs_without_an_equivalent_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        java_regex(pattern)


# -- properties ------------------------------------------------------------------------------


def _string(shape: Mapping[str, Any]) -> st.SearchStrategy[str]:
    if "enum" in shape:
        return st.sampled_from(shape["enum"])
    lo, hi = shape.get("min", 0), shape.get("max", 40)
    hi = min(hi, lo + 40)
    pattern = shape.get("pattern")
    if pattern is None:
        return st.text(min_size=lo, max_size=hi)
    regex = java_regex(pattern)
    simple = re.fullmatch(r"\^?(\[[^\]]+\])[+*]\$?", regex.pattern)
    if simple:  # one repeated class: draw the length, then the characters
        alphabet = st.from_regex(re.compile(simple.group(1), regex.flags), fullmatch=True)
        least = lo if regex.pattern.rstrip("$").endswith("*") else max(lo, 1)
        return st.text(alphabet=alphabet, min_size=least, max_size=max(hi, least))
    limit = shape.get("max", float("inf"))  # only the model's own bounds
    return st.from_regex(regex, fullmatch=True).filter(lambda s: lo <= len(s) <= limit)


def _blob(shape: Mapping[str, Any]) -> st.SearchStrategy[Pair]:
    lo = shape.get("min", 0)
    data = st.binary(min_size=lo, max_size=min(shape.get("max", 64), lo + 64))
    return data.map(lambda b: (b64(b), b))


def _timestamp() -> st.SearchStrategy[Pair]:
    seconds = st.integers(min_value=0, max_value=2**33)
    iso = seconds.map(lambda s: (datetime.fromtimestamp(s, UTC).isoformat(), float(s)))
    return st.one_of(seconds.map(lambda s: (s, float(s))), iso)


_PAIRS: dict[tuple[int, str], st.SearchStrategy[Pair]] = {}


def pairs(model: Mapping[str, Any], name: str) -> st.SearchStrategy[Pair]:
    """Valid wire values of shape ``name``, each with the value parse_input should return."""
    key = (id(model), name)  # built once: regex strategies over \p{L} are slow to build
    if key not in _PAIRS:
        _PAIRS[key] = _pairs(model, name)
    return _PAIRS[key]


def _pairs(model: Mapping[str, Any], name: str) -> st.SearchStrategy[Pair]:
    shape = model["shapes"][name]
    kind = shape["type"]
    if kind == "structure":
        required = set(shape.get("required", ()))
        members = {m: pairs(model, ref["shape"]) for m, ref in shape["members"].items()}
        fixed = st.fixed_dictionaries(
            {m: s for m, s in members.items() if m in required},
            optional={m: s for m, s in members.items() if m not in required},
        )
        return fixed.map(
            lambda d: ({k: v[0] for k, v in d.items()}, {k: v[1] for k, v in d.items()})
        )
    if kind in ("list", "map"):
        lo = shape.get("min", 0)
        sizes = {"min_size": lo, "max_size": min(shape.get("max", 3), lo + 3)}
        value = pairs(model, shape["member" if kind == "list" else "value"]["shape"])
        if kind == "list":
            items = st.lists(value, **sizes)
            return items.map(lambda xs: ([x[0] for x in xs], [x[1] for x in xs]))
        keys = _string(model["shapes"][shape["key"]["shape"]])
        entries = st.dictionaries(keys, value, **sizes)
        return entries.map(
            lambda d: ({k: v[0] for k, v in d.items()}, {k: v[1] for k, v in d.items()})
        )
    if kind == "blob":
        return _blob(shape)
    if kind == "timestamp":
        return _timestamp()
    scalar: st.SearchStrategy[Any]
    if kind == "string":
        scalar = _string(shape)
    elif kind == "boolean":
        scalar = st.booleans()
    elif kind in ("integer", "long"):
        bits = 31 if kind == "integer" else 63
        scalar = st.integers(shape.get("min", -(2**bits)), shape.get("max", 2**bits - 1))
    else:
        scalar = st.floats(shape.get("min"), shape.get("max"), allow_nan=False)
    return scalar.map(lambda v: (v, v))


def requests(model: Mapping[str, Any]) -> st.SearchStrategy[tuple[str, Pair]]:
    operations = sorted(op for op, spec in model["operations"].items() if "input" in spec)
    return st.one_of(
        [
            st.tuples(st.just(op), pairs(model, model["operations"][op]["input"]["shape"]))
            for op in operations
        ]
    )


PROPERTY = settings(
    derandomize=True,
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@PROPERTY
@given(request=requests(KMS_MODEL))
def test_valid_kms_requests_parse(kms: ServiceShapes, request: tuple[str, Pair]) -> None:
    operation, (wire, expected) = request
    body = msgspec.json.decode(msgspec.json.encode(wire))
    assert kms.parse_input(operation, body) == expected


@PROPERTY
@given(request=requests(HSM_MODEL))
def test_valid_cloudhsmv2_requests_parse(hsm: ServiceShapes, request: tuple[str, Pair]) -> None:
    operation, (wire, expected) = request
    assert hsm.parse_input(operation, wire) == expected


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@PROPERTY
@given(
    operation=st.sampled_from(sorted(KMS_MODEL["operations"])),
    members=st.dictionaries(
        st.sampled_from(["KeyId", "Plaintext", "Tags", "Limit", "EncryptionContext", "ValidTo"]),
        JSON,
    ),
)
def test_any_json_gets_a_result_or_an_aws_error(
    kms: ServiceShapes, operation: str, members: dict[str, Any]
) -> None:
    try:
        kms.parse_input(operation, members)
    except AwsError as error:
        assert error.code in {"SerializationException", "ValidationException"}
        assert error.status == 400
