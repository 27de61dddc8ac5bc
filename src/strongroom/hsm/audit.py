"""The HSM audit log (cloudhsm.md §5.1): always on, sealed, hash-chained, gapless.

Records are grouped into blocks: each block is sealed under the node's audit sub-key with the
SHA-256 of the previous sealed block as associated data, so a removed, reordered or altered block
does not open. Sequence numbers are 64-bit, start at 0 and continue across restarts without gaps;
the reboot counter rises by one per node start. No record carries key material, data or passwords.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import msgspec

from strongroom.crypto.hsm_seal import SealBroken, Sealer

__all__ = ["AuditCorrupt", "AuditLog", "AuditRecord"]

_LEN = struct.Struct(">I")
_GENESIS = b"\x00" * 32


class AuditRecord(msgspec.Struct, array_like=True):
    """One audit event."""

    seq: int
    reboot: int
    time_us: int
    session: int
    user: str
    user_type: str
    opcode: str
    response: str
    code: int
    log_type: str
    keys: list[int]
    detail: str = ""


class _Block(msgspec.Struct, array_like=True):
    records: list[AuditRecord]


class AuditCorrupt(Exception):
    """The audit log failed verification (altered, truncated, reordered or gapped)."""


class AuditLog:
    """Append-only writer and verifying reader of one node's audit log file."""

    def __init__(self, path: Path, sealer: Sealer) -> None:
        self._path = path
        self._sealer = sealer
        self._pending: list[AuditRecord] = []
        self._sync_pending = False
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(_Block)
        self.next_seq = 0
        self._last_hash = _GENESIS
        for _ in self._blocks():
            pass
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._fd = fd

    def _blocks(self) -> Iterator[list[AuditRecord]]:
        """Verify the whole file, yielding each block's records; sets next_seq and tail hash."""
        if not self._path.exists():
            return
        data = self._path.read_bytes()
        pos, prev, seq = 0, _GENESIS, 0
        while pos < len(data):
            if pos + _LEN.size > len(data):
                raise AuditCorrupt("audit log ends inside a block header")
            (size,) = _LEN.unpack_from(data, pos)
            blob = data[pos + _LEN.size : pos + _LEN.size + size]
            if len(blob) != size:
                raise AuditCorrupt("audit log ends inside a block")
            try:
                block = self._decoder.decode(self._sealer.open(blob, b"audit:" + prev))
            except SealBroken:
                raise AuditCorrupt(f"audit block at offset {pos} failed authentication") from None
            for rec in block.records:
                if rec.seq != seq:
                    raise AuditCorrupt(f"audit sequence gap: expected {seq}, found {rec.seq}")
                seq += 1
            prev = hashlib.sha256(blob).digest()
            pos += _LEN.size + size
            self.next_seq, self._last_hash = seq, prev
            yield block.records

    def append(self, record: AuditRecord, sync: bool = False) -> AuditRecord:
        """Queue a record, assigning its sequence number; written by :meth:`flush`."""
        record.seq = self.next_seq
        self.next_seq += 1
        self._pending.append(record)
        self._sync_pending = self._sync_pending or sync
        return record

    @property
    def has_pending(self) -> bool:
        """True if records wait for :meth:`flush`."""
        return bool(self._pending)

    def flush(self) -> None:
        """Seal pending records into one block and append it (fsync if any asked for it)."""
        if not self._pending:
            return
        plain = self._encoder.encode(_Block(self._pending))
        blob = self._sealer.seal(plain, b"audit:" + self._last_hash)
        os.write(self._fd, _LEN.pack(len(blob)) + blob)
        if self._sync_pending:
            os.fsync(self._fd)
        self._last_hash = hashlib.sha256(blob).digest()
        self._pending = []
        self._sync_pending = False

    def read(self, start_seq: int, limit: int) -> list[AuditRecord]:
        """Up to ``limit`` verified records from ``start_seq`` on (flushed ones only)."""
        out: list[AuditRecord] = []
        saved = (self.next_seq, self._last_hash)
        try:
            for records in self._blocks():
                for rec in records:
                    if rec.seq >= start_seq and len(out) < limit:
                        out.append(rec)
        finally:
            self.next_seq, self._last_hash = saved
        return out

    def close(self) -> None:
        """Flush and close the file."""
        self.flush()
        os.close(self._fd)
