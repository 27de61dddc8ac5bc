"""Repositories of migration 3: rotation settings, material events, import state.

Each function takes the caller's connection, so a rotation (new material row, key row, event
row, schedule row) commits all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, insert, select, update

from strongroom.storage.schema import (
    import_state,
    key_materials,
    keys,
    material_events,
    rotation_settings,
)

__all__ = [
    "ImportState",
    "MaterialEvent",
    "RotationSettings",
    "add_material",
    "delete_material",
    "due_expiries",
    "due_rotations",
    "get_import",
    "get_rotation",
    "list_events",
    "put_import",
    "put_rotation",
    "record_event",
]


@dataclass(frozen=True, slots=True)
class RotationSettings:
    """A key's automatic rotation schedule and any on-demand rotation in progress."""

    key_id: str
    enabled: bool
    period_days: int
    next_rotation: float | None
    on_demand_start: float | None


@dataclass(frozen=True, slots=True)
class MaterialEvent:
    """How one material version came to be: INITIAL, AUTOMATIC, ON_DEMAND or IMPORTED."""

    version: int
    rotation_type: str
    rotated_at: float


@dataclass(frozen=True, slots=True)
class ImportState:
    """Imported material: a wrapped copy to recognise reimports, expiry, and whether present."""

    key_id: str
    material_check: bytes
    expiration_model: str
    valid_to: float | None
    present: bool


def get_rotation(conn: Connection, key_id: str) -> RotationSettings | None:
    row = conn.execute(
        select(rotation_settings).where(rotation_settings.c.key_id == key_id)
    ).first()
    if row is None:
        return None
    return RotationSettings(
        row.key_id, bool(row.enabled), row.period_days, row.next_rotation, row.on_demand_start
    )


def put_rotation(conn: Connection, s: RotationSettings) -> None:
    values = {
        "enabled": s.enabled,
        "period_days": s.period_days,
        "next_rotation": s.next_rotation,
        "on_demand_start": s.on_demand_start,
    }
    done = conn.execute(
        update(rotation_settings).where(rotation_settings.c.key_id == s.key_id).values(**values)
    )
    if done.rowcount == 0:
        conn.execute(insert(rotation_settings).values(key_id=s.key_id, **values))


def due_rotations(conn: Connection, now: float) -> list[str]:
    """Keys with an automatic rotation due, or an on-demand rotation requested."""
    cond = and_(rotation_settings.c.enabled.is_(True), rotation_settings.c.next_rotation <= now)
    cond = cond | rotation_settings.c.on_demand_start.is_not(None)
    return list(conn.execute(select(rotation_settings.c.key_id).where(cond)).scalars())


def add_material(
    conn: Connection, key_id: str, version: int, wrapped: bytes, kind: str, now: float
) -> None:
    """Store a material version and the event that made it, and make it the key's current."""
    conn.execute(
        insert(key_materials).values(
            key_id=key_id, version=version, material_wrapped=wrapped, created=now
        )
    )
    record_event(conn, key_id, version, kind, now)
    conn.execute(update(keys).where(keys.c.key_id == key_id).values(current_version=version))


def record_event(conn: Connection, key_id: str, version: int, kind: str, now: float) -> None:
    """Note how material ``version`` of a key came to be."""
    conn.execute(
        insert(material_events).values(
            key_id=key_id, version=version, rotation_type=kind, rotated_at=now
        )
    )


def delete_material(conn: Connection, key_id: str) -> None:
    """Destroy every material version of a key (DeleteImportedKeyMaterial, expiry)."""
    conn.execute(delete(key_materials).where(key_materials.c.key_id == key_id))
    conn.execute(delete(material_events).where(material_events.c.key_id == key_id))


def list_events(conn: Connection, key_id: str) -> list[MaterialEvent]:
    rows = conn.execute(
        select(material_events)
        .where(material_events.c.key_id == key_id)
        .order_by(material_events.c.version)
    ).all()
    return [MaterialEvent(r.version, r.rotation_type, r.rotated_at) for r in rows]


def get_import(conn: Connection, key_id: str) -> ImportState | None:
    row = conn.execute(select(import_state).where(import_state.c.key_id == key_id)).first()
    if row is None:
        return None
    return ImportState(
        row.key_id, row.material_check, row.expiration_model, row.valid_to, bool(row.present)
    )


def put_import(conn: Connection, s: ImportState) -> None:
    values = {
        "material_check": s.material_check,
        "expiration_model": s.expiration_model,
        "valid_to": s.valid_to,
        "present": s.present,
    }
    done = conn.execute(
        update(import_state).where(import_state.c.key_id == s.key_id).values(**values)
    )
    if done.rowcount == 0:
        conn.execute(insert(import_state).values(key_id=s.key_id, **values))


def due_expiries(conn: Connection, now: float) -> list[str]:
    """Keys whose imported material has expired and is still present."""
    cond = and_(
        import_state.c.present.is_(True),
        import_state.c.valid_to.is_not(None),
        import_state.c.valid_to <= now,
    )
    return list(conn.execute(select(import_state.c.key_id).where(cond)).scalars())
