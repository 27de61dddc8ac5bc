"""The connection cap against a real serve (reliability figure S4): ``--max-connections N``
keeps N open connections; one more is answered 503 ``ServiceUnavailable`` (AWS-shaped, before
it has sent anything) and closed, while the connections held go on being served, and a slot
freed by a closing client is taken by the next."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, running_server

CAP = 4
_LIST_KEYS = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ListKeys"}


def _held(server: Server) -> http.client.HTTPConnection:
    """A keep-alive connection the server has accepted (it answered one request on it)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    _ask(conn)
    return conn


def _ask(conn: http.client.HTTPConnection) -> tuple[int, dict[str, str]]:
    conn.request("POST", "/", body=b"{}", headers=_LIST_KEYS)  # unsigned: refused, but answered
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def _until_answered(server: Server, seconds: float = 10.0) -> list[dict[str, str]]:
    """ListKeys through boto3 once a slot is free (the server sees a client's close within
    a turn of its loop); bounded."""
    kms = server.client()
    deadline = time.monotonic() + seconds
    while True:
        try:
            return list(kms.list_keys()["Keys"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ServiceUnavailable" or (
                time.monotonic() > deadline
            ):
                raise
            time.sleep(0.05)


def test_a_connection_over_the_cap_is_answered_503_and_closed(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", "--max-connections", str(CAP)) as server:
        held = [_held(server) for _ in range(CAP)]
        try:
            # one more, through boto3: ServiceUnavailable, HTTP 503
            with pytest.raises(ClientError) as exc:
                server.client().list_keys()
            error = exc.value.response
            assert error["Error"]["Code"] == "ServiceUnavailable"
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
            # and by hand: the answer is there before the client sends a byte, then EOF
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503 ")
            assert b"connection: close" in head.lower()
            problem = json.loads(body)
            assert problem["__type"] == "ServiceUnavailable" and problem["message"]
            # the held connections are still served
            for conn in held:
                status, answer_body = _ask(conn)
                assert (status, answer_body["__type"]) == (
                    400,
                    "MissingAuthenticationTokenException",
                )
            # a held connection closes: its slot goes to the next client
            held.pop().close()
            assert _until_answered(server) is not None
            assert "Traceback" not in server.log()
        finally:
            for conn in held:
                conn.close()


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_flood_over_the_cap_holds_no_more_than_the_cap(tmp_path: Path) -> None:
    """40 connections each send 64,000 of a declared 65,000 bytes (the most a connection can
    make serve keep) to a serve that keeps 8: the first 8 are held, the other 32 answered 503
    at once, what they send dropped; the 8 are answered once their bodies are complete."""
    head = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
        b"X-Amz-Target: TrentService.Encrypt\r\nContent-Length: 65000\r\n\r\n"
    )
    with running_server(tmp_path / "data", "--max-connections", "8") as server:
        socks = []
        try:
            for _ in range(40):  # in order: the server accepts them in the order they came
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                sock.sendall(head + b"{" + b" " * 63_999)
                socks.append(sock)
            for sock in socks[8:]:  # refused: the answer and the end are there (bounded wait)
                answer = _read_all(sock)
                assert answer.startswith(b"HTTP/1.1 503 "), answer[:80]
                problem = json.loads(answer.partition(b"\r\n\r\n")[2])
                assert problem["__type"] == "ServiceUnavailable"
            waiting = socks[:8]  # accepted before those: held, waiting for their last bytes
            for sock in waiting:
                sock.settimeout(0.3)
                with pytest.raises(TimeoutError):
                    sock.recv(1)
            for sock in waiting:
                sock.settimeout(10)
                sock.sendall(b" " * 999 + b"}")
                answer = sock.recv(65536)  # an unsigned request: an AWS-shaped 4xx
                assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
                assert b'"__type"' in answer
            assert "Traceback" not in server.log()
        finally:
            for sock in socks:
                sock.close()
