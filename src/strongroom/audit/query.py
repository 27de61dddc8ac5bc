"""Reading events back: LookupEvents' filters, ``audit tail`` and ``audit export``.

Events come newest first for LookupEvents (as CloudTrail returns them) and oldest first for
export. Only ``event`` entries are events; ``intent`` entries (written before a state-changing
call runs) are part of the chain and of ``strongroom audit export --intents``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Engine, and_, select
from sqlalchemy.sql.elements import ColumnElement

from strongroom.storage.audit_schema import audit_events as ev

__all__ = ["ATTRIBUTES", "EventRow", "Filter", "events_since", "lookup", "tail"]

#: LookupEvents' AttributeKey -> the indexed column it filters on
ATTRIBUTES = {
    "EventId": ev.c.event_id,
    "EventName": ev.c.event_name,
    "ReadOnly": ev.c.read_only,
    "Username": ev.c.username,
    "ResourceType": ev.c.resource_type,
    "ResourceName": ev.c.resource_name,
    "EventSource": ev.c.event_source,
    "AccessKeyId": ev.c.access_key_id,
}


@dataclass(frozen=True, slots=True)
class Filter:
    attribute: str | None = None
    value: str = ""
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True, slots=True)
class EventRow:
    seq: int
    event: dict[str, Any]
    body: str
    username: str
    access_key_id: str
    resource_type: str
    resource_name: str


def _conditions(flt: Filter, intents: bool = False) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [] if intents else [ev.c.kind == "event"]
    if flt.attribute is not None:
        column = ATTRIBUTES[flt.attribute]
        if flt.attribute == "ReadOnly":
            conds.append(column == (flt.value.lower() == "true"))
        else:
            conds.append(column == flt.value)
    if flt.start is not None:
        conds.append(ev.c.event_time >= flt.start)
    if flt.end is not None:
        conds.append(ev.c.event_time <= flt.end)
    return conds


def _row(row: Any) -> EventRow:
    return EventRow(
        row.seq,
        msgspec.json.decode(row.body),
        row.body,
        row.username,
        row.access_key_id,
        row.resource_type,
        row.resource_name,
    )


def lookup(engine: Engine, flt: Filter, limit: int, before_seq: int | None) -> list[EventRow]:
    """Up to ``limit`` matching events, newest first, older than ``before_seq`` if given."""
    conds = _conditions(flt)
    if before_seq is not None:
        conds.append(ev.c.seq < before_seq)
    with engine.connect() as conn:
        rows = conn.execute(
            select(ev).where(and_(*conds)).order_by(ev.c.seq.desc()).limit(limit)
        ).all()
    return [_row(r) for r in rows]


def tail(engine: Engine, count: int) -> list[EventRow]:
    """The last ``count`` events, oldest first."""
    return list(reversed(lookup(engine, Filter(), count, None)))


def events_since(
    engine: Engine, since: float, intents: bool = False, chunk: int = 1000
) -> Iterator[EventRow]:
    """Every event (and intent entry, if asked) at or after ``since``, oldest first."""
    after = 0
    while True:
        conds = [*_conditions(Filter(start=since), intents), ev.c.seq > after]
        with engine.connect() as conn:
            rows = conn.execute(
                select(ev).where(and_(*conds)).order_by(ev.c.seq).limit(chunk)
            ).all()
        yield from (_row(r) for r in rows)
        if len(rows) < chunk:
            return
        after = rows[-1].seq
