"""Opening the database: SQLite (embedded default) or PostgreSQL, with the same schema.

SQLite runs in WAL mode with ``synchronous=FULL`` (a commit is on disk when it returns) and real
``BEGIN`` transactions; PostgreSQL goes through psycopg 3. :class:`ChangeMonitor` tells a process
when another process may have changed the data, so in-memory caches stay coherent.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError

from strongroom.errors import AwsError
from strongroom.storage.pg_deadline import DeadlineConnection

__all__ = [
    "PG_CONNECTION",
    "SQLITE_PRAGMAS",
    "WRITE_OPTION",
    "ChangeMonitor",
    "open_engine",
    "sqlite_url",
    "storage_unavailable",
    "write_transaction",
]

#: Execution option marking a connection's transactions as writes (BEGIN IMMEDIATE on SQLite).
WRITE_OPTION = "strongroom_write"


def sqlite_url(path: str) -> str:
    """The SQLAlchemy URL of a SQLite file."""
    return f"sqlite+pysqlite:///{path}"


#: libpq settings of every PostgreSQL connection, unless the URL gives its own: a server that
#: stops answering (a partition, a host gone) fails a statement after ~10 s of unacknowledged
#: data (``tcp_user_timeout``), an idle connection after ~19 s of unanswered keepalives, a
#: connection attempt after 5 s. Without them a statement waits for TCP to give up (about 15
#: minutes on Linux), and with it every request of the worker.
PG_CONNECTION: dict[str, int] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


def open_engine(url: str, deadline: float | None = None) -> Engine:
    """An engine for ``url`` (``sqlite:///...`` or ``postgresql://...``). On PostgreSQL,
    ``deadline`` bounds each round trip to the server (:mod:`strongroom.storage.pg_deadline`);
    SQLite's waits are its ``busy_timeout``."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(parsed.set(drivername="sqlite+pysqlite"))
        _configure_sqlite(engine)
        return engine
    if backend in ("postgresql", "postgres"):
        given = set(parsed.query)
        engine = create_engine(
            parsed.set(drivername="postgresql+psycopg"),
            pool_pre_ping=True,
            pool_size=4,
            connect_args={k: v for k, v in PG_CONNECTION.items() if k not in given},
        )
        event.listen(engine, "handle_error", _nul_is_bad_input, retval=True)
        if deadline is not None:

            @event.listens_for(engine, "do_connect")
            def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
                conn = DeadlineConnection.connect(*cargs, **cparams)
                conn.deadline = deadline
                return conn

        return engine
    raise ValueError(f"unsupported database URL scheme: {parsed.drivername}")


def _nul_is_bad_input(context: ExceptionContext) -> BaseException | None:
    """PostgreSQL's text cannot hold U+0000, which the APIs' strings may carry (a description,
    a tag, an identifier to look up): refuse such a request as invalid input rather than fail
    as an internal error. SQLite stores the character like any other."""
    if "cannot contain NUL" in str(context.original_exception):
        return AwsError(
            "ValidationException",
            "1 validation error detected: a string value contains the NUL character (U+0000), "
            "which this service's PostgreSQL store cannot hold",
        )
    return None


#: SQLite's primary result codes that say the database cannot be used just now, not that the
#: statement or its data is wrong: busy or locked past the timeout, read-only, an I/O error,
#: full, cannot be opened, a locking protocol error
_SQLITE_UNAVAILABLE = frozenset({5, 6, 8, 10, 13, 14, 15})


def storage_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the database cannot be used right now: a full
    or read-only file system, an I/O error, a lock held too long, a lost or refused PostgreSQL
    connection, PostgreSQL out of disk. A request that meets one answers 503, not 500."""
    seen: BaseException | None = exc
    for _ in range(8):
        if isinstance(seen, DBAPIError):
            if seen.connection_invalidated:
                return True
            seen = seen.orig
        elif isinstance(seen, sqlite3.Error):
            return (getattr(seen, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_UNAVAILABLE
        elif isinstance(seen, psycopg.OperationalError):
            return True
        elif seen is None:
            return False
        else:
            seen = seen.__cause__ or seen.__context__
    return False


#: Testing only, for the power-loss harness (scripts/power_loss.py): ``NORMAL`` there shows
#: that the harness detects commits lost with the page cache (in WAL mode NORMAL syncs only at
#: checkpoints). Unset, or ``FULL``, is the service's setting; nothing else is accepted.
SYNCHRONOUS_ENV = "STRONGROOM_TESTING_SQLITE_SYNCHRONOUS"


def _synchronous() -> str:
    value = os.environ.get(SYNCHRONOUS_ENV, "FULL")
    if value not in ("FULL", "NORMAL"):
        raise ValueError(f"{SYNCHRONOUS_ENV} must be FULL or NORMAL (testing only), not {value!r}")
    return value


#: Every SQLite connection of Strongroom: WAL, a commit is durable once it returns (fsync),
#: foreign keys enforced, and waits of up to 10 s for another writer's lock.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    f"PRAGMA synchronous={_synchronous()}",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (SQLAlchemy's recipe)
        cur = dbapi_conn.cursor()
        for pragma in SQLITE_PRAGMAS:
            cur.execute(pragma)
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Write transactions take the write lock up front, so what they read stays true
        # until they commit; read transactions stay deferred.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it holds the write lock from its first
    statement, so read-check-write sequences inside it cannot race another writer."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn


class ChangeMonitor:
    """Tells in-process caches when the database may have changed under them.

    :meth:`generation` returns a number that grows whenever data may have changed; a cache
    remembers the generation it was filled at and drops itself when the number moves.
    SQLite: every commit, by any connection of any process, rewrites the header of the WAL
    index (the ``-shm`` file: its transaction counter, frame count and checksums; see
    https://sqlite.org/walformat.html). The monitor keeps a connection of its own open, so the
    index stays in place, and reads the header's first copy, the one readers trust, with one
    ``pread``: a changed header moves the generation (a checkpoint may move it with no data
    changed, which only costs a reload). Where there is no index to read (no WAL), it asks
    ``PRAGMA data_version`` instead, which changes whenever another connection commits.
    :meth:`refresh` looks at the start of each request, :meth:`generation` at most every
    ``min_interval`` seconds, so caches are exact across processes. PostgreSQL: the generation
    moves every ``ttl`` seconds, the eventual consistency AWS KMS itself documents. One monitor
    serves every cache of a process.
    """

    #: the WAL-index header: 48 bytes, written as two copies, the first one last
    _HEADER = 48

    def __init__(self, url: str, ttl: float = 1.0, min_interval: float = 0.05) -> None:
        parsed = make_url(url)
        self._conn: sqlite3.Connection | None = None
        self._shm = -1
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            self._conn = sqlite3.connect(parsed.database, check_same_thread=False)
            # a read opens the WAL index, which then lives as long as this connection
            self._conn.execute("PRAGMA data_version").fetchone()
            with contextlib.suppress(OSError):
                mode = self._conn.execute("PRAGMA journal_mode").fetchone()
                if mode is not None and str(mode[0]).lower() == "wal":
                    self._shm = os.open(parsed.database + "-shm", os.O_RDONLY | os.O_CLOEXEC)
        self._interval = min_interval if self._conn is not None else ttl
        self._checked = -1e18
        self._version: object = None
        self._generation = 0

    def refresh(self) -> None:
        """Look now (SQLite): called once at the start of every request, so a request always
        sees what other processes committed before it arrived."""
        if self._conn is not None:
            self._checked = -1e18
        self.generation()

    def generation(self) -> int:
        now = time.monotonic()
        if now - self._checked < self._interval:
            return self._generation
        self._checked = now
        if self._conn is None:
            self._generation += 1
            return self._generation
        version = self._read_version()
        if version != self._version:
            self._version = version
            self._generation += 1
        return self._generation

    def _read_version(self) -> object:
        if self._shm >= 0:
            header = os.pread(self._shm, self._HEADER, 0)
            if len(header) == self._HEADER:
                return header
        (version,) = self._conn.execute("PRAGMA data_version").fetchone()  # type: ignore[union-attr]
        return version

    def close(self) -> None:
        if self._shm >= 0:
            os.close(self._shm)
            self._shm = -1
        if self._conn is not None:
            self._conn.close()
