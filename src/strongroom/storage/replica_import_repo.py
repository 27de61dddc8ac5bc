"""The import state of multi-Region replicas with imported material (migration 8)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, and_, delete, insert, select, update

from strongroom.storage.lifecycle_schema import imported_materials, replica_imports

__all__ = ["ReplicaImport", "due", "forget", "get", "holds_material", "put"]


@dataclass(frozen=True, slots=True)
class ReplicaImport:
    key_id: str
    region: str
    expiration_model: str
    valid_to: float | None
    present: bool


def _row(key_id: str, region: str) -> ColumnElement[bool]:
    return and_(replica_imports.c.key_id == key_id, replica_imports.c.region == region)


def get(conn: Connection, key_id: str, region: str) -> ReplicaImport | None:
    row = conn.execute(select(replica_imports).where(_row(key_id, region))).first()
    if row is None:
        return None
    return ReplicaImport(
        row.key_id, row.region, row.expiration_model, row.valid_to, bool(row.present)
    )


def put(conn: Connection, state: ReplicaImport) -> None:
    values = {
        "expiration_model": state.expiration_model,
        "valid_to": state.valid_to,
        "present": state.present,
    }
    where = _row(state.key_id, state.region)
    if conn.execute(update(replica_imports).where(where).values(**values)).rowcount == 0:
        conn.execute(
            insert(replica_imports).values(key_id=state.key_id, region=state.region, **values)
        )


def forget(conn: Connection, key_id: str, region: str) -> None:
    """Drop a replica's import state (the replica itself is being deleted)."""
    conn.execute(delete(replica_imports).where(_row(key_id, region)))


def holds_material(conn: Connection, key_id: str, version: int) -> bool:
    """Whether any region (the home key, or a replica) still has this material imported."""
    home = conn.execute(
        select(imported_materials.c.present).where(
            and_(imported_materials.c.key_id == key_id, imported_materials.c.version == version)
        )
    ).scalar_one_or_none()
    if home:
        return True
    replica = conn.execute(
        select(replica_imports.c.region).where(
            and_(replica_imports.c.key_id == key_id, replica_imports.c.present.is_(True))
        )
    ).first()
    return replica is not None


def due(conn: Connection, now: float) -> list[tuple[str, str]]:
    """(key id, region) of each replica whose imported material has expired."""
    rows = conn.execute(
        select(replica_imports.c.key_id, replica_imports.c.region).where(
            and_(
                replica_imports.c.present.is_(True),
                replica_imports.c.valid_to.is_not(None),
                replica_imports.c.valid_to <= now,
            )
        )
    ).all()
    return [(r.key_id, r.region) for r in rows]
