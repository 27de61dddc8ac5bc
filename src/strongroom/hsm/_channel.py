"""Client side of the wire: TLS settings, one multiplexed connection, client errors."""

from __future__ import annotations

import asyncio
import itertools
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import msgspec

from strongroom.hsm.errors import ErrorCode
from strongroom.hsm.protocol import (
    PROTOCOL_VERSION,
    FrameReader,
    FrameTooLarge,
    RequestOut,
    ResponseIn,
    frame,
)

__all__ = [
    "Channel",
    "HsmClientError",
    "HsmUnavailable",
    "NodeAddress",
    "client_ssl_context",
]


class HsmClientError(Exception):
    """The HSM refused or failed a request; ``code`` says why, ``message`` in words."""

    def __init__(self, code: ErrorCode | int, message: str) -> None:
        super().__init__(message)
        try:
            self.code: ErrorCode | int = ErrorCode(code)
        except ValueError:
            self.code = code
        self.message = message

    def __str__(self) -> str:
        name = self.code.name if isinstance(self.code, ErrorCode) else str(self.code)
        return f"{name}: {self.message}"


class HsmUnavailable(HsmClientError):
    """No connection to the node could be made or kept, or it did not answer in time."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INTERNAL, message)


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """``host:port`` of one HSM node."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> NodeAddress:
        """Parse ``HOST:PORT``."""
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"node address must be HOST:PORT, got {text!r}")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def client_ssl_context(
    node_cert: str | Path | None = None, trust_anchor: str | Path | None = None
) -> ssl.SSLContext:
    """Verify nodes by their self-signed certificate (before the cluster is initialized) or by
    the cluster certificate chain up to the customer's trust anchor (after)."""
    if (node_cert is None) == (trust_anchor is None):
        raise ValueError("give exactly one of node_cert or trust_anchor")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False  # nodes are identified by the cluster chain, as CloudHSM does
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(node_cert or trust_anchor))
    return ctx


class Channel(asyncio.Protocol):
    """One TLS connection carrying many concurrent requests, matched to responses by id."""

    def __init__(self, timeout: float) -> None:
        self._reader = FrameReader()
        self._decoder = msgspec.msgpack.Decoder(ResponseIn)
        self._encoder = msgspec.msgpack.Encoder()
        self._pending: dict[int, asyncio.Future[ResponseIn]] = {}
        self._ids = itertools.count(1)
        self._timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.lost = False

    @classmethod
    async def open(cls, address: NodeAddress, context: ssl.SSLContext, timeout: float) -> Channel:
        """Connect and complete the TLS handshake."""
        loop = asyncio.get_running_loop()
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(
                    lambda: cls(timeout), address.host, address.port, ssl=context
                ),
                timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise HsmUnavailable(f"cannot connect to HSM {address}: {exc}") from None
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(HsmUnavailable("connection to the HSM was lost"))

    def data_received(self, data: bytes) -> None:
        try:
            payloads = self._reader.feed(data)
        except FrameTooLarge:
            self.close()
            return
        for payload in payloads:
            resp = self._decoder.decode(payload)
            fut = self._pending.pop(resp.id, None)
            if fut is not None and not fut.done():
                fut.set_result(resp)

    def _expire(self, req_id: int) -> None:
        fut = self._pending.pop(req_id, None)
        if fut is not None and not fut.done():
            fut.set_exception(HsmUnavailable("the HSM did not answer in time"))

    async def request(self, op: str, token: bytes | None, args: Any) -> ResponseIn:
        """Send one request and wait for its response."""
        if self.lost or self.transport is None:
            raise HsmUnavailable("connection to the HSM was lost")
        req_id = next(self._ids)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[ResponseIn] = loop.create_future()
        self._pending[req_id] = fut
        payload = self._encoder.encode(RequestOut(PROTOCOL_VERSION, req_id, op, token, args))
        self.transport.write(frame(payload))
        timer = loop.call_later(self._timeout, self._expire, req_id)
        try:
            return await fut
        finally:
            timer.cancel()

    def close(self) -> None:
        """Close the connection."""
        if self.transport is not None:
            self.transport.close()
