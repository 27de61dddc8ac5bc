"""Tests for strongroom.api.shapes, property-based (hypothesis).

Valid requests generated from the KMS and CloudHSM v2 models parse to the values expected, and any
JSON gets a result or an AWS error (SerializationException or ValidationException).

Request bodies are checked against botocore's service models (``tests.api.shapes_support``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.api.shapes import ServiceShapes, java_regex
from strongroom.errors import AwsError
from tests.api.shapes_support import HSM_MODEL, KMS_MODEL, b64


@pytest.fixture(scope="module")
def kms() -> ServiceShapes:
    return ServiceShapes.load("kms")


@pytest.fixture(scope="module")
def hsm() -> ServiceShapes:
    return ServiceShapes.load("cloudhsmv2")


# -- properties ------------------------------------------------------------------------------


Pair = tuple[Any, Any]  # (value as sent on the wire, value parse_input returns)


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
