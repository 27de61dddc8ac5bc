"""The HTTP/1.1 connection: httptools parsing straight into the edge, a send per answer at most.

uvicorn runs the server (sockets, ``--workers``, signals, lifespan, graceful shutdown) and
creates one :class:`EdgeProtocol` per connection. The protocol does not speak ASGI: a request's
method, path, query, headers, client address and body go to :meth:`Edge.answer` as plain
values, and the answer goes out as one write at the end of the loop's turn. uvicorn's own
protocol builds an ASGI scope, a request-response cycle, two ASGI messages and two writes per
request; a minimal ASGI app on it costs 144 k instructions per request against 26 k for a bare
httptools protocol (callgrind).

What the protocol enforces, whatever the edge does:

* a request's head (request line and headers) over :data:`MAX_HEAD`, or with more than
  :data:`MAX_HEADERS` header lines, is answered 431 ``RequestHeaderFieldsTooLarge`` and the
  connection closed: httptools buffers a header line until it ends, however long it is;
* a body over :data:`MAX_BODY` (declared, or counted as chunks arrive) is not kept: the edge is
  asked to answer it with ``body=None`` at once (it answers 413), and the rest is discarded;
* requests are answered in the order they arrived, pipelined ones included; reading pauses
  while :data:`MAX_QUEUE` are waiting or the client does not read its answers;
* a client that closes its sending side after whole requests still gets their answers;
* a connection beyond :data:`MAX_CONNECTIONS` open ones (``serve --max-connections``, each
  process) is answered 503 ``ServiceUnavailable`` at once and closed;
* ``Connection: close``, HTTP/1.0 without keep-alive, and an idle keep-alive connection
  (``timeout_keep_alive`` seconds) end the connection; ``Expect: 100-continue`` is answered
  ``100 Continue`` at once unless the body is refused.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass
from typing import Any, cast

import httptools

from strongroom.api._canned import (
    BAD_REQUEST,
    CONTINUE,
    HEAD_TOO_LARGE,
    INTERNAL,
    REASONS,
    REQUEST_SECONDS,
    TIMED_OUT,
    TOO_MANY_CONNECTIONS,
)
from strongroom.api._http_limits import (
    LINGER_BYTES,
    LINGER_SECONDS,
    MAX_BODY,
    MAX_CONNECTIONS,
    MAX_HEAD,
    MAX_HEADERS,
    MAX_QUEUE,
    Answer,
    Edge,
    Headers,
)
from strongroom.api.tls import TlsDetails, tls_details

__all__ = [
    "MAX_BODY",
    "MAX_HEAD",
    "MAX_HEADERS",
    "MAX_QUEUE",
    "Answer",
    "Edge",
    "EdgeProtocol",
    "Headers",
]

log = logging.getLogger("strongroom.api")


@dataclass(slots=True)
class _Request:
    method: str
    url: bytes
    headers: Headers
    body: bytes | None
    keep_alive: bool


def _edge_of(app: Any) -> Edge:
    """The :class:`Edge` inside uvicorn's loaded app (it may wrap it in middleware)."""
    for _ in range(8):
        if hasattr(app, "answer"):
            return cast("Edge", app)
        app = getattr(app, "app", None)
    raise TypeError("EdgeProtocol serves an app with an answer() method")


class EdgeProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection to the edge (uvicorn's ``http`` protocol class)."""

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        del app_state
        self._edge = _edge_of(config.loaded_app)
        self._loop: asyncio.AbstractEventLoop = _loop or asyncio.get_event_loop()
        self._state = server_state
        self._idle_timeout = float(config.timeout_keep_alive)
        self._max_connections = int(config.limit_concurrency or MAX_CONNECTIONS)
        self._parser = httptools.HttpRequestParser(self)
        # bytes after a 'Connection: close' request are ignored, not an error that would lose
        # that request's answer
        self._parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self._transport: asyncio.Transport | None = None
        self._client = ""
        self._tls: TlsDetails | None = None
        self._queue: collections.deque[_Request] = collections.deque()
        self._busy = False  # a request is being answered
        self._closing = False  # answer what is queued, then close
        self._read_paused = False
        self._write_paused = False
        self._outbox: list[bytes] = []  # this turn's answers, written by _send_out
        self._close_when_sent = False
        self._last_active = 0.0
        self._started: float | None = None  # when the request being received began
        self._timer: asyncio.TimerHandle | None = None
        # the request being parsed
        self._in_head = True
        self._head_bytes = 0
        self._url = b""
        self._headers: Headers = []
        self._chunks: list[bytes] = []
        self._size = 0
        self._refused = False  # its body is over MAX_BODY: answered already, rest discarded
        self._expect_continue = False
        self._head_refused = False
        self._linger = False  # close by lingering (see LINGER_SECONDS)
        self._dropped = -1  # bytes dropped while lingering (-1: not lingering)

    # -- connection ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)
        self._state.connections.add(self)
        if len(self._state.connections) > self._max_connections:
            self._refuse_connection(self._transport)
            return
        peer = transport.get_extra_info("peername")
        self._client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        self._tls = tls_details(transport.get_extra_info("ssl_object"))
        self._last_active = self._loop.time()
        self._arm_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.connections.discard(self)
        self._closing = True
        self._queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        if self._dropped >= 0:
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES and self._transport is not None:
                self._transport.close()
            return
        self._last_active = self._loop.time()
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._closing = True  # no upgrades here: answer what came, then close
            if not self._busy:
                self._close()
            return
        except httptools.HttpParserError:  # our own _HeadTooLarge arrives wrapped in one
            if self._head_refused:
                self._refuse_head()
                return
            self._closing = True
            if not self._busy:  # else the answers in hand go first, then the connection closes
                self._write(BAD_REQUEST)
                self._close()
            return
        # checked after parsing, so that a head and body arriving in one read are not refused
        # for their sum: what httptools still buffers is at most MAX_HEAD plus one read
        if self._in_head and self._head_bytes > MAX_HEAD:
            self._refuse_head()

    def eof_received(self) -> bool | None:
        if self._dropped >= 0:
            return None  # lingering: the client has stopped too
        if (self._busy or self._queue) and self._in_head:
            self._closing = True
            return True  # keep the transport open for the answers
        return None  # nothing to answer, or a request cut short: close now

    def pause_writing(self) -> None:
        self._write_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if len(self._queue) < MAX_QUEUE:
            self._resume_reading()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close when the request in hand is answered."""
        self._closing = True
        if not self._busy:
            self._close()

    # -- parser callbacks ------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._started = self._loop.time()
        self._url = b""
        self._headers = []
        self._chunks = []
        self._size = 0
        self._refused = self._expect_continue = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self._headers) >= MAX_HEADERS:
            self._head_refused = True
            raise _HeadTooLarge  # httptools stops parsing
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self._expect_continue = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        counted, self._head_bytes, self._in_head = self._head_bytes, 0, False
        if counted > MAX_HEAD and len(self._url) + _size(self._headers) > MAX_HEAD:
            self._head_refused = True
            raise _HeadTooLarge  # httptools stops parsing
        declared = -1
        for name, value in self._headers:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                break
        if declared > MAX_BODY:
            self._refuse_body()
        elif self._expect_continue and not self._busy:
            self._write(CONTINUE)  # (behind another request's answer it would come too soon)

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._size += len(body)
        if self._size > MAX_BODY:
            self._chunks = []
            self._refuse_body()
        else:
            self._chunks.append(body)

    def on_message_complete(self) -> None:
        self._started = None
        self._in_head = True
        self._head_bytes = 0
        if self._refused:
            return
        chunks, self._chunks = self._chunks, []  # kept, they would double the body's memory
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._enqueue(body)

    # -- answering -------------------------------------------------------------------------
    def _refuse_body(self) -> None:
        self._refused = True
        self._enqueue(None)

    def _enqueue(self, body: bytes | None) -> None:
        parser = self._parser
        keep_alive = parser.should_keep_alive() and parser.get_http_version() != "1.0"
        method = parser.get_method().decode("ascii")
        request = _Request(method, self._url, self._headers, body, keep_alive)
        if self._busy:
            self._queue.append(request)
            if len(self._queue) >= MAX_QUEUE:
                self._pause_reading()
        elif not self._closing:
            self._busy = True
            self._loop.create_task(self._answer(request))

    async def _answer(self, request: _Request) -> None:
        while True:
            parsed = httptools.parse_url(request.url)
            try:
                status, content_type, body, request_id = await self._edge.answer(
                    request.method,
                    parsed.path,
                    parsed.query or b"",
                    request.headers,
                    self._client,
                    request.body,
                    self._tls,
                )
            except Exception:
                log.exception("unanswered request")
                status, content_type, body, request_id = INTERNAL
            if not request.keep_alive:
                self._closing = True
                self._queue.clear()
            self._respond(status, content_type, body, request_id, request.method == "HEAD")
            if self._closing and not self._queue:
                break
            if not self._queue or self._transport is None or self._transport.is_closing():
                break
            request = self._queue.popleft()
            if self._read_paused and len(self._queue) < MAX_QUEUE and not self._write_paused:
                self._resume_reading()
        self._busy = False
        self._last_active = self._loop.time()
        if self._closing:
            self._close()

    def _respond(
        self, status: int, content_type: bytes, body: bytes, request_id: bytes, head_only: bool
    ) -> None:
        reason = REASONS.get(status) or b"Status"
        parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        for name, value in self._state.default_headers:
            parts.append(b"%s: %s\r\n" % (name, value))
        parts.append(b"content-type: %s\r\ncontent-length: %d\r\n" % (content_type, len(body)))
        if request_id:
            parts.append(b"x-amzn-requestid: %s\r\n" % request_id)
        if self._closing:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if not head_only:
            parts.append(body)
        self._write(b"".join(parts))

    # -- plumbing --------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        """Send ``data`` at the end of this turn of the loop (see :meth:`_send_out`)."""
        transport = self._transport
        # nothing follows what was written before the connection was to close
        if transport is not None and not transport.is_closing() and not self._close_when_sent:
            if not self._outbox:
                self._loop.call_soon(self._send_out)
            self._outbox.append(data)

    def _send_out(self) -> None:
        """Write what this connection's answers left in the outbox, as one send at the end of
        the loop's turn: pipelined answers leave together, and a client on the same machine is
        not woken while the turn's other requests are answered (9-18 % less server CPU a
        request without the trail; bench/README.md, session 13)."""
        data, self._outbox = self._outbox, []
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(data[0] if len(data) == 1 else b"".join(data))
        if self._close_when_sent:
            self._end(transport)

    def _close(self) -> None:
        """Close the connection once what waits in the outbox is written."""
        transport = self._transport
        if transport is not None and not transport.is_closing():
            if self._outbox:
                self._close_when_sent = True
            else:
                self._end(transport)

    def _end(self, transport: asyncio.Transport) -> None:
        # TLS cannot half-close; and a second end (a timer, after lingering began) closes
        if not self._linger or self._dropped >= 0 or not transport.can_write_eof():
            transport.close()
            return
        self._dropped = 0
        transport.write_eof()
        self._resume_reading()
        self._loop.call_later(LINGER_SECONDS, transport.close)

    def _refuse_head(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            log.warning(
                "Request head over %d bytes or %d header lines refused", MAX_HEAD, MAX_HEADERS
            )
        self._write(HEAD_TOO_LARGE)
        self._closing = True
        self._linger = True
        self._queue.clear()
        self._close()

    def _refuse_connection(self, transport: asyncio.Transport) -> None:
        """One connection over the cap: answered 503 before it sends anything, then closed by
        lingering, so that the client reads the answer to the request it sends meanwhile."""
        transport.write(TOO_MANY_CONNECTIONS)
        self._closing = self._linger = True
        self._end(transport)  # what the client sends from now on is dropped

    def _pause_reading(self) -> None:
        if not self._read_paused and self._transport is not None:
            self._read_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused and self._transport is not None:
            self._read_paused = False
            self._transport.resume_reading()

    def _arm_timer(self) -> None:
        self._timer = self._loop.call_later(self._idle_timeout, self._on_timer)

    def _on_timer(self) -> None:
        """Close a connection idle for ``timeout_keep_alive`` s (one timer per period, not
        one per request: the deadline moves with every read and answer), or one whose request
        has not arrived in full :data:`REQUEST_SECONDS` after its first byte (answered 408, or
        dropped behind the answers in hand)."""
        self._timer = None
        if self._transport is None or self._transport.is_closing():
            return
        now = self._loop.time()
        idle = now - self._last_active
        late = REQUEST_SECONDS - (now - self._started) if self._started is not None else 1e9
        if late <= 0 and not self._closing:
            self._closing = True
            self._pause_reading()
            if not self._busy and not self._queue:
                self._write(TIMED_OUT)
                self._close()
                return
        if not self._busy and not self._queue and idle >= self._idle_timeout:
            self._close()
        else:
            wait = min(self._idle_timeout - idle, late if late > 0 else 1e9)
            self._timer = self._loop.call_later(max(wait, 0.05), self._on_timer)


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over :data:`MAX_HEAD` or
    :data:`MAX_HEADERS`."""


def _size(headers: Headers) -> int:
    return sum(len(name) + len(value) for name, value in headers)
