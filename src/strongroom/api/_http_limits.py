"""The HTTP edge's limits and the interface it answers through (:mod:`.http_protocol`)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from strongroom.api.tls import TlsDetails

__all__ = [
    "LINGER_BYTES",
    "LINGER_SECONDS",
    "MAX_BODY",
    "MAX_CONNECTIONS",
    "MAX_HEAD",
    "MAX_HEADERS",
    "MAX_QUEUE",
    "Answer",
    "Edge",
    "Headers",
]

#: request line and headers together; boto3, the aws CLI and the Encryption SDK send ~1-2 KiB,
#: a pre-signed URL with a session token ~3 KiB (a head is held whole until it ends: with 1,000
#: connections each holding one, 64 KiB and 2,000 header lines cost serve ~900 MiB)
MAX_HEAD = 16 * 1024
#: header lines in one request (Apache's LimitRequestFields); boto3 sends ~8
MAX_HEADERS = 100
#: a request body; KMS's largest member (a 4096-byte plaintext, base64) fits many times over
MAX_BODY = 64 * 1024
#: open connections a serving process keeps (``serve --max-connections``); one more is answered
#: 503 at once and closed. Each connection holds at most MAX_HEAD + MAX_BODY (and MAX_QUEUE
#: small requests) of a client's bytes, so this bounds what clients can make a process hold
MAX_CONNECTIONS = 1000
#: complete requests waiting behind the one being answered before reading pauses
MAX_QUEUE = 16
#: after a refused head the connection's sending side is shut (FIN) and what the client still
#: sends is read and dropped for this long / this much, then it is closed: closed at once with
#: unread bytes, the kernel would reset it, and the client could lose the 431 it was sent
LINGER_SECONDS = 2.0
LINGER_BYTES = 256 * 1024

Headers = list[tuple[bytes, bytes]]
#: (status, content type, body, request id or b"")
Answer = tuple[int, bytes, bytes, bytes]


class Edge(Protocol):
    """What answers requests (:class:`strongroom.api.app.App`)."""

    def answer(
        self,
        method: str,
        path: bytes,
        query: bytes,
        headers: Headers,
        client: str,
        body: bytes | None,
        tls: TlsDetails | None = None,
    ) -> Awaitable[Answer]:
        """The answer to one request; ``body`` is None when it was over :data:`MAX_BODY`;
        ``tls``: the connection's TLS version and cipher suite, None over plain HTTP."""
        ...
