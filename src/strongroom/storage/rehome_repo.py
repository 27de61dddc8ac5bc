"""The rows a multi-Region key's move of its home region touches (see
:mod:`strongroom.kms.ops._rehome`): material versions to re-wrap, the replica row that becomes
the home row, the region's tags and aliases."""

from __future__ import annotations

from sqlalchemy import Connection, and_, delete, insert, select, update

from strongroom.kms.domain.keys import KeyRecord
from strongroom.storage.grant_repo import delete_region_grants
from strongroom.storage.lifecycle_schema import replica_tags
from strongroom.storage.replica_repo import regional_fields
from strongroom.storage.schema import aliases, key_materials, keys, replicas, tags

__all__ = ["become_home", "material_versions", "rewrap"]


def material_versions(conn: Connection, key_id: str) -> list[tuple[int, bytes]]:
    rows = conn.execute(
        select(key_materials.c.version, key_materials.c.material_wrapped).where(
            key_materials.c.key_id == key_id
        )
    ).all()
    return [(int(r.version), bytes(r.material_wrapped)) for r in rows]


def rewrap(conn: Connection, key_id: str, version: int, wrapped: bytes) -> None:
    conn.execute(
        update(key_materials)
        .where(and_(key_materials.c.key_id == key_id, key_materials.c.version == version))
        .values(material_wrapped=wrapped)
    )


def become_home(conn: Connection, old_region: str, new: KeyRecord) -> None:
    """Make ``new`` (a replica's record) the key's home row: its fields into ``kms_keys``, its
    tags into ``kms_tags``; its replica row goes, and so do the old region's aliases and
    grants."""
    key_id = new.key_id
    delete_region_grants(conn, key_id, old_region)
    conn.execute(
        update(keys)
        .where(keys.c.key_id == key_id)
        .values(region=new.region, **regional_fields(new))
    )
    own = conn.execute(
        select(replica_tags.c.tag_key, replica_tags.c.tag_value).where(
            and_(replica_tags.c.key_id == key_id, replica_tags.c.region == new.region)
        )
    ).all()
    conn.execute(delete(tags).where(tags.c.key_id == key_id))
    if own:
        conn.execute(
            insert(tags),
            [{"key_id": key_id, "tag_key": k, "tag_value": v} for k, v in own],
        )
    conn.execute(
        delete(replica_tags).where(
            and_(replica_tags.c.key_id == key_id, replica_tags.c.region == new.region)
        )
    )
    conn.execute(
        delete(replicas).where(and_(replicas.c.key_id == key_id, replicas.c.region == new.region))
    )
    conn.execute(
        delete(aliases).where(and_(aliases.c.key_id == key_id, aliases.c.region == old_region))
    )
