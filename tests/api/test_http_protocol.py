"""The HTTP protocol's writes: a response's head and body leave the server in one send.

The protocol runs on a real event loop over a real socket pair; the only stand-in is a thin
recorder around the connection's transport that counts the writes reaching it.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from strongroom.api.http_protocol import BoundedHttpToolsProtocol


class _Recorder:
    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    message = await receive()
    body = b'{"echo":' + str(len(message.get("body", b""))).encode() + b"}"
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if scope["method"] != "HEAD":
        await send({"type": "http.response.body", "body": body})
    else:
        await send({"type": "http.response.body", "body": b""})


def _exchange(
    requests: bytes, expect_responses: int, bodies: bool = True
) -> tuple[list[bytes], bytes]:
    """Serve ``requests`` on one connection; (the writes the transport saw, what arrived)."""
    writes: list[bytes] = []

    async def run() -> bytes:
        loop = asyncio.get_running_loop()
        config = uvicorn.Config(_app, lifespan="off", log_level="critical")
        config.load()
        state = ServerState()
        server_sock, client_sock = socket.socketpair()
        server_sock.setblocking(False)
        client_sock.setblocking(False)

        class Recording(BoundedHttpToolsProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                recorder = _Recorder(transport, writes)  # type: ignore[arg-type]
                super().connection_made(recorder)  # type: ignore[arg-type]

        def make() -> Recording:
            return Recording(config=config, server_state=state, app_state={})

        transport, _ = await loop.connect_accepted_socket(make, server_sock)
        try:
            await loop.sock_sendall(client_sock, requests)
            received = b""
            deadline = loop.time() + 10
            while received.count(b"HTTP/1.1 200") < expect_responses or not _whole(
                received, bodies
            ):
                assert loop.time() < deadline, received
                chunk = await asyncio.wait_for(loop.sock_recv(client_sock, 65536), 10)
                assert chunk, received
                received += chunk
            return received
        finally:
            transport.close()
            client_sock.close()
            await asyncio.sleep(0)

    return writes, asyncio.run(run())


def _whole(received: bytes, bodies: bool) -> bool:
    """Every response in ``received`` is whole (its head, and its body if ``bodies``)."""
    rest = received
    while rest:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            return False
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        if head.startswith(b"HTTP/1.1 1") or not bodies:
            length = 0
        if len(rest) < length:
            return False
        rest = rest[length:]
    return True


def test_head_and_body_leave_in_one_write() -> None:
    writes, received = _exchange(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", expect_responses=1
    )
    assert len(writes) == 1, writes
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b'{"echo":3}')
    assert received == writes[0]


def test_pipelined_requests_get_one_write_each_in_order() -> None:
    one = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"
    two = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nbb"
    writes, received = _exchange(one + two, expect_responses=2)
    assert len(writes) == 2, writes
    assert writes[0].endswith(b'{"echo":1}') and writes[1].endswith(b'{"echo":2}')
    assert received == writes[0] + writes[1]


@pytest.mark.parametrize("expect_continue", [False, True])
def test_a_head_request_and_100_continue_are_not_held(expect_continue: bool) -> None:
    if expect_continue:
        # the interim 100 Continue must go out at once, not wait for the final response
        request = (
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nzz"
        )
        writes, received = _exchange(request, expect_responses=1)
        assert writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert writes[1].startswith(b"HTTP/1.1 200 OK\r\n") and writes[1].endswith(b"2}")
    else:
        # a HEAD answer has no body write: its head is sent when the response completes
        writes, received = _exchange(
            b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", expect_responses=1, bodies=False
        )
        assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert writes[0].endswith(b"\r\n\r\n")
    assert received == b"".join(writes)
