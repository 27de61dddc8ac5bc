"""The trail's rows as stored, read for verification: byte for byte, whatever a tamperer left.

On SQLite a TEXT column can hold bytes that are not UTF-8 (and any column any type), so every
column is read as a BLOB there and decoded here: a byte that makes a value unreadable makes
that record fail its checks instead of stopping the verifier. PostgreSQL keeps its text valid,
so its columns are read as they are.

Each event row also carries indexed copies of its fields (:class:`~strongroom.audit.events.
Columns`: LookupEvents filters on them and answers ``Username``, ``AccessKeyId`` and
``Resources`` from them, ``audit export --since`` reads the time). The hash chain covers the
record's body, not these copies, so :func:`indexed_columns` derives from the body what each
copy must be, and the verifier compares them. ``event_time`` is compared to the second: the
body's ``eventTime`` has CloudTrail's precision, whole seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Engine, LargeBinary, case, cast, func, select, type_coerce
from sqlalchemy.types import NullType

from strongroom.audit.events import iso_time
from strongroom.storage.audit_schema import audit_digests, audit_events, audit_head

__all__ = [
    "DigestRow",
    "EntryRow",
    "Head",
    "indexed_columns",
    "read_digests",
    "read_entries",
    "read_head",
]

#: the indexed copies, in the table's order (between ``kind`` and ``body``)
_INDEXED = (
    "event_id", "event_time", "event_name", "event_source", "read_only", "username",
    "access_key_id", "resource_type", "resource_name",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class EntryRow:
    seq: int
    kind: str
    body: bytes
    hash: str
    #: the indexed copies as comparable values (strings, the time in whole seconds as ISO
    #: text, read_only as "true"/"false"); None where a value could not be read at all
    columns: tuple[str | None, ...] = ()


@dataclass(frozen=True, slots=True)
class DigestRow:
    seq: int
    first_seq: int
    last_seq: int
    body: bytes
    signature: str
    hash: str


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: str
    digest_seq: int
    digest_hash: str


def _raw(engine: Engine, column: Any) -> ColumnElement[Any]:
    sqlite = engine.dialect.name == "sqlite"
    if column.name == "event_time":
        # as stored, unconverted: a REAL cast to text keeps 15 digits, which rounds a time a
        # few microseconds before a whole second up to it (a false "altered" in 1 of ~10^5);
        # but text as bytes, since text that is not UTF-8 cannot be read as text at all
        as_stored = type_coerce(column, NullType())
        if not sqlite:
            return as_stored
        return case((func.typeof(column) == "text", cast(column, LargeBinary)), else_=as_stored)
    return cast(column, LargeBinary) if sqlite else column


def _text(value: object) -> str:
    """A stored value as text; bytes that are not UTF-8 become U+FFFD (never a match)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


def _int(value: object) -> int:
    """A stored integer; -1 (never a valid seq) for anything else a tamperer left."""
    try:
        return int(_text(value))
    except ValueError:
        return -1


def _comparable(name: str, value: object) -> str | None:
    text = _text(value)
    try:
        if name == "event_time":
            return iso_time(float(text))
        if name == "read_only":
            return {"1": "true", "0": "false", "True": "true", "False": "false"}.get(text)
    except (ValueError, OverflowError, OSError):  # OSError: gmtime out of range
        return None
    return text


def read_entries(engine: Engine, after: float = 0, chunk: int = 2000) -> Iterator[EntryRow]:
    """Every event row in seq order, read in chunks."""
    t = audit_events.c
    columns = (t.seq, t.kind, *(t[n] for n in _INDEXED), t.body, t.hash)
    fields = [_raw(engine, c) for c in columns]
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(*fields).where(t.seq > after).order_by(t.seq).limit(chunk)
            ).all()
        seq = 0
        for row in rows:
            raw_seq, kind, *indexed, body, hashed = row
            seq = _int(raw_seq)
            copies = tuple(_comparable(n, v) for n, v in zip(_INDEXED, indexed, strict=True))
            yield EntryRow(seq, _text(kind), _bytes(body), _text(hashed), copies)
        # SQLite keeps whatever a tamperer stores in a BIGINT key (read as -1 here); text
        # sorts after every number, so after such a seq nothing is left to page through
        if len(rows) < chunk or seq < 0:
            return
        after = seq


def read_digests(engine: Engine) -> list[DigestRow]:
    t = audit_digests.c
    columns = (t.seq, t.first_seq, t.last_seq, t.body, t.signature, t.hash)
    with engine.connect() as conn:
        rows = conn.execute(select(*[_raw(engine, c) for c in columns]).order_by(t.seq)).all()
    return [
        DigestRow(_int(seq), _int(first), _int(last), _bytes(body), _text(sig), _text(hashed))
        for seq, first, last, body, sig, hashed in rows
    ]


def read_head(engine: Engine) -> Head | None:
    t = audit_head.c
    fields = [_raw(engine, c) for c in (t.seq, t.hash, t.digest_seq, t.digest_hash)]
    with engine.connect() as conn:
        row = conn.execute(select(*fields).where(t.id == 1)).first()
    if row is None:
        return None
    return Head(_int(row[0]), _text(row[1]), _int(row[2]), _text(row[3]))


def indexed_columns(body: bytes) -> tuple[str, ...] | None:
    """What an entry's indexed copies must be, from its (verified) body; None if the body is
    not an event."""
    try:
        event = msgspec.json.decode(body)
        identity = event["userIdentity"]
        kind = identity.get("type")
        if kind == "AssumedRole":
            username = str(identity["arn"]).rsplit("/", 1)[1]
        else:
            username = identity.get("userName", "") if kind == "IAMUser" else ""
        resources = event.get("resources") or []
        resource = (resources[-1]["type"], resources[-1]["ARN"]) if resources else ("", "")
        return (
            event["eventID"],
            event["eventTime"],
            event["eventName"],
            event["eventSource"],
            "true" if event["readOnly"] else "false",
            username,
            str(identity.get("accessKeyId", ""))[:128],
            *resource,
        )
    except (msgspec.DecodeError, KeyError, IndexError, TypeError, AttributeError):
        return None
