"""KMS repositories: keys, key materials, aliases and tags, over one SQLAlchemy connection.

Every function takes the :class:`~sqlalchemy.Connection` of the caller's transaction, so an
operation that touches several tables commits all of it or none of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from strongroom.kms.domain.keys import KeyRecord
from strongroom.kms.domain.states import KeyState
from strongroom.storage import replica_repo
from strongroom.storage.schema import (
    aliases,
    grants,
    import_state,
    key_materials,
    keys,
    material_events,
    multi_region,
    replicas,
    rotation_settings,
    tags,
)

__all__ = [
    "AliasRow",
    "count_aliases",
    "delete_alias",
    "delete_key",
    "delete_tags",
    "due_deletions",
    "get_alias",
    "get_key",
    "get_material",
    "insert_alias",
    "insert_key",
    "list_aliases",
    "list_keys",
    "list_tags",
    "put_tags",
    "update_alias",
    "update_key",
]


@dataclass(frozen=True, slots=True)
class AliasRow:
    """One alias: its name, target key id and times."""

    account_id: str
    region: str
    alias_name: str
    key_id: str
    created: float
    updated: float


def _key_from_row(row: Any) -> KeyRecord:
    return KeyRecord(
        key_id=row.key_id,
        account_id=row.account_id,
        region=row.region,
        state=KeyState(row.state),
        key_spec=row.key_spec,
        key_usage=row.key_usage,
        origin=row.origin,
        description=row.description,
        created=row.created,
        deletion_date=row.deletion_date,
        pending_window_days=row.pending_window_days,
        multi_region=bool(row.multi_region),
        key_manager=row.key_manager,
        custom_key_store_id=row.custom_key_store_id,
        policy=row.policy,
        current_version=row.current_version,
    )


def _key_values(rec: KeyRecord) -> dict[str, Any]:
    return {
        "key_id": rec.key_id,
        "account_id": rec.account_id,
        "region": rec.region,
        "state": rec.state.value,
        "key_spec": rec.key_spec,
        "key_usage": rec.key_usage,
        "origin": rec.origin,
        "description": rec.description,
        "created": rec.created,
        "deletion_date": rec.deletion_date,
        "pending_window_days": rec.pending_window_days,
        "multi_region": rec.multi_region,
        "key_manager": rec.key_manager,
        "custom_key_store_id": rec.custom_key_store_id,
        "policy": rec.policy,
        "current_version": rec.current_version,
    }


def insert_key(conn: Connection, rec: KeyRecord, wrapped_material: bytes | None) -> None:
    """Insert a key and (when it has one) its first material version."""
    conn.execute(insert(keys).values(**_key_values(rec)))
    if wrapped_material is not None:
        conn.execute(
            insert(key_materials).values(
                key_id=rec.key_id,
                version=rec.current_version,
                material_wrapped=wrapped_material,
                created=rec.created,
            )
        )


def get_key(conn: Connection, key_id: str, *, for_update: bool = False) -> KeyRecord | None:
    """A key's record; ``for_update`` locks its row until the transaction ends (PostgreSQL;
    SQLite write transactions hold the database lock from BEGIN IMMEDIATE on)."""
    query = select(keys).where(keys.c.key_id == key_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _key_from_row(row)


def update_key(conn: Connection, rec: KeyRecord) -> None:
    """Write every mutable field of ``rec`` back."""
    if rec.is_replica_view:  # a multi-Region replica keeps its own row
        replica_repo.update_replica(conn, rec)
        return
    values = _key_values(rec)
    del values["key_id"]
    conn.execute(update(keys).where(keys.c.key_id == rec.key_id).values(**values))


def get_material(conn: Connection, key_id: str, version: int) -> bytes | None:
    return conn.execute(
        select(key_materials.c.material_wrapped).where(
            and_(key_materials.c.key_id == key_id, key_materials.c.version == version)
        )
    ).scalar_one_or_none()


def list_keys(
    conn: Connection, account_id: str, region: str, after: str | None, limit: int
) -> list[KeyRecord]:
    """Keys of one account and region in key-id order, starting after ``after``."""
    cond = and_(keys.c.account_id == account_id, keys.c.region == region)
    if after is not None:
        cond = and_(cond, keys.c.key_id > after)
    rows = conn.execute(select(keys).where(cond).order_by(keys.c.key_id).limit(limit)).all()
    return [_key_from_row(r) for r in rows]


def due_deletions(conn: Connection, now: float) -> list[str]:
    """Ids of keys pending deletion whose deletion date has come."""
    return list(
        conn.execute(
            select(keys.c.key_id).where(
                and_(
                    keys.c.state == KeyState.PENDING_DELETION.value,
                    keys.c.deletion_date <= now,
                )
            )
        ).scalars()
    )


def delete_key(conn: Connection, key_id: str) -> None:
    """Remove a key with its material, aliases, tags and grants (material is destroyed)."""
    conn.execute(delete(grants).where(grants.c.key_id == key_id))
    for table in (rotation_settings, material_events, import_state, replicas, multi_region):
        conn.execute(delete(table).where(table.c.key_id == key_id))
    conn.execute(delete(aliases).where(aliases.c.key_id == key_id))
    conn.execute(delete(tags).where(tags.c.key_id == key_id))
    conn.execute(delete(key_materials).where(key_materials.c.key_id == key_id))
    conn.execute(delete(keys).where(keys.c.key_id == key_id))


def _alias_from_row(row: Any) -> AliasRow:
    return AliasRow(
        row.account_id, row.region, row.alias_name, row.key_id, row.created, row.updated
    )


def get_alias(conn: Connection, account_id: str, region: str, name: str) -> AliasRow | None:
    row = conn.execute(
        select(aliases).where(
            and_(
                aliases.c.account_id == account_id,
                aliases.c.region == region,
                aliases.c.alias_name == name,
            )
        )
    ).first()
    return None if row is None else _alias_from_row(row)


def insert_alias(conn: Connection, row: AliasRow) -> None:
    conn.execute(
        insert(aliases).values(
            account_id=row.account_id,
            region=row.region,
            alias_name=row.alias_name,
            key_id=row.key_id,
            created=row.created,
            updated=row.updated,
        )
    )


def update_alias(
    conn: Connection, account_id: str, region: str, name: str, key_id: str, now: float
) -> None:
    conn.execute(
        update(aliases)
        .where(
            and_(
                aliases.c.account_id == account_id,
                aliases.c.region == region,
                aliases.c.alias_name == name,
            )
        )
        .values(key_id=key_id, updated=now)
    )


def delete_alias(conn: Connection, account_id: str, region: str, name: str) -> None:
    conn.execute(
        delete(aliases).where(
            and_(
                aliases.c.account_id == account_id,
                aliases.c.region == region,
                aliases.c.alias_name == name,
            )
        )
    )


def count_aliases(conn: Connection, key_id: str, region: str | None = None) -> int:
    """Aliases of a key; with ``region``, of its key (or multi-Region replica) in that region."""
    cond = aliases.c.key_id == key_id
    if region is not None:
        cond = and_(cond, aliases.c.region == region)
    return int(conn.execute(select(func.count()).select_from(aliases).where(cond)).scalar_one())


def list_aliases(
    conn: Connection,
    account_id: str,
    region: str,
    key_id: str | None,
    after: str | None,
    limit: int,
) -> list[AliasRow]:
    """Aliases of one account and region (optionally of one key) in name order."""
    cond = and_(aliases.c.account_id == account_id, aliases.c.region == region)
    if key_id is not None:
        cond = and_(cond, aliases.c.key_id == key_id)
    if after is not None:
        cond = and_(cond, aliases.c.alias_name > after)
    rows = conn.execute(
        select(aliases).where(cond).order_by(aliases.c.alias_name).limit(limit)
    ).all()
    return [_alias_from_row(r) for r in rows]


def list_tags(conn: Connection, key_id: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(tags.c.tag_key, tags.c.tag_value)
        .where(tags.c.key_id == key_id)
        .order_by(tags.c.tag_key)
    ).all()
    return [(r.tag_key, r.tag_value) for r in rows]


def put_tags(conn: Connection, key_id: str, new_tags: dict[str, str]) -> None:
    """Add or overwrite tags."""
    if not new_tags:
        return
    conn.execute(delete(tags).where(and_(tags.c.key_id == key_id, tags.c.tag_key.in_(new_tags))))
    conn.execute(
        insert(tags),
        [{"key_id": key_id, "tag_key": k, "tag_value": v} for k, v in new_tags.items()],
    )


def delete_tags(conn: Connection, key_id: str, tag_keys: list[str]) -> None:
    conn.execute(delete(tags).where(and_(tags.c.key_id == key_id, tags.c.tag_key.in_(tag_keys))))
