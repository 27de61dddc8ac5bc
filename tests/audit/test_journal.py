"""The writer's journal: a call is durable there before it is answered, readers and a restarted
writer bring the trail's tables up to date from it, and a forged journal is refused."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from strongroom.audit.events import Columns
from strongroom.audit.journal import JOURNAL_FILE, Journal, catch_up
from strongroom.audit.store import (
    ChainBroken,
    NewEntry,
    TrailStore,
    chain_entries,
    open_trail_engine,
)
from strongroom.audit.verify import verify_trail
from strongroom.crypto.audit_sign import load_or_create_signer
from tests.audit.conftest import audit_cli
from tests.conftest import running_server

#: the writer ingests its journal only after this long (or 512 entries) in these tests
SLOW_INGEST = {"STRONGROOM_TRAIL_INGEST_SECONDS": "300"}


def _entries(n: int, start: int = 0) -> list[NewEntry]:
    return [
        NewEntry(
            "event",
            b'{"eventName":"Encrypt","n":%d}' % i,
            Columns(f"id-{i}", 1.0e9 + i, "Encrypt", "kms.amazonaws.com", True, "", "", "", ""),
        )
        for i in range(start, start + n)
    ]


def _store(data: Path) -> TrailStore:
    store = TrailStore(open_trail_engine(data, None), load_or_create_signer(data))
    store.ensure_head()
    return store


def test_frames_torn_tail_and_idempotent_ingestion(tmp_path: Path) -> None:
    store, journal = _store(tmp_path), Journal(tmp_path / JOURNAL_FILE)
    first = chain_entries(*store.head(), _entries(3))
    second = chain_entries(first[-1].seq, first[-1].hash, _entries(2, 3))
    journal.append(first)
    journal.append(second)
    with open(journal.path, "ab") as raw:  # a frame cut short by a crash
        raw.write(b"\x00\x00\x01\x00\x93\x01")
    assert [e.seq for e in journal.read()] == [1, 2, 3, 4, 5]
    assert journal.read()[4].columns.event_id == "id-4"
    assert catch_up(store, journal.path) == 5
    assert catch_up(store, journal.path) == 5  # nothing twice
    report = verify_trail(store, load_or_create_signer(tmp_path).verifier())
    assert report.ok and report.entries == 5 and report.digests == 1
    journal.reset()
    assert journal.read() == [] and catch_up(store, journal.path) == -1


def test_a_journal_that_does_not_continue_the_chain_is_refused(tmp_path: Path) -> None:
    store, journal = _store(tmp_path), Journal(tmp_path / JOURNAL_FILE)
    good = chain_entries(*store.head(), _entries(2))
    journal.append(good)
    forged = chain_entries(good[-1].seq, "f" * 64, _entries(1, 2))  # not chained to entry 2
    journal.append(forged)
    with pytest.raises(ChainBroken) as info:
        catch_up(store, journal.path)
    assert info.value.seq == 3
    assert store.head()[0] == 0  # all or nothing


def _events(data: Path, name: str) -> int:
    with sqlite3.connect(data / "audit.db") as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM audit_events WHERE kind='event' AND event_name=?", (name,)
        ).fetchone()
    return int(row[0])


def _writer_pid(data: Path) -> int:
    return int((data / "audit-writer.pid").read_text())


def test_answered_calls_survive_a_killed_writer_and_readers_see_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data, env=SLOW_INGEST) as server:
        kms = server.client()
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        for i in range(3):
            kms.encrypt(KeyId=key, Plaintext=b"journal %d" % i)
        # answered, so durable: in the journal, not yet in the tables
        assert (data / JOURNAL_FILE).stat().st_size > 0
        assert _events(data, "Encrypt") == 0
        # a reader ingests first, so LookupEvents sees the latest calls
        found = server.client("cloudtrail").lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}]
        )["Events"]
        assert len(found) == 3
        kms.encrypt(KeyId=key, Plaintext=b"journal 3")
        kms.encrypt(KeyId=key, Plaintext=b"journal 4")
        assert _events(data, "Encrypt") == 3
        first = _writer_pid(data)
        os.kill(first, signal.SIGKILL)  # before it ingested the last two
        deadline = time.monotonic() + 20
        while not (data / "audit-writer.pid").exists() or _writer_pid(data) == first:
            assert time.monotonic() < deadline, "the trail writer was not replaced"
            time.sleep(0.1)
        # the new writer ingests what the old one left in the journal before it serves
        while _events(data, "Encrypt") != 5:
            assert time.monotonic() < deadline, "the journal was not ingested on restart"
            time.sleep(0.1)
        assert (data / JOURNAL_FILE).stat().st_size == 0
    proc = audit_cli(data, "verify")
    assert proc.returncode == 0 and "OK:" in proc.stdout, proc.stdout + proc.stderr
    # a stopped serve leaves an empty journal; one that continues nothing is reported
    journal = Journal(data / JOURNAL_FILE)
    journal.append(chain_entries(999, "0" * 64, _entries(1)))
    proc = audit_cli(data, "verify")
    assert proc.returncode == 1 and "does not continue" in proc.stderr, proc.stderr
