"""SigV4 verification of presigned (query-string) requests.

Presigned requests verify (with or without a session token, a POST body moved into the query),
every byte of a presigned query is signed, and expiry and malformed presigned queries are refused
with AWS's error codes.

Every request is signed by botocore itself (``tests.api.sigv4_support``), then handed to the
verifier as an ASGI server would.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from strongroom.api.sigv4 import SignedIdentity
from tests.api.sigv4_support import (
    AKID,
    ANY_REFUSAL,
    INCOMPLETE,
    INVALID,
    KMS_BODY,
    MISMATCH,
    NOW,
    TOKEN,
    expect,
    mutations,
    presign,
    rejected,
    sign,
    verify,
)

# --- presigned (query-string) requests ---------------------------------------------------------


@pytest.mark.parametrize("token", [None, TOKEN])
def test_presigned_request_verifies(token: str | None) -> None:
    req = presign(token=token)
    assert b"X-Amz-Signature=" in req.query
    assert verify(req) == SignedIdentity(AKID, "us-east-1", "kms", token)


def test_presigned_post_moves_the_json_body_into_the_query() -> None:
    req = presign(method="POST", body=KMS_BODY)
    assert req.body == b""
    assert b"KeyId=alias%2Fapp" in req.query
    assert verify(req).access_key_id == AKID


def test_every_byte_of_a_presigned_query() -> None:
    req = presign(token=TOKEN)
    for i, query in mutations(req.query):
        assert rejected(replace(req, query=query)).code in ANY_REFUSAL, i
    for _, path in mutations(req.path.encode()):
        expect(replace(req, path=path.decode()), INVALID, MISMATCH)
    expect(replace(req, method="POST"), INVALID, MISMATCH)
    expect(replace(req, body=b"x"), INVALID, MISMATCH)
    expect(req.with_header(b"host", b"kms.us-east-2.amazonaws.com"), INVALID, MISMATCH)


def test_presigned_expiry() -> None:
    req = presign(expires=60)
    assert verify(req, now=NOW + 60).access_key_id == AKID
    expect(req, "AccessDeniedException", "Request has expired", now=NOW + 61)
    expect(req, INVALID, now=NOW - 301)
    assert verify(req, now=NOW - 300).access_key_id == AKID


def test_presigned_malformed() -> None:
    req = presign()
    expect(replace(req, query=req.query.split(b"&X-Amz-Signature=")[0]), INCOMPLETE)
    expect(replace(req, query=req.query + b"&X-Amz-Signature=00"), INCOMPLETE)
    algorithm = req.query.replace(b"AWS4-HMAC-SHA256", b"AWS4-HMAC-SHA512")
    error = expect(replace(req, query=algorithm), INCOMPLETE)
    assert error.message == 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"'
    mixed = req.adding_header(b"authorization", sign().header(b"authorization"))
    assert "Only one auth mechanism" in expect(mixed, INCOMPLETE).message
    too_long = presign(expires=604_801)
    assert "less than a week" in expect(too_long, INCOMPLETE).message
