"""The trail's SQLite file: created with large pages; a file made before keeps its own."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from strongroom.audit.events import Columns
from strongroom.audit.store import (
    TRAIL_FILE,
    TRAIL_PAGE_SIZE,
    NewEntry,
    TrailStore,
    chain_entries,
    open_trail_engine,
)
from strongroom.crypto.audit_sign import load_or_create_signer


def _pragma(path: Path, name: str) -> object:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(f"PRAGMA {name}").fetchone()[0]


def _ingest_two(data_dir: Path) -> list[int]:
    engine = open_trail_engine(data_dir, None)
    store = TrailStore(engine, load_or_create_signer(data_dir))
    try:
        store.ensure_head()
        seq, chain = store.head()
        columns = Columns("e", 1.0, "Encrypt", "kms.amazonaws.com", False, "u", "AK", "", "")
        entries = chain_entries(seq, chain, [NewEntry("event", b"{}", columns)] * 2)
        store.ingest(lambda: entries, chained_by_us=True)
        return [row.seq for row in store.entries()]
    finally:
        store.close()
        engine.dispose()


def test_a_new_trail_file_has_large_pages_and_wal(tmp_path: Path) -> None:
    assert _ingest_two(tmp_path) == [1, 2]
    assert _pragma(tmp_path / TRAIL_FILE, "page_size") == TRAIL_PAGE_SIZE == 32768
    assert _pragma(tmp_path / TRAIL_FILE, "journal_mode") == "wal"


def test_a_trail_file_made_with_small_pages_keeps_them_and_works(tmp_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / TRAIL_FILE)) as db:
        db.execute("PRAGMA page_size=4096")
        db.execute("CREATE TABLE made_before (x INTEGER)")
    assert _ingest_two(tmp_path) == [1, 2]
    assert _pragma(tmp_path / TRAIL_FILE, "page_size") == 4096
