"""The HTTP/1.1 connection (:class:`EdgeProtocol`) on a real event loop over a real socket pair.

The edge behind it is a small echo (what it was asked, as JSON) that can be told to take its
time; a thin recorder around the transport counts the writes reaching the socket. The server's
own edge is exercised end to end in test_wire_e2e.py and test_wire_fuzz.py.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from strongroom.api import http_protocol
from strongroom.api.http_protocol import MAX_BODY, MAX_QUEUE, Answer, EdgeProtocol, Headers


class _Echo:
    """An edge answering with what it was given; ``delay`` s before the first answer."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.delay = delay
        self.fail = fail
        self.seen: list[tuple[str, bytes, bytes, bytes | None]] = []

    async def answer(
        self, method: str, path: bytes, query: bytes, headers: Headers, client: str,
        body: bytes | None, tls: tuple[str, str] | None = None,
    ) -> Answer:  # fmt: skip
        self.seen.append((method, path, query, body))
        if self.delay:
            delay, self.delay = self.delay, 0.0
            await asyncio.sleep(delay)
        if self.fail:
            raise RuntimeError("edge broke")
        out = json.dumps(
            {
                "n": len(self.seen),
                "path": path.decode(),
                "query": query.decode(),
                "body": None if body is None else len(body),
                "client": client,
            }
        ).encode()
        return (413 if body is None else 200), b"application/json", out, b"rid-%d" % len(self.seen)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:  # never called
        raise AssertionError("not ASGI")


class _Recorder:
    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def pause_reading(self) -> None:
        FLOW.append("pause")
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        FLOW.append("resume")
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


#: the reading pauses and resumptions of the last connection served
FLOW: list[str] = []

Client = Callable[[bytes, Callable[[bytes], bool]], Awaitable[bytes]]


def _serve(edge: _Echo, script: Callable[[Client, socket.socket], Awaitable[Any]],
           keep_alive: float = 5.0) -> tuple[list[bytes], Any]:  # fmt: skip
    """Run ``script`` against one connection; (the writes the transport saw, its result)."""
    writes: list[bytes] = []
    FLOW.clear()

    async def run() -> Any:
        loop = asyncio.get_running_loop()
        config = uvicorn.Config(edge, lifespan="off", log_level="critical",
                                timeout_keep_alive=int(keep_alive) or 1)  # fmt: skip
        config.load()
        config.timeout_keep_alive = keep_alive  # type: ignore[assignment]
        state = ServerState()
        server_sock, client_sock = socket.socketpair()
        server_sock.setblocking(False)
        client_sock.setblocking(False)

        class Recording(EdgeProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(_Recorder(transport, writes))  # type: ignore[arg-type]

        def make() -> Recording:
            return Recording(config=config, server_state=state, app_state={})

        async def client(data: bytes, until: Callable[[bytes], bool]) -> bytes:
            if data:
                await loop.sock_sendall(client_sock, data)
            received = b""
            deadline = loop.time() + 10
            while not until(received):
                assert loop.time() < deadline, received
                chunk = await asyncio.wait_for(loop.sock_recv(client_sock, 65536), 10)
                if not chunk:
                    break
                received += chunk
            return received

        transport, _ = await loop.connect_accepted_socket(make, server_sock)
        try:
            return await script(client, client_sock)
        finally:
            transport.close()
            client_sock.close()
            await asyncio.sleep(0)

    return writes, asyncio.run(run())


def _answers(received: bytes) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """The (status line, headers, body) of each whole response in ``received``."""
    out = []
    rest = received
    while rest:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.lower()] = value.strip()
        length = 0 if lines[0].startswith(b"HTTP/1.1 1") else int(headers[b"content-length"])
        out.append((lines[0], headers, rest[:length]))
        rest = rest[length:]
    return out


def _count(n: int) -> Callable[[bytes], bool]:
    return lambda received: len([a for a in _answers(received) if a[0][9:10] != b"1"]) >= n


POST = b"POST /?a=b HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"


def test_one_answer_is_one_write_with_the_edge_answer() -> None:
    edge = _Echo()

    async def script(client: Client, _: socket.socket) -> bytes:
        return await client(POST % (3, b"abc"), _count(1))

    writes, received = _serve(edge, script)
    assert len(writes) == 1 and received == writes[0]
    ((status, headers, body),) = _answers(received)
    assert status == b"HTTP/1.1 200 OK"
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"x-amzn-requestid"] == b"rid-1"
    assert json.loads(body) == {"n": 1, "path": "/", "query": "a=b", "body": 3, "client": ""}
    assert edge.seen == [("POST", b"/", b"a=b", b"abc")]


def test_pipelined_requests_are_answered_in_order_behind_a_slow_one() -> None:
    edge = _Echo(delay=0.2)  # the first answer takes longest

    async def script(client: Client, _: socket.socket) -> bytes:
        three = POST % (1, b"a") + POST % (2, b"bb") + POST % (0, b"")
        return await client(three, _count(3))

    writes, received = _serve(edge, script)
    # the second and third are answered in the turn the first is: the three go out in one send
    assert writes == [received]
    assert [json.loads(body)["body"] for _, _, body in _answers(received)] == [1, 2, 0]


def test_a_chunked_body_is_joined_and_one_over_the_cap_is_refused() -> None:
    edge = _Echo()
    chunk = b"x" * 8192

    async def script(client: Client, _: socket.socket) -> bytes:
        small = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        small += b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        first = await client(small, _count(1))
        big = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        big += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(10)) + b"0\r\n\r\n"
        # the connection survives the refused body (the rest of it is read and dropped)
        return first + await client(big + POST % (2, b"ok"), _count(2))

    _, received = _serve(edge, script)
    answers = _answers(received)
    assert [a[0] for a in answers] == [b"HTTP/1.1 200 OK", b"HTTP/1.1 413 Request Entity Too Large",
                                       b"HTTP/1.1 200 OK"]  # fmt: skip
    assert [s[3] for s in edge.seen] == [b"abcde", None, b"ok"]


class _Holding(_Echo):
    """Records what the connection still holds of the body while its answer is made."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[int] = []

    async def answer(
        self, method: str, path: bytes, query: bytes, headers: Headers, client: str,
        body: bytes | None, tls: tuple[str, str] | None = None,
    ) -> Answer:  # fmt: skip
        for proto in [o for o in gc.get_objects() if isinstance(o, EdgeProtocol)]:
            self.held.append(sum(len(piece) for piece in proto._chunks))
        await asyncio.sleep(0.05)
        return await super().answer(method, path, query, headers, client, body, tls)


def test_the_body_is_not_held_twice_while_it_is_answered() -> None:
    """The pieces a body arrived in are let go once joined: 1,000 connections holding 64 KB
    bodies cost serve 140 MiB with them kept, 76 MiB without (scripts/upload_flood.py)."""
    edge = _Holding()

    async def script(client: Client, sock: socket.socket) -> bytes:
        head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\n\r\n"
        await asyncio.get_running_loop().sock_sendall(sock, head + b"a" * 20000)
        await asyncio.sleep(0.05)  # the body arrives in two pieces
        return await client(b"b" * 20000, _count(1))

    _, received = _serve(edge, script)
    assert received.startswith(b"HTTP/1.1 200 ")
    assert edge.seen[0][3] == b"a" * 20000 + b"b" * 20000
    assert edge.held and set(edge.held) == {0}  # no connection still holds the pieces


def test_a_declared_body_over_the_cap_is_refused_before_it_is_sent() -> None:
    edge = _Echo()

    async def script(client: Client, _: socket.socket) -> bytes:
        head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1)
        return await client(head, _count(1))

    _, received = _serve(edge, script)
    assert received.startswith(b"HTTP/1.1 413 ")
    assert edge.seen == [("POST", b"/", b"", None)]


@pytest.mark.parametrize("expect_continue", [False, True])
def test_100_continue_goes_out_at_once_and_head_has_no_body(expect_continue: bool) -> None:
    edge = _Echo()

    async def script(client: Client, _: socket.socket) -> bytes:
        if expect_continue:
            head = (
                b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
            )
            interim = await client(head, lambda r: r.endswith(b"\r\n\r\n"))
            return interim + await client(b"zz", _count(1))
        return await client(
            b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", lambda r: r.endswith(b"\r\n\r\n")
        )

    writes, received = _serve(edge, script)
    if expect_continue:
        assert writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert writes[1].startswith(b"HTTP/1.1 200 OK\r\n") and b'"body": 2' in writes[1]
    else:
        assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert writes[0].endswith(b"\r\n\r\n")  # the length of the body, but not the body
    assert received == b"".join(writes)


@pytest.mark.parametrize(
    "request_line", [b"POST / HTTP/1.1\r\nConnection: close", b"POST / HTTP/1.0"]
)
def test_connection_close_and_http_1_0_end_the_connection(request_line: bytes) -> None:
    edge = _Echo()

    async def script(client: Client, _: socket.socket) -> bytes:
        one = request_line + b"\r\nHost: x\r\nContent-Length: 1\r\n\r\na"
        return await client(one + POST % (1, b"b"), lambda r: False)  # read to the end

    _, received = _serve(edge, script)
    ((status, headers, _),) = _answers(received)  # the second request is not answered
    assert status.endswith(b" 200 OK") and headers[b"connection"] == b"close"


def test_half_close_after_whole_requests_still_gets_the_answers() -> None:
    edge = _Echo(delay=0.1)

    async def script(client: Client, sock: socket.socket) -> bytes:
        await asyncio.get_running_loop().sock_sendall(sock, POST % (1, b"a") * 3)
        sock.shutdown(socket.SHUT_WR)
        return await client(b"", lambda r: False)

    _, received = _serve(edge, script)
    assert len(_answers(received)) == 3


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout() -> None:
    edge = _Echo()

    async def script(client: Client, _: socket.socket) -> tuple[bytes, float]:
        loop = asyncio.get_running_loop()
        first = await client(POST % (1, b"a"), _count(1))
        started = loop.time()
        rest = await client(b"", lambda r: False)  # until the server closes
        return first + rest, loop.time() - started

    _, (received, waited) = _serve(edge, script, keep_alive=0.3)
    assert len(_answers(received)) == 1
    assert 0.2 < waited < 5


@pytest.mark.parametrize("part", ["head", "body"])
def test_a_request_trickling_in_is_answered_408_after_its_deadline(
    monkeypatch: pytest.MonkeyPatch, part: str
) -> None:
    """A slow-loris client sends a byte at a time, never idle long enough to be closed as
    idle: its request must arrive in full within REQUEST_SECONDS of its first byte."""
    monkeypatch.setattr(http_protocol, "REQUEST_SECONDS", 0.6)
    edge = _Echo()
    whole = POST % (8, b"abcdefgh")
    at = whole.index(b"\r\n\r\n") + (4 if part == "body" else -10)

    async def script(client: Client, sock: socket.socket) -> tuple[bytes, float]:
        loop = asyncio.get_running_loop()
        first = await client(POST % (1, b"a"), _count(1))  # a request in time is answered
        started = loop.time()
        await loop.sock_sendall(sock, whole[:at])
        early = b""
        for byte in whole[at : at + 40]:
            await asyncio.sleep(0.1)  # well inside the keep-alive timeout
            try:  # the answer came: stop sending (bytes sent after the server has closed
                early = sock.recv(65536)  # would reset the connection, and lose the answer
                break
            except BlockingIOError:
                pass
            try:
                await loop.sock_sendall(sock, bytes([byte]))
            except OSError:
                break
        rest = await client(b"", lambda r: False)  # until the server closes
        return first + early + rest, loop.time() - started

    _, (received, waited) = _serve(edge, script, keep_alive=0.5)
    answers = _answers(received)
    assert [a[0] for a in answers] == [b"HTTP/1.1 200 OK", b"HTTP/1.1 408 Request Timeout"]
    assert json.loads(answers[1][2])["__type"] == "RequestTimeoutException"
    assert answers[1][1][b"connection"] == b"close"
    assert 0.5 < waited < 4


def test_an_edge_failure_is_a_500_and_the_connection_goes_on() -> None:
    edge = _Echo(fail=True)

    async def script(client: Client, _: socket.socket) -> bytes:
        first = await client(POST % (1, b"a"), _count(1))
        edge.fail = False
        return first + await client(POST % (1, b"b"), _count(1))

    _, received = _serve(edge, script)
    answers = _answers(received)
    assert answers[0][0] == b"HTTP/1.1 500 Internal Server Error"
    assert json.loads(answers[0][2])["__type"] == "InternalFailure"
    assert answers[1][0] == b"HTTP/1.1 200 OK"


def test_reading_pauses_while_the_queue_is_full() -> None:
    edge = _Echo(delay=0.3)
    count = MAX_QUEUE + 8

    async def script(client: Client, _: socket.socket) -> bytes:
        return await client(POST % (1, b"a") * count, _count(count))

    writes, received = _serve(edge, script)
    # the answers of one turn of the loop go out in one send
    assert len(_answers(received)) == count and b"".join(writes) == received
    assert len(writes) < count
    assert FLOW[:2] == ["pause", "resume"]


def test_malformed_http_is_a_400_and_closes() -> None:
    edge = _Echo()

    async def script(client: Client, _: socket.socket) -> bytes:
        return await client(b"NOT HTTP AT ALL\r\n\r\n", lambda r: False)

    _, received = _serve(edge, script)
    assert received.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert received.endswith(b"Invalid HTTP request received.")
    assert edge.seen == []


class _Waiting(_Echo):
    """An edge that waits before answering: a bare yield, a future another callback settles,
    a worker thread; or (``odd``) an awaitable that yields something other than a future."""

    def __init__(self, odd: bool = False) -> None:
        super().__init__()
        self.odd = odd

    async def answer(
        self, method: str, path: bytes, query: bytes, headers: Headers, client: str,
        body: bytes | None, tls: tuple[str, str] | None = None,
    ) -> Answer:  # fmt: skip
        loop = asyncio.get_running_loop()
        if self.odd:
            self.odd = False
            await _Odd()
        await asyncio.sleep(0)
        settled: asyncio.Future[int] = loop.create_future()
        loop.call_later(0.01, settled.set_result, 7)
        assert await settled == 7
        assert await loop.run_in_executor(None, sum, [1, 2]) == 3
        return await super().answer(method, path, query, headers, client, body, tls)


class _Odd:
    def __await__(self) -> Any:
        yield 42


def test_an_answer_that_waits_is_resumed_and_answered_in_order() -> None:
    edge = _Waiting()

    async def script(client: Client, _: socket.socket) -> bytes:
        return await client(POST % (1, b"a") + POST % (2, b"bb"), _count(2))

    writes, received = _serve(edge, script)
    assert len(writes) == 2
    answers = _answers(received)
    assert [a[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 2
    assert [json.loads(body)["body"] for _, _, body in answers] == [1, 2]


def test_an_answer_awaiting_something_not_a_future_is_a_500_and_the_connection_goes_on() -> None:
    edge = _Waiting(odd=True)

    async def script(client: Client, _: socket.socket) -> bytes:
        first = await client(POST % (1, b"a"), _count(1))
        return first + await client(POST % (1, b"b"), _count(1))

    _, received = _serve(edge, script)
    answers = _answers(received)
    assert answers[0][0] == b"HTTP/1.1 500 Internal Server Error"
    assert answers[1][0] == b"HTTP/1.1 200 OK"


class _Transport(asyncio.Transport):
    """Records writes and the close; never actually sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.sent.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


def test_answers_leave_at_the_end_of_the_turn_and_nothing_follows_a_close() -> None:
    async def run() -> tuple[list[bytes], bool, list[bytes], bool]:
        config = uvicorn.Config(_Echo(), lifespan="off", log_level="critical")
        config.load()
        protocol = EdgeProtocol(config=config, server_state=ServerState(), app_state={})
        transport = _Transport()
        protocol.connection_made(transport)
        protocol._write(b"one")
        protocol._write(b"two")
        before = (list(transport.sent), transport.closed)
        protocol._close()
        protocol._write(b"three")  # after the close was asked for: dropped
        await asyncio.sleep(0)
        protocol.connection_lost(None)
        return *before, transport.sent, transport.closed

    sent_before, closed_before, sent, closed = asyncio.run(run())
    assert sent_before == [] and not closed_before  # nothing goes out during the turn
    assert sent == [b"onetwo"] and closed  # one send, then the close
