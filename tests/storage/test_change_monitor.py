"""ChangeMonitor on real SQLite files: every commit, from any connection or process, moves the
generation; nothing else does (beyond a checkpoint); a database without WAL falls back to
``PRAGMA data_version``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.storage.engine import ChangeMonitor, sqlite_url


def _database(path: Path, wal: bool = True) -> Path:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode={'WAL' if wal else 'DELETE'}")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.commit()
    conn.close()
    return path


def _commit(path: Path, value: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO t VALUES (?)", (value,))
    conn.commit()
    conn.close()  # the last writer connection closes each time


@pytest.mark.parametrize("wal", [True, False])
def test_each_commit_moves_the_generation_and_reads_do_not(tmp_path: Path, wal: bool) -> None:
    path = _database(tmp_path / "db.sqlite", wal)
    monitor = ChangeMonitor(sqlite_url(str(path)))
    try:
        assert (monitor._shm >= 0) is wal  # the header is read where there is one
        monitor.refresh()
        seen = monitor.generation()
        reader = sqlite3.connect(path)
        for i in range(30):
            reader.execute("SELECT count(*) FROM t").fetchone()
            monitor.refresh()
            assert monitor.generation() == seen, "a read moved the generation"
            _commit(path, i)
            monitor.refresh()
            assert monitor.generation() > seen, f"commit {i} was not noticed"
            seen = monitor.generation()
        reader.close()
    finally:
        monitor.close()


def test_a_commit_by_another_process_is_noticed(tmp_path: Path) -> None:
    path = _database(tmp_path / "db.sqlite")
    monitor = ChangeMonitor(sqlite_url(str(path)))
    try:
        monitor.refresh()
        seen = monitor.generation()
        script = (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute('INSERT INTO t VALUES (1)'); c.commit()"
        )
        subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
        monitor.refresh()
        assert monitor.generation() > seen
    finally:
        monitor.close()


def test_a_checkpoint_that_restarts_the_wal_is_still_followed(tmp_path: Path) -> None:
    path = _database(tmp_path / "db.sqlite")
    monitor = ChangeMonitor(sqlite_url(str(path)))
    try:
        for i in range(5):
            _commit(path, i)
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        conn.close()
        monitor.refresh()
        seen = monitor.generation()
        _commit(path, 99)  # the first frame of a restarted WAL
        monitor.refresh()
        assert monitor.generation() > seen
    finally:
        monitor.close()


def test_between_refreshes_the_generation_is_checked_at_most_every_interval(
    tmp_path: Path,
) -> None:
    path = _database(tmp_path / "db.sqlite")
    monitor = ChangeMonitor(sqlite_url(str(path)), min_interval=3600)
    try:
        monitor.refresh()
        seen = monitor.generation()
        _commit(path, 1)
        assert monitor.generation() == seen  # within the interval: not looked at
        monitor.refresh()
        assert monitor.generation() > seen
    finally:
        monitor.close()
