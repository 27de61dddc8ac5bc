"""uvicorn's httptools protocol with a cap on the size of a request's head, half-close, and
one send per response.

httptools buffers a header line until it ends, however long it is, so without a cap one
connection can make a worker hold any amount of memory (a 50 MB header line grew the process by
100 MB). This protocol counts the bytes received while a request's head (request line and
headers) is incomplete and answers 431 ``RequestHeaderFieldsTooLarge``, closing the connection,
once they pass :data:`MAX_HEAD`. The body has its own cap in the app (``MAX_BODY``).

A client that closes its sending side after its request (``shutdown(SHUT_WR)``) still gets its
answer: uvicorn closed the connection at once on end-of-file, so the answer was lost and, with
uvloop, writing it raised an error that was logged with a traceback. The connection now stays
open for writing until the requests already received are answered.

A response's head and body leave in one send (:class:`_OneSend`): uvicorn writes them separately,
and on loopback each send costs the client a wake-up. Measured with ``bench/kms_bench.py``-style
loads (Encrypt, ``--workers 2``, 4 interleaved rounds on a 2-CPU VM): +3 % requests/s, -2 %
machine CPU per request; +14 % when server and load share one CPU.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["MAX_HEAD", "BoundedHttpToolsProtocol"]

#: request line and headers together; boto3, the aws CLI and the Encryption SDK send ~1-2 KiB
MAX_HEAD = 64 * 1024

_MESSAGE = (
    b'{"__type":"RequestHeaderFieldsTooLarge",'
    b'"message":"The request line and headers are larger than 65536 bytes"}'
)
_RESPONSE = b"".join(
    [
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        b"content-type: application/x-amz-json-1.1\r\n",
        b"content-length: " + str(len(_MESSAGE)).encode() + b"\r\n",
        b"connection: close\r\n\r\n",
        _MESSAGE,
    ]
)


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over :data:`MAX_HEAD`."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` that refuses a request head over :data:`MAX_HEAD` bytes."""

    #: bytes received since the current request's head began (while it is incomplete)
    _head_bytes = 0
    #: True from the end of one request (or the connection's start) to its successor's headers
    _in_head = True
    #: the head was refused (answered 431) when its headers were complete
    _refused = False
    #: the client closed its sending side after whole requests: close once they are answered
    _eof = False

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # checked after parsing, so that a head and body arriving in one read are not refused
        # for their sum: what httptools still buffers is at most MAX_HEAD plus one read
        if self._in_head and self._head_bytes > MAX_HEAD:
            self._refuse()

    def on_headers_complete(self) -> None:
        counted, self._head_bytes, self._in_head = self._head_bytes, 0, False
        # the head is part of what was counted, so only a large count needs a closer look
        if counted > MAX_HEAD and len(self.url) + _size(self.headers) > MAX_HEAD:
            self._refused = True
            raise _HeadTooLarge  # httptools stops parsing; uvicorn calls send_400_response
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = cast("asyncio.Transport", _OneSend(self.transport))

    def send_400_response(self, msg: str) -> None:
        if self._refused:
            self._refuse()
        else:
            super().send_400_response(msg)

    def _refuse(self) -> None:
        if not self.transport.is_closing():
            self.logger.warning("Request head over %d bytes refused", MAX_HEAD)
            self.transport.write(_RESPONSE)
            self.transport.close()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def eof_received(self) -> bool | None:  # type: ignore[override]
        cycle = self.cycle
        answering = bool(self.pipeline) or (cycle is not None and not cycle.response_complete)
        if answering and cycle is not None and not cycle.more_body:
            self._eof = True
            return True  # keep the transport open for the answers
        return None  # nothing to answer, or a request cut short: close now

    def on_response_complete(self) -> None:
        cycle = self.cycle
        if cycle is not None and isinstance(cycle.transport, _OneSend):
            cycle.transport.flush()  # a head without a body write (HEAD, a 304)
        super().on_response_complete()
        cycle = self.cycle
        done = not self.pipeline and (cycle is None or cycle.response_complete)
        if self._eof and done and not self.transport.is_closing():
            self.transport.close()


class _OneSend:
    """A request's view of the connection that sends its response head and body together.

    uvicorn writes the status line and headers when the app starts its response and the body
    when it sends it: two sends, two TCP segments, two wake-ups of the client. The head is held
    here until the next write (the body), the transport's close, or the end of the response.
    """

    __slots__ = ("_head", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head = b""

    def write(self, data: bytes) -> None:
        if not self._head and data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 1"):
            self._head = data  # a final response's head (never an interim 100 Continue)
            return
        self.flush(data)

    def flush(self, data: bytes = b"") -> None:
        head, self._head = self._head, b""
        if head or data:
            self._transport.write(head + data if head else data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _size(headers: list[tuple[bytes, bytes]]) -> int:
    return sum(len(name) + len(value) for name, value in headers)
