"""Which database errors answer 503 (the storage cannot be used just now) rather than 500: the
classification the API edge applies (tests/storage/test_disk_full.py drives a real full disk
through serve)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from strongroom.storage.engine import open_engine, sqlite_url, storage_unavailable


def _raised(path: Path, statement: str, uri: str | None = None) -> BaseException:
    engine = open_engine(uri or sqlite_url(str(path)))
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    except SQLAlchemyError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{statement} did not fail")


def test_a_read_only_database_is_unavailable(tmp_path: Path) -> None:
    db = tmp_path / "ro.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    uri = f"sqlite:///file:{db}?mode=ro&uri=true"
    assert storage_unavailable(_raised(db, "INSERT INTO t VALUES (1)", uri))


def test_bad_statements_and_data_are_not(tmp_path: Path) -> None:
    db = tmp_path / "ok.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
    assert not storage_unavailable(_raised(db, "INSERT INTO t VALUES (1)"))  # constraint
    assert not storage_unavailable(_raised(db, "SELECT * FROM missing"))  # no such table
    assert not storage_unavailable(ValueError("not a database error"))


def test_a_refused_postgresql_connection_is_unavailable() -> None:
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect("host=127.0.0.1 port=1 user=nobody connect_timeout=2")
    assert storage_unavailable(info.value)
    try:
        raise RuntimeError("wrapped") from info.value
    except RuntimeError as wrapped:
        assert storage_unavailable(wrapped)
