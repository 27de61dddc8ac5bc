"""SigV4 verification: botocore-signed requests verify, and no signed byte can change.

Flips single bytes of every signed part (headers, date, body, method, path, query, signature,
credential scope) and checks each flip is refused with AWS's error code; unsigned headers may
change freely, repeated headers join with commas and header whitespace is trimmed and collapsed.

Every request is signed by botocore itself (``tests.api.sigv4_support``), then handed to the
verifier as an ASGI server would.
"""

from __future__ import annotations

import datetime
from dataclasses import replace

import pytest

from strongroom.api.sigv4 import SignedIdentity
from tests.api.sigv4_support import (
    AKID,
    ENDPOINT,
    INCOMPLETE,
    INVALID,
    KMS_HEADERS,
    MISMATCH,
    NOW,
    TOKEN,
    UNRECOGNIZED,
    authorization_span,
    expect,
    mutations,
    rejected,
    sign,
    verify,
    with_authorization,
)

# --- botocore-signed requests verify ---------------------------------------------------------


@pytest.mark.parametrize("token", [None, TOKEN])
def test_botocore_signed_kms_request_verifies(token: str | None) -> None:
    req = sign(token=token)
    assert verify(req) == SignedIdentity(AKID, "us-east-1", "kms", token)


def test_signed_headers_are_the_ones_botocore_uses_for_kms() -> None:
    auth = sign(token=TOKEN).header(b"authorization").decode()
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target" in auth


def test_endpoint_with_port_and_other_region() -> None:
    req = sign(url="http://127.0.0.1:8443/", region="eu-west-3")
    assert req.header(b"host") == b"127.0.0.1:8443"
    assert verify(req).region == "eu-west-3"


def test_empty_body_and_get() -> None:
    assert verify(sign(body=b"", method="GET")).access_key_id == AKID


def test_date_header_instead_of_x_amz_date() -> None:
    req = sign(headers={**KMS_HEADERS, "Date": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert req.header(b"date") == b"Sun, 22 Nov 2026 20:22:26 -0000"
    assert all(name != b"x-amz-date" for name, _ in req.headers)
    assert verify(req).access_key_id == AKID
    expect(req.with_header(b"date", b"Sun, 22 Nov 2026 20:22:27 -0000"), INVALID, MISMATCH)


def test_encoded_path_and_query_verify() -> None:
    req = sign(url=ENDPOINT + "/keys/a%2Fb/some%20thing/x~y?b=2&a=%2F&a=1&empty=&flag")
    assert verify(req).service == "kms"
    expect(replace(req, path=req.path.replace("%2F", "%2f")), INVALID, MISMATCH)
    expect(replace(req, query=req.query.replace(b"a=1", b"a=2")), INVALID, MISMATCH)


def test_dot_segments_are_normalised_like_botocore() -> None:
    req = sign(url=ENDPOINT + "/a/./b/../c//d")
    assert req.path == "/a/./b/../c//d"
    assert verify(req).access_key_id == AKID


# --- single-byte mutations of every signed part ---------------------------------------------


@pytest.mark.parametrize(
    "name", [b"content-type", b"host", b"x-amz-target", b"x-amz-security-token"]
)
def test_every_byte_of_each_signed_header_value(name: bytes) -> None:
    req = sign(token=TOKEN)
    for i, value in mutations(req.header(name)):
        error = rejected(req.with_header(name, value))
        assert (error.code, error.message) == (INVALID, MISMATCH), (name, i)


def test_every_byte_of_x_amz_date() -> None:
    req = sign()
    for i, value in mutations(req.header(b"x-amz-date")):
        assert rejected(req.with_header(b"x-amz-date", value)).code in {INVALID, INCOMPLETE}, i
    # A date still inside the window and the scope: only the signature can catch it.
    expect(req.with_header(b"x-amz-date", b"20261122T202227Z"), INVALID, MISMATCH)


def test_every_byte_of_a_short_body() -> None:
    req = sign()
    for i, body in mutations(req.body):
        expect(replace(req, body=body), INVALID, MISMATCH)
        assert i < len(req.body)
    expect(replace(req, body=req.body[:-1]), INVALID, MISMATCH)
    expect(replace(req, body=req.body + b" "), INVALID, MISMATCH)


def test_sampled_bytes_of_a_long_body() -> None:
    body = bytes(range(256)) * 16
    req = sign(body=body)
    assert verify(req).access_key_id == AKID
    for _, mutated in mutations(body, range(0, len(body), 61)):
        expect(replace(req, body=mutated), INVALID, MISMATCH)


def test_every_byte_of_the_method_and_path() -> None:
    req = sign(url=ENDPOINT + "/v1/keys")
    for _, method in mutations(req.method.encode()):
        expect(replace(req, method=method.decode()), INVALID, MISMATCH)
    for _, path in mutations(req.path.encode()):
        expect(replace(req, path=path.decode()), INVALID, MISMATCH)
    expect(replace(sign(), path="/x"), INVALID, MISMATCH)


def test_every_byte_of_the_query_and_added_query() -> None:
    req = sign(url=ENDPOINT + "/?Marker=abc%2Fdef&Limit=10")
    for _, query in mutations(req.query):
        expect(replace(req, query=query), INVALID, MISMATCH)
    expect(replace(sign(), query=b"Limit=1"), INVALID, MISMATCH)


def test_every_hex_digit_of_the_signature() -> None:
    req = sign()
    auth = req.header(b"authorization")
    span = authorization_span(req, "Signature")
    assert len(span) == 64
    for _, mutated in mutations(auth, span):
        expect(req.with_header(b"authorization", mutated), INVALID, MISMATCH)
    expect(req.with_header(b"authorization", auth[:-1]), INVALID, MISMATCH)
    expect(req.with_header(b"authorization", auth + b"0"), INVALID, MISMATCH)


@pytest.mark.parametrize(
    ("part", "code", "message"),
    [
        ("akid", UNRECOGNIZED, "The security token included in the request is invalid."),
        ("region", INVALID, MISMATCH),
        ("service", INVALID, "Credential should be scoped to correct service: 'kms'. "),
        ("SignedHeaders", None, None),
    ],
)
def test_every_byte_of_the_credential_and_signed_headers(
    part: str, code: str | None, message: str | None
) -> None:
    req = sign(token=TOKEN)
    auth = req.header(b"authorization")
    for i, mutated in mutations(auth, authorization_span(req, part)):
        error = rejected(req.with_header(b"authorization", mutated))
        if code is None:
            assert error.code in {INVALID, INCOMPLETE}, (i, error.message)
        else:
            assert (error.code, error.message) == (code, message), i


def test_every_byte_of_the_credential_date() -> None:
    req = sign(at=datetime.datetime(2026, 11, 22, 20, 7, 26))
    auth = req.header(b"authorization")
    for _, mutated in mutations(auth, authorization_span(req, "date")):
        scope_date = mutated.split(b"/")[1].decode()
        expect(
            req.with_header(b"authorization", mutated),
            INVALID,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
            f"HTTP: '{scope_date}' != '20261122', from '20261122T200726Z'.",
            now=NOW - 900,
        )


def test_scope_date_message_matches_aws() -> None:
    req = with_authorization(
        sign(at=datetime.datetime(2026, 11, 22, 20, 7, 26)), "/20261122/", "/20261121/"
    )
    expect(
        req,
        INVALID,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20261121' != '20261122', from '20261122T200726Z'.",
        now=NOW - 900,
    )


def test_every_byte_of_the_terminator() -> None:
    req = sign()
    for _, mutated in mutations(
        req.header(b"authorization"), authorization_span(req, "terminator")
    ):
        terminator = mutated.split(b"/")[4].split(b",")[0].decode()
        expect(
            req.with_header(b"authorization", mutated),
            INVALID,
            "Credential should be scoped with a valid terminator: 'aws4_request', "
            f"not '{terminator}'.",
        )


# --- unsigned headers, repeated headers, whitespace ------------------------------------------


def test_unsigned_headers_may_change_freely() -> None:
    req = sign(token=TOKEN)
    for name in (b"user-agent", b"amz-sdk-invocation-id", b"amz-sdk-request", b"content-length"):
        for _, value in mutations(req.header(name)):
            assert verify(req.with_header(name, value)).session_token == TOKEN
        assert verify(req.without_header(name)).access_key_id == AKID
    assert verify(req.adding_header(b"x-forwarded-for", b"10.0.0.1")).access_key_id == AKID


def test_repeated_headers_join_with_commas_in_order() -> None:
    req = sign(multi=[("X-Custom", "first"), ("X-Custom", "  second  value ")])
    assert [v for k, v in req.headers if k == b"x-custom"] == [b"first", b"  second  value "]
    assert verify(req).access_key_id == AKID
    joined = req.without_header(b"x-custom").adding_header(b"x-custom", b"first,second value")
    assert verify(joined).access_key_id == AKID
    swapped = req.without_header(b"x-custom")
    swapped = swapped.adding_header(b"x-custom", b"second value").adding_header(
        b"x-custom", b"first"
    )
    expect(swapped, INVALID, MISMATCH)
    expect(req.without_header(b"x-custom").adding_header(b"x-custom", b"first"), INVALID, MISMATCH)


def test_header_whitespace_is_trimmed_and_collapsed() -> None:
    req = sign(headers={**KMS_HEADERS, "X-Spaced": "  a   b \t c  "})
    assert verify(req.with_header(b"x-spaced", b"a b c")).access_key_id == AKID
    assert verify(req.with_header(b"x-spaced", b"\ta\t\tb  c")).access_key_id == AKID
    expect(req.with_header(b"x-spaced", b"a bc"), INVALID, MISMATCH)
    # the same again past the length up to which canonical lines are cached
    long = "  " + "w  x " * 200 + " "
    req = sign(headers={**KMS_HEADERS, "X-Spaced": long})
    assert verify(req.with_header(b"x-spaced", (" ".join(long.split())).encode())).region
    expect(req.with_header(b"x-spaced", long.replace("x", "y", 1).encode()), INVALID, MISMATCH)


def test_signed_header_missing_from_request() -> None:
    expect(sign().without_header(b"x-amz-target"), INVALID, MISMATCH)
