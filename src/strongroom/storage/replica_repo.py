"""Multi-Region keys (migration 3): which region is primary, and each replica's own row.

A multi-Region key's material and shared properties live in its home ``kms_keys`` row (the
region it was created in). Every other region it is replicated to has a ``kms_replicas`` row
keyed by (key_id, region) with that replica's own state, description, policy and deletion
schedule. :func:`replica_view` turns a home record into the record of one replica.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from strongroom.kms.domain.keys import KeyRecord
from strongroom.kms.domain.states import KeyState
from strongroom.storage.schema import multi_region, replicas

__all__ = [
    "delete_replica",
    "due_replica_deletions",
    "get_replica",
    "insert_replica",
    "primary_region",
    "replica_regions",
    "set_primary_region",
    "update_replica",
]


def _view(home: KeyRecord, row: Any) -> KeyRecord:
    return home.replace(
        region=row.region,
        state=KeyState(row.state),
        description=row.description,
        policy=row.policy,
        created=row.created,
        deletion_date=row.deletion_date,
        pending_window_days=row.pending_window_days,
        home_region=home.region,
    )


def get_replica(conn: Connection, home: KeyRecord, region: str) -> KeyRecord | None:
    """The record of ``home``'s replica in ``region``, or None."""
    row = conn.execute(
        select(replicas).where(and_(replicas.c.key_id == home.key_id, replicas.c.region == region))
    ).first()
    return None if row is None else _view(home, row)


def replica_regions(conn: Connection, key_id: str) -> list[str]:
    return list(
        conn.execute(
            select(replicas.c.region).where(replicas.c.key_id == key_id).order_by(replicas.c.region)
        ).scalars()
    )


def insert_replica(conn: Connection, rec: KeyRecord) -> None:
    conn.execute(
        insert(replicas).values(
            key_id=rec.key_id,
            region=rec.region,
            state=rec.state.value,
            description=rec.description,
            policy=rec.policy,
            created=rec.created,
            deletion_date=rec.deletion_date,
            pending_window_days=rec.pending_window_days,
        )
    )


def update_replica(conn: Connection, rec: KeyRecord) -> None:
    """Write a replica's own fields back."""
    conn.execute(
        update(replicas)
        .where(and_(replicas.c.key_id == rec.key_id, replicas.c.region == rec.region))
        .values(
            state=rec.state.value,
            description=rec.description,
            policy=rec.policy,
            deletion_date=rec.deletion_date,
            pending_window_days=rec.pending_window_days,
        )
    )


def delete_replica(conn: Connection, key_id: str, region: str) -> None:
    conn.execute(
        delete(replicas).where(and_(replicas.c.key_id == key_id, replicas.c.region == region))
    )


def due_replica_deletions(conn: Connection, now: float) -> list[tuple[str, str]]:
    """(key_id, region) of replicas pending deletion whose deletion date has come."""
    rows = conn.execute(
        select(replicas.c.key_id, replicas.c.region).where(
            and_(
                replicas.c.state == KeyState.PENDING_DELETION.value,
                replicas.c.deletion_date <= now,
            )
        )
    ).all()
    return [(r.key_id, r.region) for r in rows]


def primary_region(conn: Connection, key_id: str) -> str | None:
    return conn.execute(
        select(multi_region.c.primary_region).where(multi_region.c.key_id == key_id)
    ).scalar_one_or_none()


def set_primary_region(conn: Connection, key_id: str, region: str) -> None:
    done = conn.execute(
        update(multi_region).where(multi_region.c.key_id == key_id).values(primary_region=region)
    )
    if done.rowcount == 0:
        conn.execute(insert(multi_region).values(key_id=key_id, primary_region=region))
