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
from strongroom.storage import kms_repo
from strongroom.storage.grant_repo import delete_region_grants
from strongroom.storage.lifecycle_schema import replica_tags
from strongroom.storage.schema import keys, multi_region, replicas

__all__ = [
    "delete_replica",
    "delete_replica_tags",
    "due_replica_deletions",
    "get_replica",
    "insert_replica",
    "list_replica_tags",
    "pending_replica_deletions",
    "primary_region",
    "put_replica_tags",
    "regional_fields",
    "replica_regions",
    "set_primary_region",
    "tag",
    "tags_of",
    "untag",
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


def regional_fields(rec: KeyRecord) -> dict[str, Any]:
    """What each region of a multi-Region key has of its own (a replica row's columns, and the
    home row's same-named ones)."""
    return {
        "state": rec.state.value,
        "description": rec.description,
        "policy": rec.policy,
        "created": rec.created,
        "deletion_date": rec.deletion_date,
        "pending_window_days": rec.pending_window_days,
    }


def insert_replica(conn: Connection, rec: KeyRecord) -> None:
    conn.execute(
        insert(replicas).values(key_id=rec.key_id, region=rec.region, **regional_fields(rec))
    )


def update_replica(conn: Connection, rec: KeyRecord) -> None:
    """Write a replica's own fields back."""
    conn.execute(
        update(replicas)
        .where(and_(replicas.c.key_id == rec.key_id, replicas.c.region == rec.region))
        .values(**regional_fields(rec))
    )


def delete_replica(conn: Connection, key_id: str, region: str) -> None:
    """Remove a replica's row, its own tags and its own grants."""
    _where = and_(replica_tags.c.key_id == key_id, replica_tags.c.region == region)
    conn.execute(delete(replica_tags).where(_where))
    delete_region_grants(conn, key_id, region)
    conn.execute(
        delete(replicas).where(and_(replicas.c.key_id == key_id, replicas.c.region == region))
    )


def list_replica_tags(conn: Connection, key_id: str, region: str) -> list[tuple[str, str]]:
    """A replica's own tags, sorted by tag key."""
    rows = conn.execute(
        select(replica_tags.c.tag_key, replica_tags.c.tag_value)
        .where(and_(replica_tags.c.key_id == key_id, replica_tags.c.region == region))
        .order_by(replica_tags.c.tag_key)
    ).all()
    return [(r.tag_key, r.tag_value) for r in rows]


def put_replica_tags(conn: Connection, key_id: str, region: str, new: dict[str, str]) -> None:
    """Add or overwrite a replica's tags."""
    if not new:
        return
    delete_replica_tags(conn, key_id, region, list(new))
    conn.execute(
        insert(replica_tags),
        [
            {"key_id": key_id, "region": region, "tag_key": k, "tag_value": v}
            for k, v in new.items()
        ],
    )


def delete_replica_tags(conn: Connection, key_id: str, region: str, tag_keys: list[str]) -> None:
    conn.execute(
        delete(replica_tags).where(
            and_(
                replica_tags.c.key_id == key_id,
                replica_tags.c.region == region,
                replica_tags.c.tag_key.in_(tag_keys),
            )
        )
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


def pending_replica_deletions(conn: Connection) -> list[tuple[str, str]]:
    """(key_id, region) of every multi-Region primary in PendingReplicaDeletion."""
    state = KeyState.PENDING_REPLICA_DELETION.value
    homes = conn.execute(select(keys.c.key_id, keys.c.region).where(keys.c.state == state))
    others = conn.execute(
        select(replicas.c.key_id, replicas.c.region).where(replicas.c.state == state)
    )
    return [(r.key_id, r.region) for r in [*homes, *others]]


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


def tags_of(conn: Connection, rec: KeyRecord) -> list[tuple[str, str]]:
    """The tags of a key as seen in its region: a replica's own, else the key's."""
    if rec.is_replica_view:
        return list_replica_tags(conn, rec.key_id, rec.region)
    return kms_repo.list_tags(conn, rec.key_id)


def tag(conn: Connection, rec: KeyRecord, new: dict[str, str]) -> None:
    """TagResource on a key in its region (a replica's tags are its own)."""
    if rec.is_replica_view:
        put_replica_tags(conn, rec.key_id, rec.region, new)
    else:
        kms_repo.put_tags(conn, rec.key_id, new)


def untag(conn: Connection, rec: KeyRecord, tag_keys: list[str]) -> None:
    """UntagResource on a key in its region."""
    if rec.is_replica_view:
        delete_replica_tags(conn, rec.key_id, rec.region, tag_keys)
    else:
        kms_repo.delete_tags(conn, rec.key_id, tag_keys)
