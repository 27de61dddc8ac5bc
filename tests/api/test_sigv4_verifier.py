"""SigV4 verification: what the verifier checks besides the signature.

Clock skew (the 300-second window and AWS's messages), the accepted services, missing and
malformed authentication, unknown access keys and wrong secrets, the payload hash header, and the
signing-key cache (secrets, rotation, date, region and service kept apart).

Every request is signed by botocore itself (``tests.api.sigv4_support``), then handed to the
verifier as an ASGI server would.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import replace

import pytest

from strongroom.api.sigv4 import Verifier
from tests.api.sigv4_support import (
    AKID,
    INCOMPLETE,
    INVALID,
    KMS_BODY,
    KMS_HEADERS,
    MISMATCH,
    NOW,
    OTHER_AKID,
    OTHER_SECRET,
    SECRET,
    SECRETS,
    SIGNED_AT,
    TOKEN,
    UNRECOGNIZED,
    expect,
    rejected,
    sign,
    verify,
    with_authorization,
)

# --- clock skew --------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-300, -299.5, 0, 299.9, 300])
def test_skew_inside_the_window(offset: float) -> None:
    assert verify(sign(), now=NOW + offset).access_key_id == AKID


def test_skew_301_seconds_late_is_expired() -> None:
    expect(
        sign(),
        INVALID,
        "Signature expired: 20261122T202226Z is now earlier than 20261122T202227Z "
        "(20261122T202727Z - 5 min.)",
        now=NOW + 301,
    )


def test_skew_301_seconds_early_is_not_yet_current() -> None:
    expect(
        sign(),
        INVALID,
        "Signature not yet current: 20261122T202226Z is still later than 20261122T202225Z "
        "(20261122T201725Z + 5 min.)",
        now=NOW - 301,
    )


def test_skew_messages_match_aws_examples() -> None:
    expect(
        sign(at=datetime.datetime(2026, 11, 22, 20, 7, 26)),
        INVALID,
        "Signature expired: 20261122T200726Z is now earlier than 20261122T201726Z "
        "(20261122T202226Z - 5 min.)",
    )
    expect(
        sign(at=datetime.datetime(2026, 11, 22, 20, 37, 26)),
        INVALID,
        "Signature not yet current: 20261122T203726Z is still later than 20261122T202726Z "
        "(20261122T202226Z + 5 min.)",
    )


def test_custom_skew() -> None:
    verifier = Verifier(SECRETS.get, frozenset({"kms"}), max_skew_seconds=60)
    assert verify(sign(), now=NOW + 60, verifier=verifier).access_key_id == AKID
    error = rejected(sign(), now=NOW + 61, verifier=verifier)
    assert error.message.endswith("(20261122T202327Z - 1 min.)")


# --- services ----------------------------------------------------------------------------------


def test_other_accepted_services_are_returned() -> None:
    verifier = Verifier(SECRETS.get, frozenset({"kms", "cloudhsm", "sts"}))
    assert verify(sign(service="sts"), verifier=verifier).service == "sts"
    assert verify(sign(service="cloudhsm"), verifier=verifier).service == "cloudhsm"
    error = rejected(sign(service="s3"), verifier=verifier)
    assert (error.code, error.message) == (
        INVALID,
        "Credential should be scoped to correct service: 'cloudhsm'. ",
    )


def test_services_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="services"):
        Verifier(SECRETS.get, frozenset())


# --- missing and malformed authentication ------------------------------------------------------


def test_no_authentication_at_all() -> None:
    req = sign().without_header(b"authorization")
    expect(req, "MissingAuthenticationTokenException", "Missing Authentication Token")
    expect(req.adding_header(b"authorization", b"  "), "MissingAuthenticationTokenException")
    expect(replace(req, query=b"Action=ListKeys"), "MissingAuthenticationTokenException")


@pytest.mark.parametrize("missing", ["Credential", "SignedHeaders", "Signature"])
def test_authorization_missing_a_parameter(missing: str) -> None:
    req = sign()
    auth = req.header(b"authorization").decode()
    signature = auth.split("Signature=")[1]
    kept = [p for p in auth.split(" ", 1)[1].split(", ") if not p.startswith(missing + "=")]
    broken = "AWS4-HMAC-SHA256 " + ", ".join(kept)
    error = expect(req.with_header(b"authorization", broken.encode()), INCOMPLETE)
    assert error.message.startswith(f"Authorization header requires '{missing}' parameter. ")
    assert "Authorization=AWS4-HMAC-SHA256 Credential=" in error.message or missing == "Credential"
    assert signature not in error.message


def test_authorization_malformed() -> None:
    req = sign()
    auth = req.header(b"authorization").decode()
    signature = auth.split("Signature=")[1]
    cases = {
        auth.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"): "Unsupported AWS 'algorithm'",
        auth.replace("/aws4_request", ""): "Credential must have exactly 5 slash-delimited",
        auth + ", Garbage": "'Garbage' not a valid key=value pair (missing equal-sign)",
        auth + ", Signature=00": "duplicate 'Signature'",
        "Bearer abc": "Unsupported AWS 'algorithm': 'Bearer'",
    }
    for header, fragment in cases.items():
        error = expect(req.with_header(b"authorization", header.encode()), INCOMPLETE)
        assert fragment in error.message
        assert signature not in error.message


def test_missing_or_unparseable_date() -> None:
    req = sign()
    error = expect(req.without_header(b"x-amz-date"), INCOMPLETE)
    assert "requires existence of either a 'X-Amz-Date' or a 'Date' header" in error.message
    error = expect(req.with_header(b"x-amz-date", b"2026-11-22T20:22:26Z"), INCOMPLETE)
    assert error.message.startswith("Date must be in ISO-8601 'basic format'. Got '2026-11")
    expect(req.with_header(b"x-amz-date", b"20261322T202226Z"), INCOMPLETE)
    expect(req.adding_header(b"x-amz-date", b"20261122T202226Z"), INCOMPLETE)
    dated = sign(headers={**KMS_HEADERS, "Date": "x"})
    expect(dated.with_header(b"date", b"not a date"), INCOMPLETE)


def test_host_must_be_signed() -> None:
    req = with_authorization(sign(), "content-type;host;", "content-type;")
    expect(
        req, INCOMPLETE, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    )


def test_security_token_header_must_be_signed() -> None:
    req = with_authorization(sign(token=TOKEN), ";x-amz-security-token", "")
    expect(req, INCOMPLETE)


def test_unknown_access_key() -> None:
    expect(
        sign(akid="AKIDUNKNOWN"),
        UNRECOGNIZED,
        "The security token included in the request is invalid.",
    )


def test_wrong_secret() -> None:
    expect(sign(secret=OTHER_SECRET), INVALID, MISMATCH)


# --- payload hash header -------------------------------------------------------------------


def test_content_sha256_header_matching_body() -> None:
    digest = hashlib.sha256(KMS_BODY).hexdigest()
    req = sign(headers={**KMS_HEADERS, "X-Amz-Content-SHA256": digest})
    assert verify(req).access_key_id == AKID
    error = expect(replace(req, body=KMS_BODY + b" "), "XAmzContentSHA256Mismatch")
    assert error.message == (
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    )
    expect(req.with_header(b"x-amz-content-sha256", digest.upper().encode()), INCOMPLETE)


def test_unsigned_payload_allowed() -> None:
    req = sign(unsigned_payload=True)
    assert req.header(b"x-amz-content-sha256") == b"UNSIGNED-PAYLOAD"
    assert verify(req).access_key_id == AKID
    assert verify(replace(req, body=b"{}")).access_key_id == AKID  # body is not signed
    expect(req.with_header(b"x-amz-content-sha256", b"UNSIGNED-PAYLOAE"), INCOMPLETE)


# --- signing-key cache -------------------------------------------------------------------------


@pytest.mark.parametrize("cache_size", [0, 1, 1024])
def test_cache_keeps_secrets_apart(cache_size: int) -> None:
    verifier = Verifier(SECRETS.get, frozenset({"kms"}), cache_size=cache_size)
    mine, theirs = sign(), sign(akid=OTHER_AKID, secret=OTHER_SECRET)
    forged = sign(akid=OTHER_AKID, secret=SECRET)
    for _ in range(3):
        assert verify(mine, verifier=verifier).access_key_id == AKID
        assert verify(theirs, verifier=verifier).access_key_id == OTHER_AKID
        assert rejected(forged, verifier=verifier).code == INVALID


def test_cache_follows_a_rotated_secret() -> None:
    secrets = dict(SECRETS)
    verifier = Verifier(secrets.get, frozenset({"kms"}))
    old = sign()
    assert verify(old, verifier=verifier).access_key_id == AKID
    secrets[AKID] = "rotated/secret"
    assert rejected(old, verifier=verifier).code == INVALID
    assert verify(sign(secret="rotated/secret"), verifier=verifier).access_key_id == AKID


def test_cache_distinguishes_date_region_and_service() -> None:
    verifier = Verifier(SECRETS.get, frozenset({"kms", "sts"}), cache_size=4)
    day = datetime.timedelta(days=1)
    cases = [
        (sign(), NOW),
        (sign(at=SIGNED_AT - day), NOW - 86400),
        (sign(region="eu-west-1"), NOW),
        (sign(service="sts"), NOW),
    ]
    for _ in range(2):
        for req, now in cases:
            assert verify(req, now=now, verifier=verifier).access_key_id == AKID


@pytest.mark.parametrize("space", [b"\xa0", b"\x85", b"\x1c", b"\x1f"])
def test_only_ascii_white_space_is_trimmed_from_signed_values(space: bytes) -> None:
    """Found by scripts/fuzz_atheris.py: white space Python's str.split() knows but SigV4's
    trimall does not could be added to a signed header's value and the request still verify."""
    req = sign()
    target = req.header(b"x-amz-target")
    expect(req.with_header(b"x-amz-target", space + target), "InvalidSignatureException")
    expect(req.with_header(b"x-amz-target", target + space), "InvalidSignatureException")
    assert verify(req.with_header(b"x-amz-target", b" \t " + target + b"  \t"))
