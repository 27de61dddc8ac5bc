"""The trail writer process: one per ``serve``, the only appender of its trail.

Every process that answers calls (the single ``serve`` process, or each of ``--workers N``)
renders its calls' events and sends them here over a local socket; this process numbers and
chains whatever has arrived from all of them as one batch and makes it durable — with SQLite in
its journal (one synchronous write; :mod:`strongroom.audit.journal`, ingested into the
trail's tables in larger batches by :mod:`strongroom.audit.ingest`), with PostgreSQL as one
transaction with one signed digest — then acknowledges each frame. Keeping the writer out of
the request processes takes the commit work, and its contention for their interpreter lock, off
their event loops, and one appender for all workers makes batches larger than several
appenders taking turns (each with fdatasyncs of its own: measured, that costs more than it
saves).

Wire format, both directions on a ``SOCK_STREAM`` Unix socket (an abstract name, so the path
length of the data directory does not matter and nothing is left on disk): a client sends
frames ``u32 length (big-endian) || msgpack [[kind, body, [columns...]], ...]``; the writer
answers every frame, in order, with one byte: ``1`` committed, ``0`` not (the calls fail).

Run by ``serve`` as ``python -m strongroom.audit.writer`` with the serve configuration in the
environment (:data:`CONFIG_ENV`); it exits when its parent does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from sqlalchemy.exc import SQLAlchemyError

from strongroom.audit.ingest import INGEST_SECONDS, Ingester
from strongroom.audit.journal import Journal
from strongroom.audit.store import (
    NewEntry,
    TrailStore,
    chain_entries,
    open_trail_engine,
)
from strongroom.crypto.audit_sign import load_or_create_signer
from strongroom.node import load_or_create_node_id
from strongroom.storage.pg_deadline import statement_deadline

__all__ = [
    "ACK_FAILED",
    "ACK_OK",
    "CONFIG_ENV",
    "MAX_FRAME",
    "WRITER_NICE",
    "decode_frame",
    "encode_frame",
    "raise_priority",
]

log = logging.getLogger("strongroom.audit.writer")

CONFIG_ENV = "STRONGROOM_TRAIL_WRITER"
MAX_FRAME = 64 * 1024 * 1024
ACK_OK, ACK_FAILED = b"\x01", b"\x00"
#: testing: another INGEST_SECONDS (so that a test can find entries in the journal only)
INGEST_ENV = "STRONGROOM_TRAIL_INGEST_SECONDS"
#: the trail writer's niceness where raising it is permitted (:func:`raise_priority`)
WRITER_NICE = -10
_LEN = struct.Struct(">I")
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[NewEntry])


def encode_frame(entries: list[NewEntry]) -> bytes:
    payload = _encoder.encode(entries)  # named tuples: [kind, body, [columns...]] each
    return _LEN.pack(len(payload)) + payload


def decode_frame(payload: bytes) -> list[NewEntry]:
    """The entries of a frame, checked against their types as msgspec decodes them."""
    return _decoder.decode(payload)


@dataclass
class _Peer:
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    frames: list[list[NewEntry]] = field(default_factory=list)


class _Refusing(Exception):
    """The trail's tables cannot be written (an ingestion failed): batches are refused."""


class Writer:
    """Accept clients, collect their frames, commit them in batches, acknowledge.

    With an :class:`~strongroom.audit.ingest.Ingester` (the trail in SQLite) a batch is
    committed by appending it, chained, to the journal, which the ingester moves into the
    trail's tables in larger batches; without one (PostgreSQL) each batch is one transaction
    in the tables.
    """

    def __init__(
        self,
        store: TrailStore,
        listener: socket.socket,
        parent: int,
        ingester: Ingester | None = None,
    ) -> None:
        self._store = store
        self._listener = listener
        self._parent = parent
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ)
        self._peers: dict[int, _Peer] = {}
        self._inbox = bytearray(1 << 20)
        self._view = memoryview(self._inbox)
        self.stopping = False
        self._ingester = ingester
        self._head = ingester.start() if ingester is not None else (0, "")
        self._refused, self._refused_logged = 0, -1e18  # calls refused, not yet logged

    def run(self) -> None:
        ingester = self._ingester
        parent_checked = 0.0
        try:
            while not self.stopping:
                timeout = 0.5 if ingester is None else ingester.timeout()
                for key, _ in self._selector.select(timeout=timeout):
                    if key.fileobj is self._listener:
                        self._accept()
                    else:
                        self._read(self._peers[key.fd])
                self._commit_pending()
                if ingester is not None:
                    ingester.tick()
                now = time.monotonic()
                if now >= parent_checked + 0.5:
                    parent_checked = now
                    if os.getppid() != self._parent:
                        log.warning("serve is gone; the trail writer stops")
                        return
        finally:
            if ingester is not None:
                ingester.finish()

    def _append_journal(self, ingester: Ingester, entries: list[NewEntry]) -> None:
        if ingester.failed:
            raise _Refusing
        if ingester.resumed:  # a failed ingestion succeeded: go on from the tables' head
            ingester.resumed = False
            self._head = self._store.head()
        chained = chain_entries(*self._head, entries)
        try:
            ingester.journal.append(chained)
        except OSError:
            # the file may hold what failed, or a reader may have ingested it already: start
            # over from the tables and the journal (serve starts a new writer)
            log.exception("the audit journal cannot be written; the trail writer stops")
            self.stopping = True
            raise
        self._head = (chained[-1].seq, chained[-1].hash)
        ingester.added(chained)

    def _accept(self) -> None:
        with contextlib.suppress(BlockingIOError):
            sock, _ = self._listener.accept()
            sock.setblocking(False)  # read when the selector says so: no poll() before each
            self._peers[sock.fileno()] = _Peer(sock)
            self._selector.register(sock, selectors.EVENT_READ)

    def _read(self, peer: _Peer) -> None:
        try:
            # into one reused buffer: recv(n) would map n bytes fresh on every call
            size = peer.sock.recv_into(self._inbox)
        except BlockingIOError:
            return  # woken for nothing
        except OSError:
            size = 0
        if not size:
            self._drop(peer)
            return
        peer.buffer += self._view[:size]
        while len(peer.buffer) >= _LEN.size:
            (size,) = _LEN.unpack_from(peer.buffer)
            if size > MAX_FRAME:
                self._drop(peer)
                return
            if len(peer.buffer) < _LEN.size + size:
                break
            payload = bytes(peer.buffer[_LEN.size : _LEN.size + size])
            del peer.buffer[: _LEN.size + size]
            try:
                peer.frames.append(decode_frame(payload))
            except (msgspec.DecodeError, TypeError, ValueError):
                log.error("malformed trail frame; dropping the client")
                self._drop(peer)
                return

    def _commit_pending(self) -> None:
        ready = [peer for peer in self._peers.values() if peer.frames]
        if not ready:
            return
        entries = [entry for peer in ready for frame in peer.frames for entry in frame]
        try:
            if self._ingester is not None:
                self._append_journal(self._ingester, entries)
            else:
                self._store.append(entries)
            ack = ACK_OK
        except _Refusing:  # the ingester said why when it failed, and says when it recovers
            self._refused += len(entries)
            now = time.monotonic()
            if now - self._refused_logged >= 10.0:
                log.error("the trail's tables cannot be written: %d call(s) refused", self._refused)
                self._refused, self._refused_logged = 0, now
            ack = ACK_FAILED
        except Exception:
            log.exception("audit trail write failed; %d call(s) refused", len(entries))
            ack = ACK_FAILED
        for peer in ready:
            count, peer.frames = len(peer.frames), []
            try:
                _send(peer.sock, ack * count)
            except OSError:
                self._drop(peer)

    def _drop(self, peer: _Peer) -> None:
        self._peers.pop(peer.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(peer.sock)
        peer.sock.close()


def _send(sock: socket.socket, data: bytes) -> None:
    """Send on a non-blocking socket; should its buffer be full (acknowledgements are tiny,
    so only a client that stopped reading fills it), wait up to 10 s, then give up on it."""
    try:
        sent = sock.send(data)
    except BlockingIOError:
        sent = 0
    if sent < len(data):
        sock.settimeout(10)
        try:
            sock.sendall(data[sent:])
        finally:
            sock.setblocking(False)


def listen(name: str) -> socket.socket:
    """A listening socket on the abstract Unix address ``name``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("\0" + name)
    sock.listen(256)
    sock.setblocking(False)
    return sock


def _wait_for_tables(store: TrailStore, timeout: float = 60.0) -> None:
    """Make the chain head and begin this start's epoch, once the trail's tables exist (on
    PostgreSQL the migrations of the starting ``serve`` create them, while this process starts
    up beside it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            store.ensure_head()
            store.begin_epoch()
            return
        except SQLAlchemyError:
            if time.monotonic() > deadline:
                raise
            # a SQLite connection that met an I/O error stays unusable ("attempt to write a
            # readonly database") after the fault is gone: the next try opens new ones
            store.engine.dispose()
            time.sleep(0.1)


def raise_priority(nice: int = WRITER_NICE) -> int:
    """Raise this thread's scheduling priority to ``nice`` where the system allows it (root,
    or ``CAP_SYS_NICE``); return the niceness it had. Every call's response waits for this
    thread's commit, and with ``--workers N`` on N CPUs the workers keep every CPU busy: at
    the default priority the writer, woken by a frame, waits its turn behind them (the calls'
    acknowledgement under load took ~1 ms at the median). Where it is not allowed nothing
    changes."""
    base = os.getpriority(os.PRIO_PROCESS, 0)
    if nice < base:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)  # on Linux: the calling thread
        except PermissionError:
            log.info("the trail writer keeps niceness %d (raising it is not permitted)", base)
    return base


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    base_nice = raise_priority()
    settings = json.loads(os.environ[CONFIG_ENV])
    data_dir = Path(settings["data_dir"])
    store = TrailStore(
        open_trail_engine(data_dir, settings.get("database_url"), statement_deadline()),
        load_or_create_signer(data_dir),
        node=load_or_create_node_id(data_dir),
    )
    _wait_for_tables(store)
    log.info("the trail writer starts epoch %d", store.epoch)
    ingester = None
    if not settings.get("database_url"):
        seconds = float(os.environ.get(INGEST_ENV, INGEST_SECONDS))
        # ingestion is background work: its thread keeps the niceness serve had
        ingester = Ingester(store, Journal(data_dir), seconds, thread_nice=base_nice)
    writer = Writer(store, listen(settings["socket"]), int(settings["parent"]), ingester)

    def stop(signum: int, frame: object) -> None:
        del signum, frame
        writer.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # serve's Ctrl-C: the parent stops us
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    writer.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
