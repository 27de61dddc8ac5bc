"""Slow clients against a real serve (reliability figure S4): many connections trickling
their request heads in a byte at a time do not keep other clients from being answered. Such a
connection is answered 408 and closed once its request has taken REQUEST_SECONDS (20 s) from
its first byte: that deadline is tested in tests/api/test_http_protocol.py with a short one,
not here, where it would cost 20 s."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from tests.conftest import Server

_HEAD = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
    b"X-Amz-Target: TrentService.ListKeys\r\nX-Slow-Loris: " + b"x" * 200 + b"\r\n\r\n"
)


def test_a_hundred_slow_loris_connections_do_not_starve_other_clients(
    server: Server, kms: Any
) -> None:
    slow = []
    try:
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(_HEAD[:20])
            slow.append(sock)
        answered, at = 0, 20
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # bounded: 3 s
            for sock in slow:
                sock.sendall(_HEAD[at : at + 1])  # never idle long enough to be closed as idle
            at += 1
            started = time.monotonic()
            kms.list_keys(Limit=1)
            answered += 1
            assert time.monotonic() - started < 5, "a client waited behind the slow ones"
            time.sleep(0.2)
        assert answered >= 5
        # the slow connections are still open (under the deadline) and unanswered
        for sock in slow:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):  # nothing to read, and not closed
                sock.recv(1)
    finally:
        for sock in slow:
            sock.close()
