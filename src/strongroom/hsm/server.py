"""The node's TLS server: asyncio, one protocol object per connection, group-committed audit.

Requests on a connection are handled as they arrive; fast operations inline, slow ones as tasks,
so responses may come back out of order. Responses are held until the audit records of their
calls have been written: once per event-loop turn the server seals all pending records into one
audit block, then writes every waiting response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections import deque
from collections.abc import Coroutine
from typing import Any, cast

import msgspec

from strongroom.hsm.node import CallResult, Node
from strongroom.hsm.protocol import FrameReader, FrameTooLarge, RequestIn, ResponseOut, frame
from strongroom.metrics.hsm_node_metrics import start_metrics_listener

__all__ = ["NodeServer", "make_server_context"]

log = logging.getLogger("strongroom.hsm.server")
MAX_QUEUED = 1 << 20  # answers (bytes) a connection may have waiting before requests wait too


def make_server_context(node: Node) -> ssl.SSLContext:
    """TLS 1.2+ server context presenting the node's current certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load(ctx, node)
    return ctx


def _load(ctx: ssl.SSLContext, node: Node) -> None:
    d = node.config.data_dir
    ctx.load_cert_chain(d / "hsm-certificate.pem", d / "tls-key.pem", node.tls_password)


class _Connection(asyncio.Protocol):
    def __init__(self, server: NodeServer) -> None:
        self._server = server
        self._reader = FrameReader()
        self._decoder = server.request_decoder
        self.transport: asyncio.Transport | None = None
        self.outbox: list[bytes] = []
        self.queued = 0  # bytes in outbox
        self._backlog: deque[bytes] = deque()  # received requests not yet handled
        self._write_blocked = False  # the transport's write buffer is over its high-water mark
        self._reading_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self.transport = None
        self._backlog.clear()

    def pause_writing(self) -> None:
        self._write_blocked = True

    def resume_writing(self) -> None:
        self._write_blocked = False
        self.process()

    def data_received(self, data: bytes) -> None:
        self._server.octets_in += len(data)
        try:
            payloads = self._reader.feed(data)
        except FrameTooLarge:
            self._abort()
            return
        self._backlog.extend(payloads)
        self.process()

    def process(self) -> None:
        """Handle received requests while this connection's unsent answers stay small; past
        that, stop reading until the peer has taken them (a client that never reads must not
        make the node buffer answers without bound)."""
        while self._backlog and self.transport is not None:
            if self._write_blocked or self.queued > MAX_QUEUED:
                if not self._reading_paused:
                    self._reading_paused = True
                    self.transport.pause_reading()
                return
            payload = self._backlog.popleft()
            try:
                req = self._decoder.decode(payload)
            except (msgspec.MsgspecError, ValueError, RecursionError):
                # not a request (incl. strings that are not UTF-8, nesting too deep to decode)
                self._abort()
                return
            outcome = self._server.node.call(req)
            if isinstance(outcome, tuple):
                self._server.respond(self, req.id, outcome)
            else:
                self._server.spawn(self, req.id, outcome)
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class NodeServer:
    """Serves one :class:`Node` on a TLS port."""

    def __init__(self, node: Node, host: str, port: int, metrics_port: int = 0) -> None:
        self.node = node
        self.host, self.port = host, port
        self.metrics_port = metrics_port  # GET /metrics (strongroom.metrics.hsm_node_metrics)
        self.octets_in = self.octets_out = 0
        self.request_decoder = msgspec.msgpack.Decoder(RequestIn)
        self._encoder = msgspec.msgpack.Encoder()
        self.connections: set[_Connection] = set()
        self._dirty: set[_Connection] = set()
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._ssl = make_server_context(node)
        self._stopped = asyncio.Event()
        node.on_certificate_change = lambda: _load(self._ssl, node)

    def respond(self, conn: _Connection, req_id: int, outcome: CallResult) -> None:
        """Queue a response; it is sent after the audit log is flushed."""
        code, message, result = outcome
        answer = frame(self._encoder.encode(ResponseOut(req_id, code, message, result)))
        conn.outbox.append(answer)
        conn.queued += len(answer)
        self._dirty.add(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def spawn(self, conn: _Connection, req_id: int, coro: Coroutine[Any, Any, CallResult]) -> None:
        """Run a slow call; respond when it completes."""

        async def run() -> None:
            self.respond(conn, req_id, await coro)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _flush(self) -> None:
        self._flush_scheduled = False
        try:
            self.node.audit.flush()
        except OSError:
            log.critical("audit log write failed; stopping the HSM (fail closed)")
            for conn in list(self.connections):
                conn._abort()
            self._stopped.set()
            return
        dirty, self._dirty = self._dirty, set()
        for conn in dirty:
            if conn.transport is not None and conn.outbox:
                payload = b"".join(conn.outbox)
                self.octets_out += len(payload)
                conn.transport.write(payload)
            conn.outbox.clear()
            conn.queued = 0
        if self.node.zeroize_requested:
            self._stopped.set()
            return
        for conn in dirty:
            conn.process()  # requests held back while these answers were queued

    async def _sweep(self) -> None:
        period = max(0.2, min(5.0, self.node.config.session_timeout / 4))
        while True:
            await asyncio.sleep(period)
            self.node.expire_sessions()
            self.node.audit.flush()

    async def serve(self) -> None:
        """Listen until SIGTERM/SIGINT (or zeroize), then flush and close."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, ssl=self._ssl, reuse_address=True
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopped.set)
        sweeper = loop.create_task(self._sweep())
        if self.metrics_port:
            await start_metrics_listener(self, self.host, self.metrics_port)
        log.info("HSM %s listening on %s:%d", self.node.state.hsm_id, self.host, self.port)
        try:
            await self._stopped.wait()
        finally:
            sweeper.cancel()
            server.close()
            for conn in list(self.connections):
                if conn.transport is not None:
                    conn.transport.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
            with contextlib.suppress(Exception):
                await self.node.guard.close()
            self.node.close()
            if self.node.zeroize_requested:
                self.node.store.zeroize()
