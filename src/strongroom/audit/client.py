"""The request processes' side of the trail writer process (:mod:`strongroom.audit.writer`).

A call's event is rendered on the event loop (redacted there: no plaintext leaves the process)
and queued; at the end of that turn of the loop (``prompt``) or of the next one, everything
queued goes to the writer as one frame, and the calls wait for that frame's acknowledgement.
The writer commits whatever arrived from every process as one batch, so a response leaves only
after its record is durable. No connection, a lost connection or a refused frame fails the
waiting calls with :class:`TrailUnavailable`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import threading
from collections.abc import Callable
from typing import cast

import msgspec

from strongroom.audit.events import Columns, event_from_call
from strongroom.audit.sink import AuditedCall, TrailUnavailable
from strongroom.audit.store import NewEntry
from strongroom.audit.trail import CallSink
from strongroom.audit.writer import ACK_OK, encode_frame
from strongroom.iam.principal import Principal

__all__ = ["TrailClient"]

_encoder = msgspec.json.Encoder()


class _Acks(asyncio.Protocol):
    """One connection to the writer: frames out, one acknowledgement byte per frame back."""

    def __init__(self) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self.waiting: collections.deque[list[asyncio.Future[None]]] = collections.deque()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.WriteTransport", transport)  # a stream transport

    def data_received(self, data: bytes) -> None:
        for ack in data:
            if not self.waiting:
                break
            futures = self.waiting.popleft()
            for future in futures:
                if future.done():
                    continue
                if ack == ACK_OK[0]:
                    future.set_result(None)
                else:
                    future.set_exception(TrailUnavailable())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        while self.waiting:
            for future in self.waiting.popleft():
                if not future.done():
                    future.set_exception(TrailUnavailable())


class TrailClient(CallSink):
    """The :class:`~strongroom.audit.sink.AuditSink` of ``serve``: its writer process."""

    def __init__(
        self,
        socket_name: str,
        account_id: str,
        principal_of: Callable[[str], Principal | None],
        *,
        prompt: bool = False,
    ) -> None:
        super().__init__(account_id, principal_of)
        #: send a turn's entries at the end of that turn, not of the next (see _flush_next_turn)
        self._prompt = prompt
        self._address = "\0" + socket_name
        self._conn: _Acks | None = None
        self._connecting: asyncio.Lock | None = None
        self._pending: list[tuple[NewEntry, asyncio.Future[None]]] = []
        self._blocking_lock = threading.Lock()

    async def _record(self, kind: str, call: AuditedCall, principal: Principal | None) -> None:
        event, columns = event_from_call(call, principal, self._account)
        conn = self._conn
        if conn is None or conn.lost:
            conn = await self._connection()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush if self._prompt else self._flush_next_turn, conn)
        self._pending.append((NewEntry(kind, _encoder.encode(event), columns), future))
        await future

    async def _connection(self) -> _Acks:
        conn = self._conn
        if conn is not None and not conn.lost:
            return conn
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._conn is None or self._conn.lost:
                loop = asyncio.get_running_loop()
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    # a local connect completes at once (or fails); uvloop cannot resolve
                    # abstract addresses itself, so it gets the connected socket
                    sock.connect(self._address)
                    sock.setblocking(False)
                    _, protocol = await loop.create_unix_connection(_Acks, sock=sock)
                except OSError:
                    sock.close()
                    raise TrailUnavailable() from None
                self._conn = protocol
            return self._conn

    def _flush_next_turn(self, conn: _Acks) -> None:
        # one more turn of the loop first: the requests whose data arrived meanwhile record
        # into the same frame. Under load that halves the frames, and with them the writer's
        # wake-ups and the acknowledgements' (cross-process wake-ups cost more CPU than the
        # rest of a frame: measured, bench/audit_bench.py); idle, it costs one empty turn.
        # That pays where the workers fill every CPU and the writer takes its time from
        # them. With a CPU to spare (``prompt``; serve's one process on two CPUs) the
        # writer's work runs beside the worker, and what counts is how soon the frame is
        # committed: Encrypt with one worker on the 2-CPU VM, +8 to +20 % req/s sent
        # promptly in three side-by-side runs; with two workers, -6 % (bench/README.md,
        # session 14).
        asyncio.get_running_loop().call_soon(self._flush, conn)

    def _flush(self, conn: _Acks) -> None:
        pending, self._pending = self._pending, []
        if conn.lost or conn.transport is None:
            for _, future in pending:
                if not future.done():
                    future.set_exception(TrailUnavailable())
            return
        conn.waiting.append([future for _, future in pending])
        conn.transport.write(encode_frame([entry for entry, _ in pending]))

    # -- other writers (alarms) ----------------------------------------------------------
    def write_event(self, event: dict[str, object], columns: Columns) -> None:
        """Append a service event from any thread, blocking until it is durable."""
        frame = encode_frame([NewEntry("event", _encoder.encode(event), columns)])
        with self._blocking_lock, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            try:
                sock.connect(self._address)
                sock.sendall(frame)
                ack = sock.recv(1)
            except OSError:
                raise TrailUnavailable() from None
        if ack != ACK_OK:
            raise TrailUnavailable()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and conn.transport is not None:
            with contextlib.suppress(RuntimeError):  # its loop is gone already
                conn.transport.close()
