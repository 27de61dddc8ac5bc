"""Tests for strongroom.api.shapes: the same machinery on other models, and Java patterns.

CloudHSM v2 requests (Unicode property patterns, map keys and values); the generic machinery on a
small synthetic model (recursion, maps, sensitive lists, doubles and longs, location names,
unsupported shape types); the translation of the models' Java regular expressions.

Request bodies are checked against botocore's service models (``tests.api.shapes_support``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import msgspec
import pytest

from strongroom.api.shapes import ServiceShapes, java_regex
from tests.api.shapes_support import HSM_MODEL, KMS_MODEL, serialization, validation


@pytest.fixture(scope="module")
def hsm() -> ServiceShapes:
    return ServiceShapes.load("cloudhsmv2")


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
