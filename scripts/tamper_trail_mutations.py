"""The mutations of ``scripts/tamper_trail.py`` and how each is made in a copy of the trail's
SQLite file: one byte of one stored value, or a structural change (a record deleted, swapped,
inserted, the tail or a digest cut, a digest replaced by a re-signed twin), with what a forger
without the signing key can do after it (re-chain the records' hashes)."""

from __future__ import annotations

import sqlite3
import struct
from typing import NamedTuple

from strongroom.audit.chain import GENESIS, entry_hash
from strongroom.audit.events import iso_time

#: values verify reads decoded: the same decoded value is the same meaning
DECODED = {("audit_digests", "signature"), ("audit_head", "hash")}


class Mutation(NamedTuple):
    kind: str  # the report's line: segment-byte, random-byte, delete, swap, ...
    op: str  # what apply() does
    table: str = ""
    seq: int = 0  # the row (record or digest seq), or the op's position
    column: str = ""
    pos: int = 0  # byte position in the value; for "insert": the copied record
    xor: int = 0  # the byte's XOR; for "wrong-key": the key's seed
    expect: int = 0  # the record verify should name


def to_bytes(value: object) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, float):
        return struct.pack(">d", value)
    if isinstance(value, int):
        return value.to_bytes(8, "big", signed=True)
    raise TypeError(f"unexpected stored value {type(value).__name__}")


def same_hex(old: object, new: object) -> bool:
    """Whether two hex strings are the same bytes (as ``bytes.fromhex`` reads them)."""
    try:
        return isinstance(new, str) and bytes.fromhex(str(old)) == bytes.fromhex(new)
    except ValueError:
        return False


def same_second(old: object, new: object) -> bool:
    """Whether an indexed time still names the same whole second (the body's precision)."""
    try:
        return iso_time(float(str(old))) == iso_time(float(str(new)))
    except (ValueError, OverflowError, OSError):  # OSError: gmtime out of range
        return False


def apply(
    conn: sqlite3.Connection, m: Mutation, twins: dict[int, tuple[str, str, str, int]] | None = None
) -> tuple[object, object] | None:
    """Make mutation ``m`` in ``conn``; for a byte, return the value's (old, new)."""
    if m.op == "byte":
        key = "id" if m.table == "audit_head" else "seq"
        where = f"FROM {m.table} WHERE {key} = ?"
        (old,) = conn.execute(f"SELECT {m.column} {where}", (m.seq,)).fetchone()
        raw = bytearray(to_bytes(old))
        raw[m.pos] ^= m.xor
        new: object
        expr = "?"
        if isinstance(old, str):
            try:
                new = raw.decode()
            except UnicodeDecodeError:  # stored as it is: a hex editor would do no less
                new, expr = bytes(raw), "CAST(? AS TEXT)"
        elif isinstance(old, float):
            (new,) = struct.unpack(">d", raw)
        else:
            new = int.from_bytes(raw, "big", signed=True)
        conn.execute(f"UPDATE {m.table} SET {m.column} = {expr} WHERE {key} = ?", (new, m.seq))
        return old, new
    events, k = "audit_events", m.seq
    if m.op in ("delete", "delete-rechain"):
        conn.execute(f"DELETE FROM {events} WHERE seq = ?", (k,))
        if m.op == "delete-rechain":
            _shift(conn, k, -1)
    elif m.op in ("swap", "swap-rechain"):
        for old_seq, new_seq in ((k, -1), (k + 1, k), (-1, k + 1)):
            conn.execute(f"UPDATE {events} SET seq = ? WHERE seq = ?", (new_seq, old_seq))
    elif m.op in ("insert", "insert-rechain", "append"):
        row = conn.execute(f"SELECT * FROM {events} WHERE seq = ?", (m.pos,)).fetchone()
        _shift(conn, k - 1, 1)
        marks = ", ".join("?" * len(row))
        conn.execute(f"INSERT INTO {events} VALUES ({marks})", (k, *row[1:]))
    elif m.op == "truncate":
        conn.execute(f"DELETE FROM {events} WHERE seq > ?", (k,))
    elif m.op in ("drop-digest", "drop-renumber", "cut", "cut-head"):
        sign = "=" if m.op.startswith("drop") else ">"
        conn.execute(f"DELETE FROM audit_digests WHERE seq {sign} ?", (k,))
        if m.op == "drop-renumber":  # the later digests numbered on: no gap in digest numbers
            _shift(conn, k, -1, "audit_digests")
        if m.op.startswith("cut"):
            conn.execute(f"DELETE FROM {events} WHERE seq > ?", (m.pos,))
        if m.op == "cut-head":  # and the head row rewritten to the cut: a consistent trail
            (last_hash,) = conn.execute(f"SELECT hash FROM {events} WHERE seq = ?", (m.pos,))
            (digest_hash_,) = conn.execute("SELECT hash FROM audit_digests WHERE seq = ?", (k,))
            conn.execute("UPDATE audit_head SET seq = ?, hash = ?, digest_seq = ?, "
                         "digest_hash = ?", (m.pos, last_hash[0], k, digest_hash_[0]))  # fmt: skip
    elif m.op == "twin" and twins:
        sets = "body = ?, signature = ?, hash = ?, first_seq = ?"
        conn.execute(f"UPDATE audit_digests SET {sets} WHERE seq = ?", (*twins[k], k))
    if m.op.endswith("rechain") or m.op == "append":
        _rechain(conn)
    return None


def _shift(conn: sqlite3.Connection, after: int, by: int, table: str = "audit_events") -> None:
    """Renumber the rows after ``after`` by ``by`` (through negatives: no key is taken)."""
    conn.execute(f"UPDATE {table} SET seq = -(seq + ?) WHERE seq > ?", (by, after))
    conn.execute(f"UPDATE {table} SET seq = -seq WHERE seq < 0")


def _rechain(conn: sqlite3.Connection) -> None:
    """Recompute every record's stored hash: what a forger without the signing key can do."""
    chain, fixed = GENESIS, []
    for seq, kind, body in conn.execute("SELECT seq, kind, body FROM audit_events ORDER BY seq"):
        chain = entry_hash(chain, seq, kind, body.encode())
        fixed.append((chain, seq))
    conn.executemany("UPDATE audit_events SET hash = ? WHERE seq = ?", fixed)
