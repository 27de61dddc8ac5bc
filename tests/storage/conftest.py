"""Storage backends for the contract suite: SQLite, PostgreSQL, and a SQLite told to fail.

PostgreSQL comes from ``STRONGROOM_TEST_PG_DSN`` or, failing that, the trust-auth server on
127.0.0.1:5432. Each test session creates its own uniquely named database and drops it at the end;
each test gets an empty ``public`` schema in it. Without a PostgreSQL those tests skip, saying so.

The faulty backend is a real SQLite engine with a ``before_cursor_execute`` listener
(:class:`FaultInjector`) that raises a driver ``OperationalError`` on the Nth statement matching a
pattern, the way a full disk or a dropped connection would surface.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, make_url

from strongroom.bootstrap import ensure_admin
from strongroom.clock import ManualClock
from strongroom.server import Config, Runtime, build
from strongroom.storage.engine import open_engine, sqlite_url
from strongroom.storage.migrations import apply_migrations

ACCOUNT = "111122223333"

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
T0 = 1_700_000_000.0


# -- the fake that can be told to fail --------------------------------------------------------


@dataclass
class _Fault:
    pattern: re.Pattern[str]
    nth: int
    seen: int = 0
    fired: bool = False


@dataclass
class FaultInjector:
    """Raises a driver ``OperationalError`` on the ``nth`` statement matching ``pattern``.

    Attached to a real engine; only statements sent after :meth:`fail_on` count. It fires once,
    then lets everything through again (so "a later attempt succeeds" can be tested).
    """

    engine: Engine
    statements: list[str] = field(default_factory=list)
    _fault: _Fault | None = None

    def __post_init__(self) -> None:
        event.listen(self.engine, "before_cursor_execute", self._before)

    def fail_on(self, pattern: str, nth: int = 1) -> None:
        self._fault = _Fault(re.compile(pattern, re.IGNORECASE), nth)

    @property
    def fired(self) -> bool:
        return self._fault is not None and self._fault.fired

    def _before(
        self,
        _conn: Any,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> tuple[str, Any]:
        self.statements.append(statement)
        fault = self._fault
        if fault is not None and not fault.fired and fault.pattern.search(statement):
            fault.seen += 1
            if fault.seen == fault.nth:
                fault.fired = True
                dbapi = self.engine.dialect.loaded_dbapi
                raise dbapi.OperationalError(f"injected fault: {statement.split()[:3]}")
        return statement, parameters


# -- PostgreSQL ---------------------------------------------------------------------------------


def _admin_url() -> URL:
    dsn = os.environ.get("STRONGROOM_TEST_PG_DSN") or DEFAULT_PG_DSN
    if "://" in dsn:
        return make_url(dsn)
    parts = {k: str(v) for k, v in psycopg.conninfo.conninfo_to_dict(dsn).items()}
    return URL.create(
        "postgresql",
        username=parts.get("user"),
        password=parts.get("password"),
        host=parts.get("host"),
        port=int(parts["port"]) if "port" in parts else None,
        database=parts.get("dbname", "postgres"),
    )


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class PgServer:
    """A reachable PostgreSQL on which this session creates (and later drops) databases."""

    def __init__(self, admin: URL) -> None:
        self.admin = admin
        self._created: list[str] = []
        self._engines: list[Engine] = []

    def create_database(self) -> str:
        """A fresh, uniquely named database; returns its SQLAlchemy URL."""
        name = f"strongroom_test_{secrets.token_hex(6)}"
        with psycopg.connect(_libpq(self.admin), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
        self._created.append(name)
        return _libpq(self.admin.set(database=name))

    def track(self, engine: Engine) -> Engine:
        """Dispose ``engine`` before its database is dropped."""
        self._engines.append(engine)
        return engine

    def reset_schema(self, url: str) -> None:
        """Empty a database this session created (drop and recreate ``public``)."""
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")

    def drop_all(self) -> None:
        for engine in self._engines:
            engine.dispose()
        with psycopg.connect(_libpq(self.admin), autocommit=True) as conn:
            for name in self._created:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL, or a skip explaining how to provide one."""
    admin = _admin_url()
    try:
        psycopg.connect(_libpq(admin), connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        shown = admin.render_as_string(hide_password=True)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        pytest.skip(f"PostgreSQL not reachable at {shown}; set STRONGROOM_TEST_PG_DSN ({first})")
    server = PgServer(admin)
    try:
        yield server
    finally:
        server.drop_all()


@pytest.fixture(scope="session")
def pg_session_url(pg_server: PgServer) -> str:
    """The database this session's PostgreSQL tests share (its schema is reset per test)."""
    return pg_server.create_database()


# -- backends -----------------------------------------------------------------------------------


@dataclass
class Backend:
    """One storage backend under test: its URL, an engine on it, and (faulty only) the fault."""

    name: str
    url: str
    engine: Engine
    faults: FaultInjector | None = None


def _open_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if name == "postgresql":
        pg: PgServer = request.getfixturevalue("pg_server")
        url: str = request.getfixturevalue("pg_session_url")
        pg.reset_schema(url)
        return Backend(name, url, pg.track(open_engine(url)))
    url = sqlite_url(str(tmp_path / "strongroom.db"))
    engine = open_engine(url)
    faults = FaultInjector(engine) if name == "faulty" else None
    return Backend(name, url, engine, faults)


@pytest.fixture(params=["sqlite", "postgresql", "faulty"])
def empty_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A backend with an empty database (no schema yet)."""
    backend = _open_backend(request.param, request, tmp_path)
    try:
        yield backend
    finally:
        backend.engine.dispose()


@pytest.fixture
def backend(empty_backend: Backend) -> Backend:
    """A backend with every migration applied."""
    apply_migrations(empty_backend.engine, lambda: T0)
    return empty_backend


# -- a whole service over a faulty engine --------------------------------------------------------


@dataclass
class FaultyService:
    """The composed service (``server.build``) with a fault injector on its one engine."""

    runtime: Runtime
    faults: FaultInjector
    clock: ManualClock


@pytest.fixture(params=["sqlite", "postgresql"], ids=["faulty-sqlite", "faulty-postgresql"])
def faulty_service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FaultyService]:
    """``build(Config(...))`` on SQLite or PostgreSQL, with a :class:`FaultInjector` attached."""
    database_url = None
    if request.param == "postgresql":
        pg: PgServer = request.getfixturevalue("pg_server")
        database_url = request.getfixturevalue("pg_session_url")
        pg.reset_schema(database_url)
    clock = ManualClock(T0)
    runtime = build(Config(data_dir=tmp_path / "data", database_url=database_url), clock=clock)
    ensure_admin(runtime.config.data_dir, runtime.identities, runtime.roles, ACCOUNT, "us-east-1")
    engine = runtime.kms.engine
    try:
        yield FaultyService(runtime, FaultInjector(engine), clock)
    finally:
        engine.dispose()


#: the harness scripts (pg_kill.py's own PostgreSQL cluster, crash_kill.py, ...)
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def no_postgres_server(*names: str) -> str | None:
    """Why a PostgreSQL cluster of the test's own cannot run (a server binary of ``names`` is
    missing), or None."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    from pg_kill import pg_bin

    try:
        for name in names:
            pg_bin(name)
    except SystemExit as exc:
        return str(exc)
    return None
