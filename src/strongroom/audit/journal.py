"""The trail writer's journal: where a call's entry is durable before its response leaves.

With the trail in SQLite, the writer process (:mod:`strongroom.audit.writer`) numbers and
chains each batch of entries itself and makes it durable by appending it to this file
(``<data-dir>/audit.journal``): one ``write`` and one ``fdatasync`` per batch, instead of a
SQLite transaction with its B-tree and index pages. The entries reach the trail's tables
(``audit_events``, one signed digest per ingestion) in larger batches, by
:meth:`~strongroom.audit.store.TrailStore.ingest`: the writer ingests once a few hundred
entries or a quarter of a second have gathered, when it stops and when it starts (after a
crash); readers (LookupEvents, ``strongroom audit``) ingest what is there before they read,
so they never miss an answered call. Ingestion is idempotent (entries at or below the head are
skipped) and checks that the entries continue the hash chain. Once every entry in the file is
in the tables, the writer empties the file.

Format: frames ``u32 length (big-endian) || msgpack [[seq, kind, body, hash, [columns...]],
...]``, one per batch. A frame cut short by a crash was never acknowledged and is ignored.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from strongroom.audit.events import Columns
from strongroom.audit.store import ChainedEntry, TrailStore

__all__ = ["JOURNAL_FILE", "Journal", "catch_up"]

JOURNAL_FILE = "audit.journal"
_LEN = struct.Struct(">I")
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[tuple[int, str, bytes, str, tuple[Any, ...]]])


class Journal:
    """One data directory's journal file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def append(self, entries: Sequence[ChainedEntry]) -> None:
        """Write one frame and wait until it is on disk. On failure the file is cut back to
        where it was, so a failed batch leaves nothing behind (or the error is raised again,
        and the caller must not go on appending)."""
        payload = _encoder.encode(
            [
                (e.seq, e.kind, e.body, e.hash,
                 (c.event_id, c.event_time, c.event_name, c.event_source, c.read_only,
                  c.username, c.access_key_id, c.resource_type, c.resource_name))
                for e in entries
                for c in (e.columns,)
            ]
        )  # fmt: skip
        fd = self._open()
        size = os.lseek(fd, 0, os.SEEK_END)
        try:
            written = os.write(fd, _LEN.pack(len(payload)) + payload)
            if written != _LEN.size + len(payload):
                raise OSError("short write to the audit journal")
            os.fdatasync(fd)
        except OSError:
            os.ftruncate(fd, size)
            raise

    def read(self) -> list[ChainedEntry]:
        """Every entry of the complete frames in the file, in order."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        entries: list[ChainedEntry] = []
        at = 0
        while at + _LEN.size <= len(data):
            (size,) = _LEN.unpack_from(data, at)
            end = at + _LEN.size + size
            if end > len(data):
                break  # cut short by a crash: never acknowledged
            try:
                frame = _decoder.decode(data[at + _LEN.size : end])
            except msgspec.DecodeError:
                break
            entries += [
                ChainedEntry(seq, kind, body, Columns(*columns), chain)
                for seq, kind, body, chain, columns in frame
            ]
            at = end
        return entries

    def reset(self) -> None:
        """Empty the file (every entry in it is in the tables)."""
        fd = self._open()
        os.ftruncate(fd, 0)
        os.fsync(fd)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd


def catch_up(store: TrailStore, journal_path: Path) -> int:
    """Bring the trail's tables up to date with the journal, if there is one (readers call
    this before they read); return the head's seq, or -1 if there was nothing to do. The
    store's connection is closed afterwards: readers ingest seldom."""
    try:
        if journal_path.stat().st_size == 0:
            return -1
    except FileNotFoundError:
        return -1
    try:
        return store.ingest(Journal(journal_path).read)
    finally:
        store.close()
