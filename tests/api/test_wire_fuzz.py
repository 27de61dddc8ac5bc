"""Bad input at the wire edge, against a real ``serve``: what scripts/fuzz_wire.py found, kept
as regressions, and a short seeded run of the fuzzer itself.

Each answer must be an AWS-shaped 4xx (``{"__type": ..., "message": ...}``), never a 500 or a
traceback in the server's log.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, STRONGROOM, Server, running_server
from tests.signing import post, sign

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import fuzz_wire

HEAD = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
    b"X-Amz-Target: TrentService.ListKeys\r\n"
)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own: the fuzz run changes keys, grants and policies."""
    with running_server(tmp_path_factory.mktemp("fuzz") / "data") as server:
        yield server


def signed(server: Server, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
    akid, secret = server.credentials()
    headers = sign(body, target, akid, secret, host=f"127.0.0.1:{server.port}")
    status, _, data = post(server.port, body, headers)
    decoded = json.loads(data)
    assert isinstance(decoded, dict)
    return status, decoded


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, close the sending side, and read until the server closes."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # refused and closed while we were still sending
            pass
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return received


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 20_000 + b"]" * 20_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b'{"KeyId": "' + b"[" * 10 + b'", "Limit": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
    ids=["arrays", "objects", "member"],
)
def test_deeply_nested_json_is_a_serialization_error(fresh: Server, body: bytes) -> None:
    status, answer = signed(fresh, "TrentService.ListKeys", body)
    assert (status, answer["__type"]) == (400, "SerializationException")


def test_invalid_utf8_in_a_string_is_a_serialization_error(fresh: Server) -> None:
    status, answer = signed(fresh, "TrentService.DescribeKey", b'{"KeyId": "\xff\xfe"}')
    assert (status, answer["__type"]) == (400, "SerializationException")


def test_list_retirable_grants_needs_a_retiring_principal(fresh: Server) -> None:
    kms = fresh.client()
    for kwargs in ({}, {"RetiringServicePrincipal": "ec2.amazonaws.com"}):
        with pytest.raises(ClientError) as err:
            kms.list_retirable_grants(**kwargs)
        assert err.value.response["Error"]["Code"] == "ValidationException"
    root = f"arn:aws:iam::{ACCOUNT}:root"
    assert kms.list_retirable_grants(RetiringPrincipal=root)["Grants"] == []


def test_create_grant_needs_a_grantee_principal(fresh: Server) -> None:
    kms = fresh.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    root = f"arn:aws:iam::{ACCOUNT}:root"
    for kwargs in (
        {},
        {"GranteeServicePrincipal": "ec2.amazonaws.com"},
        {"GranteePrincipal": root, "RetiringServicePrincipal": "ec2.amazonaws.com"},
    ):
        with pytest.raises(ClientError) as err:
            kms.create_grant(KeyId=key_id, Operations=["Encrypt"], **kwargs)
        assert err.value.response["Error"]["Code"] == "ValidationException"
    assert kms.list_grants(KeyId=key_id)["Grants"] == []
    kms.create_grant(KeyId=key_id, Operations=["Encrypt"], GranteePrincipal=root)


@pytest.mark.parametrize("size", [17_000, 70_000, 4_000_000])
def test_request_head_over_16_kib_is_refused(fresh: Server, size: int) -> None:
    answer = raw_exchange(fresh.port, HEAD + b"X-Big: " + b"a" * size + b"\r\n\r\n")
    if size < 1_000_000 or answer:  # a huge head may be cut off by a reset before it is read
        assert answer.startswith(b"HTTP/1.1 431 ")
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert body["__type"] == "RequestHeaderFieldsTooLarge"
    # a head just under the cap is served, and the server is still there
    answer = raw_exchange(fresh.port, HEAD + b"X-Big: " + b"a" * 15_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"MissingAuthenticationTokenException" in answer
    assert fresh.client().list_keys(Limit=1)["Keys"] is not None


def test_a_head_of_more_than_100_header_lines_is_refused(fresh: Server) -> None:
    lines = b"".join(b"X-Pad-%d: p\r\n" % i for i in range(101 - HEAD.count(b"\r\n") + 1))
    answer = raw_exchange(fresh.port, HEAD + lines + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["__type"] == "RequestHeaderFieldsTooLarge"
    lines = b"".join(b"X-Pad-%d: p\r\n" % i for i in range(100 - HEAD.count(b"\r\n") + 1))
    answer = raw_exchange(fresh.port, HEAD + lines + b"\r\n")  # 100 lines: served
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"MissingAuthenticationTokenException" in answer


def test_a_refused_head_lingers_so_that_the_client_still_reads_its_431(fresh: Server) -> None:
    """After the 431 the server shuts its sending side and drops what the client still sends
    for a while: a client that goes on sending is not reset, and reads the 431, then EOF
    (closed at once, the bytes arriving after the close would reset the connection)."""
    lines = b"".join(b"X-Pad-%d: p\r\n" % i for i in range(150))
    with socket.create_connection(("127.0.0.1", fresh.port), timeout=10) as sock:
        sock.sendall(HEAD + lines)
        time.sleep(0.3)  # refused and answered by now
        for _ in range(4):  # the rest of a head the client does not know was refused
            sock.sendall(b"X-More: " + b"m" * 4000 + b"\r\n")
            time.sleep(0.1)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 431 "), received[:100]
    assert b"RequestHeaderFieldsTooLarge" in received


def test_requests_before_a_half_close_are_all_answered(fresh: Server) -> None:
    one = HEAD + b"Content-Length: 2\r\n\r\n{}"
    for count in (1, 20):
        answer = raw_exchange(fresh.port, one * count)
        assert answer.count(b"HTTP/1.1 400 ") == count
        assert answer.count(b"MissingAuthenticationTokenException") == count
    # a request cut short by the half-close is not answered, and nothing breaks
    assert raw_exchange(fresh.port, HEAD + b"Content-Length: 100\r\n\r\n{}") == b""
    assert "Traceback" not in fresh.log()


def test_a_seeded_fuzz_run_finds_nothing(fresh: Server) -> None:
    akid, secret = fresh.credentials()
    endpoint = fuzz_wire.Endpoint(fresh.port, akid, secret)
    report = fuzz_wire.fuzz(endpoint, ACCOUNT, seed=20261123, cases=2500, seconds=60)
    assert report.cases == 2500, report.lines()
    assert report.failures == [], "\n".join(report.lines())
    # every kind of case ran, and well-formed calls got through to the services
    assert set(report.categories) >= {"kms", "cloudtrail", "cloudhsmv2", "raw", "header", "sts"}
    assert report.statuses[200] > 50
    assert fuzz_wire.log_problems(fresh.log()) == []
    # the trail took every one of those calls, odd characters and all, and still verifies
    verify = strongroom_cli(fresh, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    exported = strongroom_cli(fresh, "audit", "export", "--since", "2000-01-01T00:00:00Z")
    assert exported.returncode == 0, exported.stderr
    events = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(events) >= report.cases
    trail = fresh.client("cloudtrail")
    page = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "ListKeys"}],
        MaxResults=50,
    )
    assert page["Events"]


def strongroom_cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STRONGROOM, *args, "--data-dir", str(server.data_dir)],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_seeded_fuzz_run_over_tls_finds_nothing(tmp_path: Path) -> None:
    """The same over HTTPS (``--tls-self-signed``), with some raw cases sent onto the TCP
    connection without TLS: plain HTTP, or bytes that are no handshake."""
    with running_server(tmp_path / "data", "--tls-self-signed") as srv:
        akid, secret = srv.credentials()
        cafile = str(srv.data_dir / "tls-self-signed.crt")
        endpoint = fuzz_wire.Endpoint(srv.port, akid, secret, cafile)
        report = fuzz_wire.fuzz(endpoint, ACCOUNT, seed=20261124, cases=600, seconds=60)
        assert report.cases == 600, report.lines()
        assert report.failures == [], "\n".join(report.lines())
        assert report.statuses[200] > 20 and report.categories["http"] > 0
        assert fuzz_wire.log_problems(srv.log()) == []
