"""CloudHSM backup repository: backup documents and their sealed blobs, over the caller's
connection."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, insert, select, update

from strongroom.storage.schema import cloudhsm_backups as t

__all__ = ["get_backup", "list_backups", "put_backup", "sealed_of"]


def get_backup(conn: Connection, backup_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(t.c.document).where(t.c.backup_id == backup_id)).first()
    return None if row is None else dict(json.loads(row[0]))


def list_backups(
    conn: Connection, account_id: str | None = None, cluster_id: str | None = None
) -> list[dict[str, Any]]:
    """Backups, oldest first."""
    query = select(t.c.document).order_by(t.c.created, t.c.backup_id)
    if account_id is not None:
        query = query.where(t.c.account_id == account_id)
    if cluster_id is not None:
        query = query.where(t.c.cluster_id == cluster_id)
    return [dict(json.loads(r[0])) for r in conn.execute(query)]


def sealed_of(conn: Connection, backup_id: str) -> bytes | None:
    row = conn.execute(select(t.c.sealed).where(t.c.backup_id == backup_id)).first()
    return None if row is None else row[0]


def put_backup(conn: Connection, doc: dict[str, Any], sealed: bytes | None = None) -> None:
    """Insert or replace a backup document (``sealed`` given: also its blob; a DELETED
    backup loses its blob)."""
    values: dict[str, Any] = {
        "account_id": doc["account_id"],
        "region": doc["region"],
        "cluster_id": doc["cluster_id"],
        "state": doc["state"],
        "created": doc["created"],
        "document": json.dumps(doc),
    }
    if sealed is not None:
        values["sealed"] = sealed
    if doc["state"] == "DELETED":
        values["sealed"] = None
    done = conn.execute(update(t).where(t.c.backup_id == doc["backup_id"]).values(**values))
    if done.rowcount == 0:
        conn.execute(insert(t).values(backup_id=doc["backup_id"], **values))
