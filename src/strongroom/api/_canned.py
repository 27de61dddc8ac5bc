"""The answers :mod:`strongroom.api.http_protocol` writes itself, whatever the edge does."""

from __future__ import annotations

#: a request (head and body) must arrive in full within this many seconds of its first byte,
#: however steadily its bytes trickle in (a slow-loris client holds a connection otherwise)
REQUEST_SECONDS = 20.0


def _json_and_close(status: bytes, message: bytes) -> bytes:
    """A whole response: ``status`` line, an AWS JSON error, ``connection: close``."""
    return b"".join(
        [
            b"HTTP/1.1 " + status + b"\r\n",
            b"content-type: application/x-amz-json-1.1\r\n",
            b"content-length: " + str(len(message)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            message,
        ]
    )


HEAD_TOO_LARGE = _json_and_close(
    b"431 Request Header Fields Too Large",
    b'{"__type":"RequestHeaderFieldsTooLarge",'
    b'"message":"The request line and headers are over 16384 bytes or 100 header lines"}',
)
BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 30\r\nconnection: close\r\n\r\nInvalid HTTP request received."
)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
INTERNAL = (
    500,
    b"application/x-amz-json-1.1",
    b'{"__type":"InternalFailure","message":"An internal error occurred."}',
    b"",
)
REASONS = {200: b"OK", 400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found",
            413: b"Request Entity Too Large", 500: b"Internal Server Error",
            503: b"Service Unavailable"}  # fmt: skip

TIMED_OUT = _json_and_close(
    b"408 Request Timeout",
    b'{"__type":"RequestTimeoutException",'
    b'"message":"The request was not received in full within %d seconds"}' % REQUEST_SECONDS,
)

TOO_MANY_CONNECTIONS = _json_and_close(
    b"503 Service Unavailable",
    b'{"__type":"ServiceUnavailable",'
    b'"message":"The server has too many open connections; retry shortly"}',
)
