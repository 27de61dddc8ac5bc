"""The trail writer's journal: where a call's entry is durable before its response leaves.

With the trail in SQLite, the writer process (:mod:`strongroom.audit.writer`) numbers and
chains each batch of entries itself and makes it durable by appending it to this file
(``<data-dir>/audit.journal.<n>``): one ``write`` and one ``fdatasync`` per batch, instead of a
SQLite transaction with its B-tree and index pages. The entries reach the trail's tables
(``audit_events``, one signed digest per ingestion) in larger batches, by
:meth:`~strongroom.audit.store.TrailStore.ingest`: the writer ingests once a few hundred
entries or a quarter of a second have gathered, when it stops and when it starts (after a
crash); readers (LookupEvents, ``strongroom audit``) ingest what is there before they read,
so they never miss an answered call. Ingestion is idempotent (entries at or below the head are
skipped) and checks that the entries continue the hash chain. Once every entry in the file is
in the tables, the writer deletes the file (see :class:`Journal` for the segments).

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

__all__ = ["Journal", "catch_up"]

_PREFIX = "audit.journal."
_LEN = struct.Struct(">I")
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[tuple[int, str, bytes, str, tuple[Any, ...]]])


class Journal:
    """One data directory's journal: numbered segment files ``audit.journal.<n>``, appended to
    one at a time; :meth:`rotate` starts the next, so that a finished segment can be ingested
    while batches go on to the new one, and then be deleted. A new :class:`Journal` never
    appends to a segment an earlier writer left (its tail may be cut short)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        existing = self.segments()
        self._number = _number(existing[-1]) + 1 if existing else 1
        self._fd: int | None = None

    def segments(self) -> list[Path]:
        """The segment files there are, oldest first."""
        found = [p for p in self.data_dir.glob(_PREFIX + "*") if p.name[len(_PREFIX) :].isdigit()]
        return sorted(found, key=_number)

    @property
    def current(self) -> Path:
        return self.data_dir / f"{_PREFIX}{self._number}"

    def append(self, entries: Sequence[ChainedEntry]) -> None:
        """Write one frame to the current segment and wait until it is on disk. On failure
        the segment is cut back to where it was (or the error is raised again, and the caller
        must not go on appending)."""
        payload = _encoder.encode(
            [
                (e.seq, e.kind, e.body, e.hash,
                 (c.event_id, c.event_time, c.event_name, c.event_source, c.read_only,
                  c.username, c.access_key_id, c.resource_type, c.resource_name))
                for e in entries
                for c in (e.columns,)
            ]
        )  # fmt: skip
        if self._fd is None:
            flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
            self._fd = os.open(self.current, flags, 0o600)
        fd = self._fd
        size = os.lseek(fd, 0, os.SEEK_END)
        try:
            written = os.write(fd, _LEN.pack(len(payload)) + payload)
            if written != _LEN.size + len(payload):
                raise OSError("short write to the audit journal")
            os.fdatasync(fd)
        except OSError:
            os.ftruncate(fd, size)
            raise

    def rotate(self) -> None:
        """Go on in a new segment; every earlier one is finished."""
        self.close()
        self._number += 1

    def read(self, segments: Sequence[Path] | None = None) -> list[ChainedEntry]:
        """Every entry of the complete frames in ``segments`` (default: all), in order."""
        entries: list[ChainedEntry] = []
        for path in self.segments() if segments is None else segments:
            entries += _read_segment(path)
        return entries

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _number(path: Path) -> int:
    return int(path.name[len(_PREFIX) :])


def _read_segment(path: Path) -> list[ChainedEntry]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []  # ingested and deleted meanwhile
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


def catch_up(store: TrailStore, data_dir: Path) -> int:
    """Bring the trail's tables up to date with the journal, if there is one (readers call
    this before they read); return the head's seq, or -1 if there was nothing to do. The
    store's connection is closed afterwards: readers ingest seldom."""
    journal = Journal(data_dir)
    if not journal.segments():
        return -1
    try:
        return store.ingest(journal.read)
    finally:
        store.close()
