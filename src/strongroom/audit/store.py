"""The trail's storage: appending a batch atomically, reading entries and digests back.

One batch is one write transaction: lock the head row, number and chain the entries, insert
them and the batch's signed digest, move the head. Several processes (``serve --workers N``, or
several hosts on one PostgreSQL) therefore append to one gapless chain: SQLite serialises write
transactions (``BEGIN IMMEDIATE``), PostgreSQL serialises them on the head row
(``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from strongroom.audit.chain import GENESIS, digest_body, digest_hash, entry_hash
from strongroom.audit.events import Columns
from strongroom.audit.key_usage import UPSERT_SQL, ensure_tracking, latest_uses
from strongroom.audit.stored import DigestRow, EntryRow, read_digests, read_entries
from strongroom.crypto.audit_sign import TrailSigner
from strongroom.storage.audit_schema import (
    audit_digests,
    audit_epochs,
    audit_events,
    audit_head,
    audit_hsm_logs,
    audit_key_usage,
)
from strongroom.storage.engine import (
    SQLITE_PRAGMAS,
    WRITE_OPTION,
    open_engine,
    sqlite_url,
    write_transaction,
)
from strongroom.storage.schema import metadata

__all__ = [
    "ChainBroken",
    "ChainedEntry",
    "DigestRow",
    "EntryRow",
    "NewEntry",
    "TrailStore",
    "chain_entries",
    "open_trail_engine",
]

TRAIL_FILE = "audit.db"
#: the trail file's page size: an event is ~1 KiB, and with 32 KiB pages an ingestion writes
#: fewer, fuller pages to the WAL and back (measured: 17-20 -> 13-15 us of CPU per row ingested)
TRAIL_PAGE_SIZE = 32768


def open_trail_engine(
    data_dir: Path, database_url: str | None, deadline: float | None = None
) -> Engine:
    """The database the trail lives in (``deadline``: :func:`open_engine`'s, PostgreSQL only).

    SQLite: its own file, ``<data-dir>/audit.db``. The service's caches follow the main
    database's ``PRAGMA data_version``; a trail in the same file would move it on every call
    and empty every cache. PostgreSQL: the service database (there caches live by time).
    """
    if database_url is not None:
        return open_engine(database_url, deadline)
    path = data_dir / TRAIL_FILE
    if not path.exists():
        _create_sqlite_file(path)
    engine = open_engine(sqlite_url(str(path)))
    tables = [
        audit_events, audit_digests, audit_head, audit_hsm_logs, audit_key_usage, audit_epochs
    ]  # fmt: skip
    metadata.create_all(engine, tables=tables, checkfirst=True)
    ensure_tracking(engine)
    return engine


def _create_sqlite_file(path: Path) -> None:
    """Create the trail's SQLite file with :data:`TRAIL_PAGE_SIZE` pages (a page size holds
    only if it is set before the file's first page is written; on an existing file it does
    nothing, so a race with another process creating it is harmless)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute(f"PRAGMA page_size={TRAIL_PAGE_SIZE}")
        db.execute("PRAGMA journal_mode=WAL")


class NewEntry(NamedTuple):
    kind: str  # "event", "intent"
    body: bytes
    columns: Columns


class ChainedEntry(NamedTuple):
    """An entry with its place in the chain: its seq and its hash."""

    seq: int
    kind: str
    body: bytes
    columns: Columns
    hash: str


class ChainBroken(Exception):
    """Entries to ingest do not continue the chain from its head (at ``seq``)."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"entry {seq} does not continue the trail's hash chain")
        self.seq = seq


def chain_entries(seq: int, chain: str, entries: Sequence[NewEntry]) -> list[ChainedEntry]:
    """Number and chain ``entries`` after the entry ``seq`` whose hash is ``chain``."""
    out = []
    for entry in entries:
        seq += 1
        chain = entry_hash(chain, seq, entry.kind, entry.body)
        out.append(ChainedEntry(seq, entry.kind, entry.body, entry.columns, chain))
    return out


class _Result(Protocol):
    def fetchone(self) -> Any: ...


class _Cursor(Protocol):
    """What :meth:`TrailStore._append` needs: ``sqlite3.Connection`` has it, and
    :class:`_SqlaCursor` gives it to a SQLAlchemy connection (PostgreSQL)."""

    def execute(self, sql: str, params: Any = ..., /) -> _Result: ...

    def executemany(self, sql: str, params: Any, /) -> Any: ...


class _SqlaCursor:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Any = None, /) -> _Result:
        if params is None:
            return self._conn.exec_driver_sql(sql)
        return self._conn.exec_driver_sql(sql, params)

    def executemany(self, sql: str, params: Any, /) -> Any:
        return self._conn.exec_driver_sql(sql, params)


_SQL = {
    "head": "SELECT seq, hash, digest_seq, digest_hash FROM audit_head WHERE id = 1 FOR UPDATE",
    "event": "INSERT INTO audit_events (seq, kind, event_id, event_time, event_name, "
    "event_source, read_only, username, access_key_id, resource_type, resource_name, body, "
    "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "digest": "INSERT INTO audit_digests (seq, first_seq, last_seq, body, signature, hash) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    "move": "UPDATE audit_head SET seq = ?, hash = ?, digest_seq = ?, digest_hash = ? WHERE id = 1",
    "usage": UPSERT_SQL,
}


class TrailStore:
    """Append and read the trail in the database behind ``engine``."""

    def __init__(self, engine: Engine, signer: TrailSigner | None = None, node: str = "") -> None:
        self.engine = engine
        self._signer = signer
        #: the node whose writer this is (strongroom.node), signed into each digest with the
        #: epoch: several nodes' writers may append to one trail on PostgreSQL
        self.node = node
        self._writer: Connection | None = None
        self._raw: sqlite3.Connection | None = None
        self._raw_engine: Engine | None = None
        self._lock: BinaryIO | None = None
        self._sql: dict[str, str] = {}
        #: the writer's epoch (:meth:`begin_epoch`), signed into each digest; 0: none begun
        self.epoch = 0

    def ensure_head(self) -> None:
        with write_transaction(self.engine) as conn:
            if conn.execute(select(audit_head.c.id)).first() is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(audit_head).values(
                                id=1, seq=0, hash=GENESIS, digest_seq=0, digest_hash=GENESIS
                            )
                        )
                except IntegrityError:
                    pass  # another process made it first

    def begin_epoch(self) -> int:
        """Record a new epoch for this start of the writer (one more than any before) and sign
        it into the digests from now on (reliability figure A4)."""
        while True:
            with write_transaction(self.engine) as conn:
                last = conn.execute(select(func.max(audit_epochs.c.epoch))).scalar()
                epoch = int(last or 0) + 1
                try:
                    with conn.begin_nested():
                        conn.execute(insert(audit_epochs).values(epoch=epoch, started=time.time()))
                except IntegrityError:
                    continue  # another writer took that number first
            self.epoch = epoch
            return epoch

    def append(self, entries: Sequence[NewEntry]) -> int:
        """Chain, sign and commit ``entries`` as one batch; return the last seq.

        The hot path of every call: one long-lived connection (the writer's), one
        transaction and one signed digest per batch. On SQLite the writer talks to the
        ``sqlite3`` module directly (SQLAlchemy's per-statement work cost more CPU than the
        statements themselves) and several writer processes take turns on a lock file.
        """
        assert self._signer is not None, "a read-only TrailStore cannot append"
        if self.engine.dialect.name == "sqlite":
            return self._append_sqlite(entries)
        conn = self._writer_connection()
        try:
            with conn.begin():
                return self._append(_SqlaCursor(conn), entries)
        except Exception:
            self._drop_writer_connection()
            raise

    def _append_sqlite(self, entries: Sequence[NewEntry]) -> int:
        return self._sqlite_transaction(lambda raw: self._append(raw, entries))

    def ingest(
        self,
        read: Callable[[], Sequence[ChainedEntry]],
        *,
        chained_by_us: bool = False,
    ) -> int:
        """Add entries that were numbered and chained already (the writer's journal,
        :mod:`strongroom.audit.journal`) in one transaction with one signed digest; return
        the head's seq. ``read`` runs inside the transaction and the lock: entries at or
        below the head are skipped (someone ingested them already), the rest must continue the
        chain from the head, else :class:`ChainBroken` (``chained_by_us``: the caller chained
        them itself, so only the first link is checked). SQLite only."""
        assert self._signer is not None, "a read-only TrailStore cannot ingest"

        def run(raw: sqlite3.Connection) -> int:
            head = raw.execute(self._sql["head"]).fetchone()
            fresh = [entry for entry in read() if entry.seq > head[0]]
            seq, chain = int(head[0]), str(head[1])
            for entry in fresh[:1] if chained_by_us else fresh:
                seq += 1
                chain = entry_hash(chain, seq, entry.kind, entry.body)
                if entry.seq != seq or entry.hash != chain:
                    raise ChainBroken(seq)
                seq, chain = entry.seq, entry.hash
            if chained_by_us and fresh and fresh[-1].seq != fresh[0].seq + len(fresh) - 1:
                raise ChainBroken(fresh[0].seq)
            return self._insert(raw, head, fresh) if fresh else int(head[0])

        return self._sqlite_transaction(run)

    def head(self) -> tuple[int, str]:
        """The chain head: the last entry's seq and hash."""
        with self.engine.connect() as conn:
            row = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).one()
        return int(row.seq), str(row.hash)

    def _sqlite_transaction(self, work: Callable[[sqlite3.Connection], int]) -> int:
        try:
            raw = self._raw_connection()
            assert self._lock is not None
            fcntl.flock(self._lock, fcntl.LOCK_EX)
            try:
                raw.execute("BEGIN IMMEDIATE")
                try:
                    last = work(raw)
                    raw.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        raw.execute("ROLLBACK")
                    raise
                return last
            finally:
                fcntl.flock(self._lock, fcntl.LOCK_UN)
        except Exception:
            self._drop_writer_connection()
            raise

    def _raw_connection(self) -> sqlite3.Connection:
        """The writer's own ``sqlite3`` connection and lock file. With ``serve --workers N``
        the processes take turns on the lock file first: a blocked ``flock`` wakes the moment
        the holder commits, where SQLite's busy handler sleeps with back-off."""
        if self._raw is not None and self._raw_engine is not self.engine:
            self._drop_writer_connection()  # the store was pointed at another database
        if self._raw is None:
            database = self.engine.url.database or ""
            if not database or database == ":memory:":
                raise RuntimeError("the audit trail needs a SQLite file")
            # mode=rw: the trail's file exists already; connect() alone would create one
            raw = sqlite3.connect(
                f"file:{database}?mode=rw", uri=True, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
            try:
                for pragma in SQLITE_PRAGMAS:
                    raw.execute(pragma)
                self._lock = open(database + ".lock", "a+b")  # noqa: SIM115 (kept open)
            except BaseException:
                raw.close()
                raise
            self._raw, self._raw_engine = raw, self.engine
            self._sql = {name: text.replace(" FOR UPDATE", "") for name, text in _SQL.items()}
        return self._raw

    def _writer_connection(self) -> Connection:
        if self._writer is not None and self._writer.engine is not self.engine:
            self._drop_writer_connection()  # the store was pointed at another database
        if self._writer is None:
            self._writer = self.engine.connect().execution_options(**{WRITE_OPTION: True})
            self._sql = {name: text.replace("?", "%s") for name, text in _SQL.items()}
        return self._writer

    def close(self) -> None:
        """Close the appender's connection and lock file (the engine is the caller's)."""
        self._drop_writer_connection()

    def _drop_writer_connection(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        if self._raw is not None:
            with contextlib.suppress(Exception):
                self._raw.close()
            self._raw = self._raw_engine = None
        if self._lock is not None:
            with contextlib.suppress(Exception):
                self._lock.close()
            self._lock = None

    def _append(self, conn: _Cursor, entries: Sequence[NewEntry]) -> int:
        head = conn.execute(self._sql["head"]).fetchone()
        return self._insert(conn, head, chain_entries(int(head[0]), head[1], entries))

    def _insert(self, conn: _Cursor, head: Any, chained: Sequence[ChainedEntry]) -> int:
        """Insert chained entries following ``head`` (its row), their digest, move the head."""
        assert self._signer is not None
        sql = self._sql
        # Columns' fields, in order, are the columns between kind and body
        rows = [(e.seq, e.kind, *e.columns, e.body.decode("utf-8"), e.hash) for e in chained]
        conn.executemany(sql["event"], rows)
        uses = latest_uses(chained)  # GetKeyLastUsage's answers, in the same transaction
        if uses:
            conn.executemany(sql["usage"], uses)
        first, last = chained[0], chained[-1]
        digest_seq = int(head[2]) + 1
        body = digest_body(
            {
                "digestSeq": digest_seq,
                "firstSeq": first.seq,
                "lastSeq": last.seq,
                "lastHash": last.hash,
                "prevDigestHash": head[3],
                "time": round(time.time(), 3),
                "key": self._signer.fingerprint,
                **({"epoch": epoch} if (epoch := self._epoch(conn)) else {}),
                **({"node": self.node} if self.node else {}),
            }
        )
        signature = self._signer.sign(body).hex()
        dhash = digest_hash(body, signature)
        conn.execute(
            sql["digest"], (digest_seq, first.seq, last.seq, body.decode("utf-8"), signature, dhash)
        )
        conn.execute(sql["move"], (last.seq, last.hash, digest_seq, dhash))
        return last.seq

    def _epoch(self, conn: _Cursor) -> int:
        """The writer's epoch; a reader bringing the tables up to date from the journal signs
        with the latest epoch begun (the writer's whose entries it ingests, or a later one)."""
        if self.epoch:
            return self.epoch
        return int(conn.execute("SELECT max(epoch) FROM audit_epochs").fetchone()[0] or 0)

    def entries(self, after: int = 0, chunk: int = 2000) -> Iterator[EntryRow]:
        """Every entry in seq order, read in chunks (as stored: :mod:`.stored`)."""
        return read_entries(self.engine, after, chunk)

    def digests(self) -> list[DigestRow]:
        return read_digests(self.engine)
