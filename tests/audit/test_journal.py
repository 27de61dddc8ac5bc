"""The writer's journal: a call is durable there before it is answered, readers and a restarted
writer bring the trail's tables up to date from it, and a forged journal is refused."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import struct
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from strongroom.audit.events import Columns, iso_time
from strongroom.audit.ingest import Ingester
from strongroom.audit.journal import SPARE_BYTES, Journal, catch_up
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
    """Events whose indexed columns agree with their bodies, as verify requires."""
    out = []
    for i in range(start, start + n):
        columns = Columns(
            f"id-{i}", 1.0e9 + i, "Encrypt", "kms.amazonaws.com", True, "", "", "", ""
        )
        body = json.dumps({
            "userIdentity": {"type": "Unknown", "accessKeyId": ""}, "eventID": f"id-{i}",
            "eventTime": iso_time(1.0e9 + i), "eventName": "Encrypt",
            "eventSource": "kms.amazonaws.com", "readOnly": True, "resources": [], "n": i,
        })  # fmt: skip
        out.append(NewEntry("event", body.encode(), columns))
    return out


def _store(data: Path) -> TrailStore:
    store = TrailStore(open_trail_engine(data, None), load_or_create_signer(data))
    store.ensure_head()
    return store


def test_frames_segments_torn_tail_and_idempotent_ingestion(tmp_path: Path) -> None:
    store, journal = _store(tmp_path), Journal(tmp_path)
    first = chain_entries(*store.head(), _entries(3))
    second = chain_entries(first[-1].seq, first[-1].hash, _entries(2, 3))
    journal.append(first)
    journal.rotate()
    journal.append(second)
    with open(journal.current, "ab") as raw:  # a frame cut short by a crash
        raw.write(b"\x00\x00\x01\x00\x93\x01")
    assert [p.name for p in journal.segments()] == ["audit.journal.1", "audit.journal.2"]
    assert [e.seq for e in journal.read()] == [1, 2, 3, 4, 5]
    assert journal.read()[4].columns.event_id == "id-4"
    assert catch_up(store, tmp_path) == 5
    assert catch_up(store, tmp_path) == 5  # nothing twice
    report = verify_trail(store, load_or_create_signer(tmp_path).verifier())
    assert report.ok and report.entries == 5 and report.digests == 1
    # a new writer's journal never appends to a segment an earlier one left
    assert Journal(tmp_path).current.name == "audit.journal.3"


def test_a_journal_that_does_not_continue_the_chain_is_refused(tmp_path: Path) -> None:
    store, journal = _store(tmp_path), Journal(tmp_path)
    good = chain_entries(*store.head(), _entries(2))
    journal.append(good)
    forged = chain_entries(good[-1].seq, "f" * 64, _entries(1, 2))  # not chained to entry 2
    journal.append(forged)
    with pytest.raises(ChainBroken) as info:
        catch_up(store, tmp_path)
    assert info.value.seq == 3
    assert store.head()[0] == 0  # all or nothing


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_ingester_moves_segments_in_the_background_and_fails_closed(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ingester = Ingester(store, Journal(tmp_path), seconds=300, entries=3)
    head = ingester.start()

    def append(entries: list[NewEntry]) -> None:
        nonlocal head
        chained = chain_entries(*head, entries)
        ingester.journal.append(chained)
        ingester.added(chained)
        head = (chained[-1].seq, chained[-1].hash)

    def ticked(condition: Callable[[], bool]) -> Callable[[], bool]:
        """``condition``, checked after a tick of the ingester."""

        def check() -> bool:
            ingester.tick()
            return condition()

        return check

    append(_entries(3))
    ingester.tick()  # due: 3 entries; a new segment takes the next batches
    append(_entries(1, 3))
    _wait(ticked(lambda: store.head()[0] == 3), "the first batch was not ingested")
    _wait(lambda: len(ingester.journal.segments()) == 1, "the ingested segment was not deleted")
    assert [e.seq for e in ingester.journal.read()] == [4]  # the new segment's
    # the trail's tables cannot be written: the ingester fails, and says so until they can
    with sqlite3.connect(tmp_path / "audit.db") as conn:
        conn.execute("ALTER TABLE audit_events RENAME TO audit_events_away")
    append(_entries(2, 4))
    _wait(ticked(lambda: ingester.failed), "the failed ingestion went unnoticed")
    with sqlite3.connect(tmp_path / "audit.db") as conn:
        conn.execute("ALTER TABLE audit_events_away RENAME TO audit_events")
    _wait(ticked(lambda: not ingester.failed), "the retry did not succeed")
    assert store.head()[0] == 6 and ingester.journal.segments() == []
    ingester.finish()
    report = verify_trail(store, load_or_create_signer(tmp_path).verifier())
    assert report.ok and report.entries == 6, report


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
        assert sum(p.stat().st_size for p in Journal(data).segments()) > 0
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
        assert Journal(data).segments() == []
    proc = audit_cli(data, "verify")
    assert proc.returncode == 0 and "OK:" in proc.stdout, proc.stdout + proc.stderr
    # a stopped serve leaves an empty journal; one that continues nothing is reported
    journal = Journal(data)
    journal.append(chain_entries(999, "0" * 64, _entries(1)))
    proc = audit_cli(data, "verify")
    assert proc.returncode == 1 and "does not continue" in proc.stderr, proc.stderr


def test_segments_are_recycled_and_what_a_file_held_before_is_never_read(
    tmp_path: Path,
) -> None:
    store, journal = _store(tmp_path), Journal(tmp_path)
    first = chain_entries(*store.head(), _entries(3))
    journal.append(first[:2])
    journal.append(first[2:])
    journal.rotate()
    old = journal.segments()[0]
    old_bytes = old.read_bytes()
    assert old_bytes[:4] == b"SRJ2"
    assert catch_up(store, tmp_path) == 3
    journal.recycle(old)
    spare = tmp_path / "audit.journal.spare"
    assert not old.exists() and spare.stat().st_size == SPARE_BYTES
    inode = spare.stat().st_ino
    # the next segment is the spare, written over in place: only its own frame is read
    second = chain_entries(first[-1].seq, first[-1].hash, _entries(1, 3))
    journal.append(second)
    assert journal.current.stat().st_ino == inode and not spare.exists()
    assert journal.current.stat().st_size == SPARE_BYTES
    assert [e.seq for e in journal.read()] == [4]
    # frames written under another segment number fail their CRC, even whole and in place
    (tmp_path / "audit.journal.9").write_bytes(struct.pack(">4sQ", b"SRJ2", 9) + old_bytes[12:])
    assert [e.seq for e in journal.read()] == [4]
    # and a file whose header names another segment is nothing
    (tmp_path / "audit.journal.9").write_bytes(old_bytes)
    assert [e.seq for e in journal.read()] == [4]
    (tmp_path / "audit.journal.9").unlink()
    assert catch_up(store, tmp_path) == 4
    # a second finished segment, while there is a spare already, is deleted
    journal.rotate()
    journal.append(chain_entries(*store.head(), _entries(1, 4)))
    journal.rotate()
    assert catch_up(store, tmp_path) == 5
    journal.recycle(journal.segments()[0])
    journal.recycle(journal.segments()[0])
    assert journal.segments() == [] and spare.exists()
    assert {p.name for p in tmp_path.glob("audit.journal.*")} == {"audit.journal.spare"}


def test_segments_of_the_first_format_are_read(tmp_path: Path) -> None:
    store = _store(tmp_path)
    chained = chain_entries(*store.head(), _entries(2))
    payload = msgspec.msgpack.encode(
        [
            (e.seq, e.kind, e.body, e.hash, (f"id-{e.seq}", 1.0e9, "Encrypt",
             "kms.amazonaws.com", True, "", "", "", ""))
            for e in chained
        ]
    )  # fmt: skip
    legacy = struct.pack(">I", len(payload)) + payload
    (tmp_path / "audit.journal.4").write_bytes(legacy + legacy[:7])  # and a torn tail
    assert [e.seq for e in Journal(tmp_path).read()] == [1, 2]
    assert catch_up(store, tmp_path) == 2
    assert Journal(tmp_path).current.name == "audit.journal.5"


def test_a_segment_is_written_synchronously(tmp_path: Path) -> None:
    """Each append is one write to a file opened O_DSYNC: durable when the write returns (no
    fdatasync follows it, so without the flag an acknowledged call could be lost)."""
    journal = Journal(tmp_path)
    journal.append(chain_entries(0, "0" * 64, _entries(1)))
    assert journal._fd is not None
    assert fcntl.fcntl(journal._fd, fcntl.F_GETFL) & os.O_DSYNC == os.O_DSYNC
    journal.close()
