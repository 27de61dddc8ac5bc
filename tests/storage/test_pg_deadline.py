"""The client-side deadline of a PostgreSQL round trip (storage/pg_deadline.py), against the
session's real PostgreSQL: a statement that outlasts it fails as "the database is unavailable"
with its connection dropped, the engine goes on with a new one, and engines without a deadline
(the command-line tools', migrations) wait as long as a statement takes."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from strongroom.storage.engine import open_engine, storage_unavailable
from strongroom.storage.pg_deadline import (
    DEADLINE_ENV,
    PG_STATEMENT_DEADLINE,
    DeadlineConnection,
    statement_deadline,
)
from tests.storage.conftest import PgServer


def test_a_statement_past_the_deadline_fails_as_unavailable_and_the_engine_recovers(
    pg_server: PgServer, pg_session_url: str
) -> None:
    engine = pg_server.track(open_engine(pg_session_url, deadline=0.5))
    with engine.connect() as conn:
        assert isinstance(conn.connection.dbapi_connection, DeadlineConnection)
        assert conn.execute(text("SELECT pg_sleep(0.1), 1")).one()[1] == 1  # within it
    began = time.monotonic()
    with pytest.raises(OperationalError) as info, engine.connect() as conn:
        conn.execute(text("SELECT pg_sleep(3)"))
    took = time.monotonic() - began
    assert 0.4 < took < 2.5, took
    assert info.value.connection_invalidated
    assert storage_unavailable(info.value)
    assert "no answer within 0.5 s" in str(info.value)
    with engine.connect() as conn:  # a new connection from the pool
        assert conn.execute(text("SELECT 2")).scalar() == 2
    patient = pg_server.track(open_engine(pg_session_url))
    with patient.connect() as conn:
        assert conn.execute(text("SELECT pg_sleep(0.8), 3")).one()[1] == 3


def test_the_deadline_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEADLINE_ENV, raising=False)
    assert statement_deadline() == PG_STATEMENT_DEADLINE
    monkeypatch.setenv(DEADLINE_ENV, "2.5")
    assert statement_deadline() == 2.5
    monkeypatch.setenv(DEADLINE_ENV, "0")
    assert statement_deadline() is None
    for bad in ("soon", "-1", "nan", "4000"):
        monkeypatch.setenv(DEADLINE_ENV, bad)
        with pytest.raises(ValueError, match=DEADLINE_ENV):
            statement_deadline()
