"""SigV4 verification against requests signed by botocore itself.

Every request here is signed by ``botocore.auth.SigV4Auth`` / ``SigV4QueryAuth`` (the signer
boto3 uses), then turned into what an ASGI server hands the verifier. The tests flip single bytes
of every signed part and check each flip is refused with AWS's error code.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from unittest import mock
from urllib.parse import quote, urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.api import sigv4
from strongroom.api.sigv4 import SignedIdentity, Verifier
from strongroom.errors import AwsError

AKID = "AKIDSTRONGROOM0001"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
OTHER_AKID = "AKIDOTHERTENANT77"
OTHER_SECRET = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
SECRETS = {AKID: SECRET, OTHER_AKID: OTHER_SECRET}
TOKEN = "FwoGZXIvYXdzEXAMPLE//sessiontoken=="
ENDPOINT = "https://kms.us-east-1.amazonaws.com"
SIGNED_AT = datetime.datetime(2026, 11, 22, 20, 22, 26)
NOW = SIGNED_AT.replace(tzinfo=datetime.UTC).timestamp()
KMS_HEADERS = {
    "X-Amz-Target": "TrentService.Encrypt",
    "Content-Type": "application/x-amz-json-1.1",
}
KMS_BODY = json.dumps({"KeyId": "alias/app", "Plaintext": "aGVsbG8="}).encode()

INVALID = "InvalidSignatureException"
INCOMPLETE = "IncompleteSignatureException"
UNRECOGNIZED = "UnrecognizedClientException"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
ANY_REFUSAL = {INVALID, INCOMPLETE, UNRECOGNIZED, "AccessDeniedException"}


@dataclass(frozen=True)
class Req:
    """A request as the ASGI adapter passes it to the verifier."""

    method: str
    path: str
    query: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    def header(self, name: bytes) -> bytes:
        return next(value for key, value in self.headers if key == name)

    def with_header(self, name: bytes, value: bytes) -> Req:
        headers = tuple((key, value if key == name else old) for key, old in self.headers)
        return replace(self, headers=headers)

    def without_header(self, name: bytes) -> Req:
        return replace(self, headers=tuple(h for h in self.headers if h[0] != name))

    def adding_header(self, name: bytes, value: bytes) -> Req:
        return replace(self, headers=(*self.headers, (name, value)))


def _as_asgi(request: AWSRequest) -> Req:
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    headers = [
        (name.lower().encode(), value if isinstance(value, bytes) else value.encode("latin-1"))
        for name, value in request.headers.items()  # as signed, repeated names kept
    ]
    body = prepared.body or b""
    body = body.encode() if isinstance(body, str) else body
    # What the HTTP client and botocore add after signing: never signed.
    headers += [
        (b"host", url.netloc.encode()),
        (b"user-agent", b"Boto3/1.40.0 md/Botocore#1.44.5 ua/2.1 os/linux"),
        (b"amz-sdk-invocation-id", b"5b1d1f0e-3c1c-4a57-9d3e-0f1e2d3c4b5a"),
        (b"amz-sdk-request", b"attempt=1; max=3"),
        (b"content-length", str(len(body)).encode()),
    ]
    return Req(prepared.method, url.path, url.query.encode(), tuple(headers), body)


def sign(
    *,
    body: bytes = KMS_BODY,
    headers: dict[str, str] | None = None,
    multi: Iterable[tuple[str, str]] = (),
    token: str | None = None,
    akid: str = AKID,
    secret: str = SECRET,
    at: datetime.datetime = SIGNED_AT,
    service: str = "kms",
    region: str = "us-east-1",
    url: str = ENDPOINT + "/",
    method: str = "POST",
    unsigned_payload: bool = False,
) -> Req:
    """A request signed in the Authorization header by botocore's SigV4Auth."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers or KMS_HEADERS)
    for name, value in multi:
        request.headers[name] = value  # HTTPHeaders appends: a repeated header
    if unsigned_payload:
        request.context["payload_signing_enabled"] = False
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        SigV4Auth(Credentials(akid, secret, token), service, region).add_auth(request)
    return _as_asgi(request)


def presign(
    *,
    url: str = ENDPOINT + "/?Action=ListKeys&Limit=10",
    body: bytes = b"",
    token: str | None = None,
    at: datetime.datetime = SIGNED_AT,
    expires: int = 300,
    method: str = "GET",
) -> Req:
    """A presigned request (query-string authentication) by botocore's SigV4QueryAuth."""
    request = AWSRequest(method=method, url=url, data=body)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        SigV4QueryAuth(Credentials(AKID, SECRET, token), "kms", "us-east-1", expires).add_auth(
            request
        )
    return _as_asgi(request)


VERIFIER = Verifier(SECRETS.get, frozenset({"kms"}))


def verify(req: Req, *, now: float = NOW, verifier: Verifier = VERIFIER) -> SignedIdentity:
    return verifier.verify(req.method, req.path, req.query, req.headers, req.body, now)


def rejected(req: Req, *, now: float = NOW, verifier: Verifier = VERIFIER) -> AwsError:
    with pytest.raises(AwsError) as caught:
        verify(req, now=now, verifier=verifier)
    error = caught.value
    assert error.status in (400, 403)
    assert SECRET not in error.message
    assert OTHER_SECRET not in error.message
    return error


def expect(req: Req, code: str, message: str | None = None, *, now: float = NOW) -> AwsError:
    error = rejected(req, now=now)
    assert error.code == code, error.message
    if message is not None:
        assert error.message == message
    return error


def flip(byte: int) -> int:
    """A different byte that is never whitespace, so canonical forms must differ."""
    char = chr(byte)
    if "0" <= char <= "9":
        return ord(str((int(char) + 1) % 10))
    if "a" <= char <= "z":
        return ord("a") + (byte - ord("a") + 1) % 26
    if "A" <= char <= "Z":
        return ord("A") + (byte - ord("A") + 1) % 26
    return ord("x") if char != "x" else ord("y")


def mutations(data: bytes, positions: Iterable[int] | None = None) -> Iterator[tuple[int, bytes]]:
    for i in range(len(data)) if positions is None else positions:
        yield i, data[:i] + bytes([flip(data[i])]) + data[i + 1 :]


def authorization_span(req: Req, part: str) -> range:
    """Byte positions of one credential-scope element, or of SignedHeaders/Signature values."""
    auth = req.header(b"authorization").decode()
    credential_start = auth.index("Credential=") + len("Credential=")
    elements = ["akid", "date", "region", "service", "terminator"]
    if part in elements:
        scope = auth[credential_start : auth.index(",", credential_start)].split("/")
        start = credential_start + sum(len(e) + 1 for e in scope[: elements.index(part)])
        return range(start, start + len(scope[elements.index(part)]))
    start = auth.index(part + "=") + len(part) + 1
    end = auth.find(",", start)
    return range(start, len(auth) if end < 0 else end)


def with_authorization(req: Req, old: str, new: str) -> Req:
    auth = req.header(b"authorization").decode()
    assert old in auth
    return req.with_header(b"authorization", auth.replace(old, new).encode())


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


# --- property: botocore-signed requests verify; no single signed-byte flip does ---------------

_header_names = st.from_regex(r"x-[a-z0-9][a-z0-9-]{0,12}", fullmatch=True).filter(
    lambda n: n not in {"x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}
)
_header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"), max_size=40
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=300),
    extra=st.dictionaries(_header_names, _header_values, max_size=4),
    token=st.none() | st.text(alphabet="abcdefABCDEF0123456789/+=", min_size=1, max_size=30),
    data=st.data(),
)
def test_property_signed_requests_verify_and_flips_never_do(
    body: bytes, extra: dict[str, str], token: str | None, data: st.DataObject
) -> None:
    req = sign(body=body, headers={**KMS_HEADERS, **extra}, token=token)
    assert verify(req) == SignedIdentity(AKID, "us-east-1", "kms", token)

    signed = req.header(b"authorization").split(b"SignedHeaders=")[1].split(b",")[0].split(b";")
    targets: list[tuple[str, bytes, int]] = [("method", b"", i) for i in range(len(req.method))]
    targets += [("path", b"", i) for i in range(len(req.path))]
    targets += [("body", b"", i) for i in range(len(req.body))]
    targets += [("header", name, i) for name in signed for i in range(len(req.header(name)))]
    targets += [("header", b"authorization", i) for i in range(len(req.header(b"authorization")))]
    kind, name, i = data.draw(st.sampled_from(targets))
    if kind == "method":
        mutated = replace(req, method=dict(mutations(req.method.encode(), [i]))[i].decode())
    elif kind == "path":
        mutated = replace(req, path=dict(mutations(req.path.encode(), [i]))[i].decode())
    elif kind == "body":
        mutated = replace(req, body=dict(mutations(req.body, [i]))[i])
    else:
        mutated = req.with_header(name, dict(mutations(req.header(name), [i]))[i])
    assert rejected(mutated).code in ANY_REFUSAL


_segments = st.lists(
    st.text(alphabet="abcXYZ019-_.~ ", min_size=1, max_size=8).filter(
        lambda s: s not in {".", ".."}
    ),
    max_size=4,
)
_params = st.lists(
    st.tuples(
        st.text(alphabet="abcXYZ019-_.~/+=& %", min_size=1, max_size=6),
        st.text(max_size=10),
    ),
    max_size=4,
)


def _url(segments: list[str], params: list[tuple[str, str]]) -> str:
    path = "/" + "/".join(quote(segment, safe="~") for segment in segments)
    query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in params)
    return ENDPOINT + path + ("?" + query if query else "")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segments=_segments, params=_params, presigned=st.booleans(), data=st.data())
def test_property_paths_and_queries(
    segments: list[str], params: list[tuple[str, str]], presigned: bool, data: st.DataObject
) -> None:
    if presigned:
        req = presign(url=_url(segments, [(k, v) for k, v in params if not k.startswith("X-")]))
    else:
        req = sign(url=_url(segments, params))
    assert verify(req).access_key_id == AKID
    targets = [("path", i) for i in range(len(req.path))]
    targets += [("query", i) for i in range(len(req.query))]
    kind, i = data.draw(st.sampled_from(targets))
    if kind == "path":
        mutated = replace(req, path=dict(mutations(req.path.encode(), [i]))[i].decode())
    else:
        mutated = replace(req, query=dict(mutations(req.query, [i]))[i])
    assert rejected(mutated).code in ANY_REFUSAL


def test_presigned_token_in_a_header_must_be_signed() -> None:
    signed = presign_with_headers({"X-Amz-Security-Token": TOKEN})
    assert verify(signed).session_token == TOKEN
    unsigned = presign().adding_header(b"x-amz-security-token", TOKEN.encode())
    expect(
        unsigned,
        INCOMPLETE,
        "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
    )


def presign_with_headers(headers: dict[str, str]) -> Req:
    request = AWSRequest(method="GET", url=ENDPOINT + "/", headers=headers)
    with mock.patch("botocore.auth.get_current_datetime", return_value=SIGNED_AT):
        SigV4QueryAuth(Credentials(AKID, SECRET), "kms", "us-east-1", 60).add_auth(request)
    return _as_asgi(request)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=60), st.binary(max_size=600))
def test_the_keyed_hmac_states_give_hmac_sha256(secret: str, message: bytes) -> None:
    key = ("AWS4" + secret).encode()
    for part in ("20261123", "us-east-1", "kms", "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    keyed = sigv4._derive_signing_key(secret, "20261123", "us-east-1", "kms")
    assert sigv4._hmac_hex(keyed, message) == hmac.digest(key, message, "sha256").hex()
    assert sigv4._hmac_hex(keyed, message) == sigv4._hmac_hex(keyed, message)  # states unspent
