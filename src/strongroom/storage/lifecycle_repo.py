"""Repositories of migrations 3 and 7: rotation settings, material events, imported materials
(one row per imported material version) and each key's latest import token.

Each function takes the caller's connection, so a rotation (new material row, key row, event
row, schedule row) commits all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from strongroom.storage.lifecycle_schema import imported_materials, regional_import_tokens
from strongroom.storage.schema import (
    import_state,
    key_materials,
    keys,
    material_events,
    rotation_settings,
)

__all__ = [
    "ImportState",
    "ImportedMaterial",
    "MaterialEvent",
    "RotationSettings",
    "add_material",
    "delete_imported",
    "delete_material",
    "delete_material_version",
    "due_expiries",
    "due_rotations",
    "get_import",
    "get_import_token",
    "get_rotation",
    "list_events",
    "list_imported",
    "put_import",
    "put_imported",
    "put_material_version",
    "put_rotation",
    "record_event",
    "set_import_token",
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


def due_expiries(conn: Connection, now: float) -> list[tuple[str, int]]:
    """(key_id, version) of imported materials that have expired and are still present."""
    m = imported_materials.c
    cond = and_(m.present.is_(True), m.valid_to.is_not(None), m.valid_to <= now)
    return [(r.key_id, r.version) for r in conn.execute(select(m.key_id, m.version).where(cond))]


@dataclass(frozen=True, slots=True)
class ImportedMaterial:
    """One imported material version: a sealed copy to recognise a reimport, its description
    and expiry, whether it is present (IMPORTED) and whether it waits for RotateKeyOnDemand."""

    key_id: str
    version: int
    material_check: bytes
    description: str | None
    expiration_model: str
    valid_to: float | None
    present: bool
    pending_rotation: bool


def list_imported(conn: Connection, key_id: str) -> list[ImportedMaterial]:
    rows = conn.execute(
        select(imported_materials)
        .where(imported_materials.c.key_id == key_id)
        .order_by(imported_materials.c.version)
    ).all()
    return [
        ImportedMaterial(
            r.key_id, r.version, r.material_check, r.description, r.expiration_model,
            r.valid_to, bool(r.present), bool(r.pending_rotation),
        )
        for r in rows
    ]  # fmt: skip


def _version_of(table: Any, key_id: str, version: int) -> Any:
    return and_(table.c.key_id == key_id, table.c.version == version)


def put_imported(conn: Connection, m: ImportedMaterial) -> None:
    values = {
        "material_check": m.material_check,
        "description": m.description,
        "expiration_model": m.expiration_model,
        "valid_to": m.valid_to,
        "present": m.present,
        "pending_rotation": m.pending_rotation,
    }
    where = _version_of(imported_materials, m.key_id, m.version)
    if conn.execute(update(imported_materials).where(where).values(**values)).rowcount == 0:
        conn.execute(
            insert(imported_materials).values(key_id=m.key_id, version=m.version, **values)
        )


def delete_imported(conn: Connection, key_id: str, version: int) -> None:
    """Forget an imported material version (one pending rotation that was deleted)."""
    conn.execute(delete(imported_materials).where(_version_of(imported_materials, key_id, version)))


def put_material_version(
    conn: Connection, key_id: str, version: int, wrapped: bytes, now: float
) -> None:
    """Store (or restore, on reimport) one material version, leaving the key's current alone."""
    delete_material_version(conn, key_id, version)
    conn.execute(
        insert(key_materials).values(
            key_id=key_id, version=version, material_wrapped=wrapped, created=now
        )
    )


def delete_material_version(conn: Connection, key_id: str, version: int) -> None:
    """Destroy one material version of a key."""
    conn.execute(delete(key_materials).where(_version_of(key_materials, key_id, version)))


def get_import_token(conn: Connection, key_id: str, region: str) -> str | None:
    """The id of the latest import token issued for a key in a region (older ones are
    invalid; each region of a multi-Region key has its own)."""
    t = regional_import_tokens.c
    where = and_(t.key_id == key_id, t.region == region)
    return conn.execute(select(t.token_id).where(where)).scalar_one_or_none()


def set_import_token(conn: Connection, key_id: str, region: str, token_id: str) -> None:
    t = regional_import_tokens.c
    where = and_(t.key_id == key_id, t.region == region)
    done = conn.execute(update(regional_import_tokens).where(where).values(token_id=token_id))
    if done.rowcount == 0:
        conn.execute(
            insert(regional_import_tokens).values(key_id=key_id, region=region, token_id=token_id)
        )
