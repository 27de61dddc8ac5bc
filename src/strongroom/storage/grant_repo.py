"""KMS grants."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, inspect, select, text, update

from strongroom.storage.schema import grants, keys

__all__ = [
    "GrantRow",
    "count_grants",
    "delete_grant",
    "delete_region_grants",
    "get_grant",
    "insert_grant",
    "list_grants",
    "list_retirable",
    "migrate_regions",
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
    #: the region of the key (replica) the grant is on
    region: str


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
        row.region or "",
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
            region=row.region,
        )
    )


def get_grant(conn: Connection, grant_id: str) -> GrantRow | None:
    row = conn.execute(select(grants).where(grants.c.grant_id == grant_id)).first()
    return None if row is None else _grant(row)


def list_grants(
    conn: Connection,
    key_id: str,
    region: str,
    *,
    grant_id: str | None = None,
    grantee: str | None = None,
    name: str | None = None,
    after: str | None = None,
    limit: int = 1000,
) -> list[GrantRow]:
    """Grants of a key in a region in grant-id order, optionally filtered."""
    cond = and_(grants.c.key_id == key_id, grants.c.region == region)
    if name is not None:
        cond = and_(cond, grants.c.name == name)
    if grant_id is not None:
        cond = and_(cond, grants.c.grant_id == grant_id)
    if grantee is not None:
        cond = and_(cond, grants.c.grantee_principal == grantee)
    if after is not None:
        cond = and_(cond, grants.c.grant_id > after)
    rows = conn.execute(select(grants).where(cond).order_by(grants.c.grant_id).limit(limit)).all()
    return [_grant(r) for r in rows]


def list_retirable(
    conn: Connection, retiring_principal: str, region: str, after: str | None, limit: int
) -> list[GrantRow]:
    cond = and_(grants.c.retiring_principal == retiring_principal, grants.c.region == region)
    if after is not None:
        cond = and_(cond, grants.c.grant_id > after)
    rows = conn.execute(select(grants).where(cond).order_by(grants.c.grant_id).limit(limit)).all()
    return [_grant(r) for r in rows]


def count_grants(conn: Connection, key_id: str, region: str) -> int:
    where = and_(grants.c.key_id == key_id, grants.c.region == region)
    return int(conn.execute(select(func.count()).select_from(grants).where(where)).scalar_one())


def delete_region_grants(conn: Connection, key_id: str, region: str) -> None:
    """Remove the grants of one region of a key (that region's key is deleted)."""
    conn.execute(delete(grants).where(and_(grants.c.key_id == key_id, grants.c.region == region)))


def migrate_regions(conn: Connection) -> None:
    """Migration 10: give ``kms_grants`` its region column (a new database has it already)
    and set it, in rows from before, to the region of the grant's key."""
    if "region" not in {c["name"] for c in inspect(conn).get_columns("kms_grants")}:
        conn.execute(text("ALTER TABLE kms_grants ADD COLUMN region VARCHAR(32)"))
    region_of_key = select(keys.c.region).where(keys.c.key_id == grants.c.key_id).scalar_subquery()
    conn.execute(update(grants).where(grants.c.region.is_(None)).values(region=region_of_key))


def delete_grant(conn: Connection, grant_id: str) -> int:
    return int(conn.execute(delete(grants).where(grants.c.grant_id == grant_id)).rowcount)
