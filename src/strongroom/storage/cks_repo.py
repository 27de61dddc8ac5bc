"""Custom key store repository (``kms_custom_key_stores``), over the caller's connection."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from strongroom.storage.schema import custom_key_stores as t

__all__ = [
    "StoreRow",
    "delete_store",
    "get_store",
    "insert_store",
    "list_stores",
    "stores_in_state",
    "update_if_state",
    "update_store",
]


@dataclass(frozen=True)
class StoreRow:
    store_id: str
    account_id: str
    region: str
    name: str
    cluster_id: str
    trust_anchor: str
    password_wrapped: bytes
    connection_state: str
    error_code: str | None
    created: float


def _row(r: object) -> StoreRow:
    return StoreRow(*tuple(r))  # type: ignore[arg-type]


def get_store(conn: Connection, store_id: str) -> StoreRow | None:
    r = conn.execute(select(t).where(t.c.store_id == store_id)).first()
    return None if r is None else _row(r)


def list_stores(conn: Connection, account_id: str, region: str) -> list[StoreRow]:
    query = (
        select(t)
        .where(t.c.account_id == account_id, t.c.region == region)
        .order_by(t.c.created, t.c.store_id)
    )
    return [_row(r) for r in conn.execute(query)]


def stores_in_state(conn: Connection, state: str) -> list[StoreRow]:
    """Every store (any account) in one connection state."""
    query = select(t).where(t.c.connection_state == state).order_by(t.c.created, t.c.store_id)
    return [_row(r) for r in conn.execute(query)]


def insert_store(conn: Connection, row: StoreRow) -> None:
    conn.execute(insert(t).values(**row.__dict__))


def update_store(conn: Connection, store_id: str, **changes: object) -> None:
    conn.execute(update(t).where(t.c.store_id == store_id).values(**changes))


def update_if_state(conn: Connection, store_id: str, state: str, **changes: object) -> bool:
    """Update a store only while it is in ``state``; True if it was."""
    done = conn.execute(
        update(t).where(t.c.store_id == store_id, t.c.connection_state == state).values(**changes)
    )
    return bool(done.rowcount)


def delete_store(conn: Connection, store_id: str) -> None:
    conn.execute(delete(t).where(t.c.store_id == store_id))
