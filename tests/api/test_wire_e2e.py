"""The JSON 1.1 + SigV4 edge of a real server: errors are AWS-shaped, never a 500."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Server, error_code
from tests.signing import post, sign


def _call(server: Server, target: str, body: bytes, **kw: Any) -> tuple[int, dict[str, Any]]:
    akid, secret = server.credentials()
    headers = sign(
        body,
        target,
        kw.pop("akid", akid),
        kw.pop("secret", secret),
        host=f"127.0.0.1:{server.port}",
        **kw,
    )
    status, resp_headers, raw = post(server.port, body, headers)
    assert resp_headers["content-type"] == "application/x-amz-json-1.1"
    assert resp_headers.get("x-amzn-requestid")
    return status, json.loads(raw) if raw else {}


def test_success_shape(server: Server) -> None:
    status, body = _call(server, "TrentService.CreateKey", b"{}")
    assert status == 200
    assert body["KeyMetadata"]["KeyState"] == "Enabled"
    assert isinstance(body["KeyMetadata"]["CreationDate"], float)


@pytest.mark.parametrize(
    ("target", "body", "code"),
    [
        ("TrentService.NoSuchThing", b"{}", "UnknownOperationException"),
        ("", b"{}", "UnknownOperationException"),
        ("OtherService.CreateKey", b"{}", "UnknownOperationException"),
        ("TrentService.CreateKey", b"{not json", "SerializationException"),
        ("TrentService.CreateKey", b"[1, 2]", "SerializationException"),
        ("TrentService.DescribeKey", b'{"KeyId": 5}', "SerializationException"),
        ("TrentService.GenerateRandom", b'{"NumberOfBytes": "8"}', "SerializationException"),
        (
            "TrentService.Encrypt",
            b'{"KeyId": "alias/x", "Plaintext": "***"}',
            "SerializationException",
        ),
        ("TrentService.DescribeKey", b"{}", "ValidationException"),
    ],
)
def test_protocol_errors(server: Server, target: str, body: bytes, code: str) -> None:
    status, out = _call(server, target, body)
    assert status == 400
    assert out["__type"] == code
    assert out["message"]


def test_missing_member_wording(server: Server) -> None:
    _, out = _call(server, "TrentService.DescribeKey", b"{}")
    assert out["message"] == (
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_unknown_access_key(server: Server) -> None:
    status, out = _call(server, "TrentService.ListKeys", b"{}", akid="AKIAUNKNOWNUNKNOWN00")
    assert (status, out["__type"]) == (400, "UnrecognizedClientException")
    assert out["message"] == "The security token included in the request is invalid."


def test_wrong_secret(server: Server) -> None:
    status, out = _call(server, "TrentService.ListKeys", b"{}", secret="x" * 40)
    assert (status, out["__type"]) == (400, "InvalidSignatureException")


@pytest.mark.parametrize(
    ("shift", "text"), [(-301, "Signature expired"), (301, "Signature not yet current")]
)
def test_clock_skew(server: Server, shift: int, text: str) -> None:
    status, out = _call(server, "TrentService.ListKeys", b"{}", when=time.time() + shift)
    assert (status, out["__type"]) == (400, "InvalidSignatureException")
    assert out["message"].startswith(text)
    # 299 s either way is inside the window
    status, out = _call(
        server, "TrentService.ListKeys", b"{}", when=time.time() + shift // 301 * 299
    )
    assert status == 200 and "Keys" in out


def test_scope_service_must_be_kms(server: Server) -> None:
    status, out = _call(server, "TrentService.ListKeys", b"{}", service="s3")
    assert (status, out["__type"]) == (400, "InvalidSignatureException")
    assert "scoped to correct service" in out["message"]


def test_missing_authorization(server: Server) -> None:
    status, _, raw = post(server.port, b"{}", {"x-amz-target": "TrentService.ListKeys"})
    assert status == 400
    assert json.loads(raw)["__type"] == "MissingAuthenticationTokenException"


def test_session_token_without_sts_is_rejected(server: Server) -> None:
    _, out = _call(
        server, "TrentService.ListKeys", b"{}", extra_headers={"X-Amz-Security-Token": "tok"}
    )
    assert out["__type"] == "UnrecognizedClientException"


def test_boto3_with_bad_secret(server: Server) -> None:
    akid, _ = server.credentials()
    client = server.client(akid=akid, secret="wrong" * 8)
    with pytest.raises(ClientError) as exc:
        client.list_keys()
    assert error_code(exc) == "InvalidSignatureException"


def _read_reply(sock: socket.socket) -> bytes:
    reply = b""
    while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < _length(reply):
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply


def _length(reply: bytes) -> int:
    for line in reply.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def test_oversize_body_refused_without_reading(server: Server) -> None:
    """A declared 10 MiB body is answered 413 before the client has sent it."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: TrentService.Encrypt\r\nContent-Length: 10485760\r\n\r\n" + b"{" * 1000
        )
        reply = _read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"RequestEntityTooLargeException" in reply


def test_oversize_chunked_body_refused(server: Server) -> None:
    chunk = b"x" * 8192
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"X-Amz-Target: TrentService.Encrypt\r\n\r\n"
        )
        for _ in range(10):
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        reply = _read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 413")


def test_get_is_not_served(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /foo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        reply = _read_reply(sock)
    assert reply.split(b" ")[1] in (b"404", b"405")
    assert b"__type" in reply


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.text(max_size=30)
    | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
_ops = st.sampled_from(
    [
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "CreateKey",
        "DescribeKey",
        "ListKeys",
        "CreateAlias",
        "TagResource",
        "ScheduleKeyDeletion",
        "ListAliases",
        "GenerateRandom",
        "PutKeyPolicy",
        "UpdateAlias",
        "ListResourceTags",
        "CreateGrant",
    ]
)
_members = st.sampled_from(
    [
        "KeyId",
        "Plaintext",
        "CiphertextBlob",
        "EncryptionContext",
        "Tags",
        "Limit",
        "Marker",
        "AliasName",
        "TargetKeyId",
        "NumberOfBytes",
        "KeySpec",
        "Policy",
        "PendingWindowInDays",
        "DestinationKeyId",
        "Description",
        "GrantTokens",
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(op=_ops, body=st.dictionaries(_members, _json, max_size=5))
def test_fuzzed_bodies_never_500(server: Server, op: str, body: dict[str, Any]) -> None:
    status, out = _call(server, f"TrentService.{op}", json.dumps(body).encode())
    assert status < 500, out
    if status != 200:
        assert set(out) == {"__type", "message"}
