"""KMS grants."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select

from strongroom.storage.schema import grants

__all__ = [
    "GrantRow",
    "count_grants",
    "delete_grant",
    "get_grant",
    "insert_grant",
    "list_grants",
    "list_retirable",
]


@dataclass(frozen=True, slots=True)
class GrantRow:
    grant_id: str
    key_id: str
    name: str | None
    grantee_principal: str
    retiring_principal: str | None
    issuing_account: str
    operations: tuple[str, ...]
    constraints: dict[str, dict[str, str]] | None
    created: float


def _grant(row: Any) -> GrantRow:
    return GrantRow(
        row.grant_id,
        row.key_id,
        row.name,
        row.grantee_principal,
        row.retiring_principal,
        row.issuing_account,
        tuple(json.loads(row.operations)),
        json.loads(row.constraints) if row.constraints else None,
        row.created,
    )


def insert_grant(conn: Connection, row: GrantRow) -> None:
    conn.execute(
        insert(grants).values(
            grant_id=row.grant_id,
            key_id=row.key_id,
            name=row.name,
            grantee_principal=row.grantee_principal,
            retiring_principal=row.retiring_principal,
            issuing_account=row.issuing_account,
            operations=json.dumps(list(row.operations)),
            constraints=json.dumps(row.constraints, sort_keys=True) if row.constraints else None,
            created=row.created,
        )
    )


def get_grant(conn: Connection, grant_id: str) -> GrantRow | None:
    row = conn.execute(select(grants).where(grants.c.grant_id == grant_id)).first()
    return None if row is None else _grant(row)


def list_grants(
    conn: Connection,
    key_id: str,
    *,
    grant_id: str | None = None,
    grantee: str | None = None,
    after: str | None = None,
    limit: int = 1000,
) -> list[GrantRow]:
    """Grants of a key in grant-id order, optionally filtered."""
    cond = grants.c.key_id == key_id
    if grant_id is not None:
        cond = and_(cond, grants.c.grant_id == grant_id)
    if grantee is not None:
        cond = and_(cond, grants.c.grantee_principal == grantee)
    if after is not None:
        cond = and_(cond, grants.c.grant_id > after)
    rows = conn.execute(select(grants).where(cond).order_by(grants.c.grant_id).limit(limit)).all()
    return [_grant(r) for r in rows]


def list_retirable(
    conn: Connection, retiring_principal: str, after: str | None, limit: int
) -> list[GrantRow]:
    cond = grants.c.retiring_principal == retiring_principal
    if after is not None:
        cond = and_(cond, grants.c.grant_id > after)
    rows = conn.execute(select(grants).where(cond).order_by(grants.c.grant_id).limit(limit)).all()
    return [_grant(r) for r in rows]


def count_grants(conn: Connection, key_id: str) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(grants).where(grants.c.key_id == key_id)
        ).scalar_one()
    )


def delete_grant(conn: Connection, grant_id: str) -> int:
    return int(conn.execute(delete(grants).where(grants.c.grant_id == grant_id)).rowcount)
