"""The trail writer's journal: where a call's entry is durable before its response leaves.

With the trail in SQLite, the writer process (:mod:`strongroom.audit.writer`) numbers and
chains each batch of entries itself and makes it durable by writing it to this file
(``<data-dir>/audit.journal.<n>``): one ``pwrite`` per batch to a file opened ``O_DSYNC``, so
the write returns once the batch is on disk, instead of a SQLite transaction with its B-tree and
index pages. (``O_DSYNC`` in place of a ``pwrite`` and an ``fdatasync``: one system call less
per batch and a cheaper path through the kernel, +6 % Encrypt throughput with two workers in
two interleaved A/B runs of 6 and 8 rounds on the 2-CPU VM.) The entries reach the trail's tables
(``audit_events``, one signed digest per ingestion) in larger batches, by
:meth:`~strongroom.audit.store.TrailStore.ingest`: the writer ingests once a few hundred
entries or a quarter of a second have gathered, when it stops and when it starts (after a
crash); readers (LookupEvents, ``strongroom audit``) ingest what is there before they read,
so they never miss an answered call. Ingestion is idempotent (entries at or below the head are
skipped) and checks that the entries continue the hash chain.

Segments are recycled. Once every entry of a finished segment is in the tables, the writer's
ingestion thread turns the file into ``audit.journal.spare`` (zero-filled up to
:data:`SPARE_BYTES`, synced), and the next segment begins as that file, written over in
place. A synchronous write that neither grows the file nor allocates blocks flushes the data
only, without a commit of the file system's own journal: on ext4 it takes about half the CPU
and half the time of one after an append.

Format: a header ``b"SRJ2" || u64 segment number`` (big-endian), then one frame per batch,
``u32 length || u32 CRC-32 of (segment number || payload) || payload``, the payload msgpack
``[[seq, kind, body, [columns...], hash], ...]``. Reading stops at the first frame that is cut
short, empty or fails its CRC: a frame a crash cut short was never acknowledged, and whatever
a recycled file held before was written under another segment number, so it never passes.
A whole frame of the segment's own *after* such a frame is another matter: frames are written
one after the other, each only once the one before it is on disk, and a writer never appends
after a failed write, so a bad frame with a good one after it was acknowledged and has been
damaged since (a bad sector, a stray write). Reading it raises :class:`JournalDamaged` instead
of ending the segment there, and the writer refuses calls rather than go on numbering over the
lost records (docs/monitoring.md, "A damaged journal").
Segments of the first format (frames ``u32 length || payload``, no header, the payload
``[[seq, kind, body, hash, [columns...]], ...]``), which a writer of an earlier version may
have left behind, are read as well.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from strongroom.audit.events import Columns
from strongroom.audit.store import ChainedEntry, TrailStore
from strongroom.files import sync_directory

__all__ = ["SPARE_BYTES", "Journal", "JournalDamaged", "catch_up"]

#: the size a recycled segment is zero-filled to: a quarter second of a busy writer, and more
SPARE_BYTES = 4 << 20
_PREFIX = "audit.journal."
_SPARE = _PREFIX + "spare"
_FILLING = _PREFIX + "filling"
_MAGIC = b"SRJ2"
_HEADER = struct.Struct(">4sQ")
_FRAME = struct.Struct(">II")
_NUMBER = struct.Struct(">Q")
_LEGACY = struct.Struct(">I")
_ZEROS = bytes(256 << 10)
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[ChainedEntry])
_legacy_decoder = msgspec.msgpack.Decoder(list[tuple[int, str, bytes, str, tuple[Any, ...]]])
#: how a frame's payload begins: a msgpack array (of up to 15, 65,535 or more entries; its
#: header's length and first byte) whose first element is an array of five (an entry)
_ARRAYS = ((1, range(0x91, 0xA0)), (3, (0xDC,)), (5, (0xDD,)))
_ENTRY = b"\x95"


class JournalDamaged(Exception):
    """A segment holds a frame that fails its check with a whole frame of its own after it:
    a batch that was acknowledged is no longer readable."""

    def __init__(self, path: Path, offset: int, later: int) -> None:
        super().__init__(
            f"{path.name} is damaged at byte {offset}: that frame fails its check and a whole "
            f"frame of the same segment follows at byte {later}, so records that were "
            "acknowledged cannot be read"
        )
        self.path, self.offset, self.later = path, offset, later


class Journal:
    """One data directory's journal: numbered segment files ``audit.journal.<n>``, written one
    at a time; :meth:`rotate` starts the next, so that a finished segment can be ingested while
    batches go on to the new one, and then be recycled (:meth:`recycle`). A new
    :class:`Journal` never writes to a segment an earlier writer left (its tail may be cut
    short). :meth:`append` and :meth:`rotate` belong to one thread, :meth:`recycle` may run on
    another."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._number = self._highest() + 1
        self._fd: int | None = None
        self._offset = 0
        self._spare_lock = threading.Lock()

    def segments(self) -> list[Path]:
        """The segment files there are, oldest first."""
        found = [p for p in self.data_dir.glob(_PREFIX + "*") if p.name[len(_PREFIX) :].isdigit()]
        return sorted(found, key=_number)

    def _highest(self) -> int:
        """The highest segment number any file here was written under: the segments', and the
        spare's (or one being made spare), whose frames stay past what is written over them. A
        number is never used twice, so those frames never pass a new segment's CRC."""
        numbers = [_number(path) for path in self.segments()]
        for name in (_SPARE, _FILLING):
            with contextlib.suppress(OSError), open(self.data_dir / name, "rb") as spare:
                head = spare.read(_HEADER.size)
                if len(head) == _HEADER.size and head[:4] == _MAGIC:
                    numbers.append(_HEADER.unpack(head)[1])
        return max(numbers, default=0)

    @property
    def current(self) -> Path:
        return self.data_dir / f"{_PREFIX}{self._number}"

    def append(self, entries: Sequence[ChainedEntry]) -> None:
        """Write one frame to the current segment; it is on disk when this returns. On failure
        the frame is voided (or the error is raised again, and the caller must not go on
        appending)."""
        payload = _encoder.encode(entries)  # named tuples: [seq, kind, body, [columns], hash]
        salt = _NUMBER.pack(self._number)
        frame = _FRAME.pack(len(payload), zlib.crc32(payload, zlib.crc32(salt))) + payload
        if self._fd is None:
            self._fd = self._open()
            self._offset = 0
        at = self._offset
        if at == 0:
            frame = _HEADER.pack(_MAGIC, self._number) + frame
        try:
            if os.pwrite(self._fd, frame, at) != len(frame):  # O_DSYNC: durable on return
                raise OSError("short write to the audit journal")
        except OSError:
            with contextlib.suppress(OSError):
                os.pwrite(self._fd, bytes(_HEADER.size if at == 0 else _FRAME.size), at)
            raise
        self._offset = at + len(frame)

    def _open(self) -> int:
        """The current segment's file: the spare if there is one, else a new file. Either way
        its name is made durable (the directory synced) before anything is written to it: an
        ``O_DSYNC`` write makes the data durable, not the name of a file just created or
        renamed, and without the name a power cut loses acknowledged records (POSIX promises
        no more; ext4 and XFS happen to commit the name with the write, scripts/power_loss.py
        ``--metadata dirsync`` found the loss in about one cut in five)."""
        with self._spare_lock, contextlib.suppress(FileNotFoundError):
            os.rename(self.data_dir / _SPARE, self.current)
        fd = os.open(self.current, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_DSYNC, 0o600)
        try:
            sync_directory(self.data_dir)
        except OSError:
            os.close(fd)
            raise
        return fd

    def recycle(self, segment: Path) -> None:
        """``segment`` is in the trail's tables: make it the spare (zero-filled up to
        :data:`SPARE_BYTES` and synced first), or delete it if there is a spare already."""
        filling = self.data_dir / _FILLING
        try:
            os.rename(segment, filling)
        except FileNotFoundError:
            return
        try:
            if not (self.data_dir / _SPARE).exists():
                _fill(filling, SPARE_BYTES)
                with self._spare_lock:
                    if not (self.data_dir / _SPARE).exists():
                        os.rename(filling, self.data_dir / _SPARE)
        finally:
            filling.unlink(missing_ok=True)

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


def _fill(path: Path, size: int) -> None:
    """Zero-fill ``path`` up to ``size`` bytes (what it holds stays) and sync it."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        at = os.fstat(fd).st_size
        while at < size:
            at += os.pwrite(fd, _ZEROS[: size - at], at)
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _read_segment(path: Path) -> list[ChainedEntry]:
    """The entries of ``path``; :class:`JournalDamaged` only if two reads find the same frame
    bad with a whole one after it. A reader's one read of the file can overlap two appends
    of a running writer and see the second without the first, but the first was whole before
    the second began, so a read after that one sees it whole."""
    seen = -1
    for _ in range(8):
        try:
            return _read_once(path)
        except JournalDamaged as exc:
            if exc.offset <= seen:
                raise
            seen = exc.offset
    return _read_once(path)


def _read_once(path: Path) -> list[ChainedEntry]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []  # ingested and recycled meanwhile
    if data[:4] != _MAGIC:
        return _read_legacy(data)
    if len(data) < _HEADER.size or _HEADER.unpack_from(data)[1] != _number(path):
        return []  # recycled meanwhile, or nothing written to it yet
    salt = zlib.crc32(data[4 : _HEADER.size])
    entries: list[ChainedEntry] = []
    at = _HEADER.size
    while (end := _whole_frame(data, at, salt)) is not None:
        try:
            entries += _decoder.decode(memoryview(data)[at + _FRAME.size : end])
        except msgspec.DecodeError:
            break
        at = end
    # the end, a frame a crash cut short (never acknowledged), or what the file held before
    # under another segment number; but not if a whole frame of this segment follows
    later = _later_frame(data, at, salt)
    if later is not None:
        raise JournalDamaged(path, at, later)
    return entries


def _later_frame(data: bytes, after: int, salt: int) -> int | None:
    """Where a whole frame of this segment (``salt``) starts after ``after``, if one does: only
    where a payload could begin is a frame checked (a scan of a 4 MiB spare full of frames of
    its earlier segment takes milliseconds, not the seconds of a check at every byte)."""
    first = after + _FRAME.size + 1  # where the earliest later payload could begin
    at = data.find(_ENTRY, first + 1)
    while at >= 0:
        for size, kinds in _ARRAYS:
            if at - size >= first and data[at - size] in kinds:
                start = at - size - _FRAME.size
                if _whole_frame(data, start, salt) is not None:
                    return start
        at = data.find(_ENTRY, at + 1)
    return None


def _whole_frame(data: bytes, at: int, salt: int) -> int | None:
    """Where the frame at ``at`` ends if it is whole and passes its CRC, else None."""
    if at + _FRAME.size > len(data):
        return None
    size, crc = _FRAME.unpack_from(data, at)
    end = at + _FRAME.size + size
    if size == 0 or end > len(data):
        return None
    return end if zlib.crc32(memoryview(data)[at + _FRAME.size : end], salt) == crc else None


def _read_legacy(data: bytes) -> list[ChainedEntry]:
    """The frames of a segment in the first format (``u32 length || payload``)."""
    entries: list[ChainedEntry] = []
    at = 0
    while at + _LEGACY.size <= len(data):
        (size,) = _LEGACY.unpack_from(data, at)
        end = at + _LEGACY.size + size
        if end > len(data):
            break  # cut short by a crash: never acknowledged
        try:
            frame = _legacy_decoder.decode(data[at + _LEGACY.size : end])
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
