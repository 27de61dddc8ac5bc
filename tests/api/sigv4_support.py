"""Shared by the SigV4 verification tests (``tests/api/test_sigv4_*.py``).

Requests are signed by ``botocore.auth.SigV4Auth`` / ``SigV4QueryAuth`` (the signer boto3 uses),
then turned into what an ASGI server hands the verifier (:class:`Req`). Also the verifier under
test, the expected error codes, and byte-flipping helpers for mutation tests.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

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


def presign_with_headers(headers: dict[str, str]) -> Req:
    request = AWSRequest(method="GET", url=ENDPOINT + "/", headers=headers)
    with mock.patch("botocore.auth.get_current_datetime", return_value=SIGNED_AT):
        SigV4QueryAuth(Credentials(AKID, SECRET), "kms", "us-east-1", 60).add_auth(request)
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
