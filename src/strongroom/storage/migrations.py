"""Numbered schema migrations, applied in order, the same way on SQLite and PostgreSQL.

Each migration runs in its own transaction and records itself in ``schema_migrations``. The
rule that keeps this simple and safe: a shipped migration is never edited, and later migrations
add *new* tables (a key's rotation schedule, its grants, ...) rather than columns to existing
ones, so creating a migration's tables from :mod:`strongroom.storage.schema` always yields
exactly the shape that migration introduced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sqlalchemy import Connection, Engine, inspect, select

from strongroom.storage import audit_schema as _audit_schema
from strongroom.storage import grant_repo, lifecycle_schema, schema

__all__ = ["MIGRATIONS", "Migration", "apply_migrations", "current_version"]

Migration = tuple[int, str, Callable[[Connection], None]]


def _create(*tables: str) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        schema.metadata.create_all(
            conn, tables=[schema.metadata.tables[name] for name in tables], checkfirst=False
        )

    return run


MIGRATIONS: Sequence[Migration] = (
    (
        1,
        "identities, keys, key materials, aliases, tags",
        _create(
            "iam_users",
            "iam_access_keys",
            "kms_keys",
            "kms_key_materials",
            "kms_aliases",
            "kms_tags",
        ),
    ),
    (
        2,
        "roles, identity policies, STS sessions, grants",
        _create(
            "iam_roles", "iam_user_policies", "iam_role_policies", "sts_sessions", "kms_grants"
        ),
    ),
    (
        3,
        "key rotation, imported key material, multi-Region replicas",
        _create(
            "kms_rotation_settings",
            "kms_material_events",
            "kms_import_state",
            "kms_multi_region",
            "kms_replicas",
        ),
    ),
    (
        4,
        "audit trail: hash-chained events, signed digests, HSM audit logs",
        _create("audit_events", "audit_digests", "audit_head", "audit_hsm_logs"),
    ),
    (
        5,
        "CloudHSM clusters and HSMs, KMS custom key stores",
        _create("cloudhsm_clusters", "cloudhsm_hsms", "kms_custom_key_stores"),
    ),
    (6, "CloudHSM cluster backups", _create("cloudhsm_backups")),
    (7, "imported material versions, import tokens, replica tags", lifecycle_schema.migrate),
    (8, "imported material of multi-Region replicas", lifecycle_schema.migrate_replica_imports),
    (9, "import tokens per region", lifecycle_schema.migrate_regional_import_tokens),
    (10, "grants per region", grant_repo.migrate_regions),
    (11, "each key's last cryptographic use (GetKeyLastUsage)", _audit_schema.migrate_key_usage),
    (12, "STS session policies and source identities", _create("sts_session_attributes")),
    (13, "the trail writer's epochs, one per start", _create("audit_epochs")),
    (14, "what the nodes sharing a database agree on", _create("shared_settings")),
)


def current_version(engine: Engine) -> int:
    """The highest applied migration, 0 for an empty database."""
    if not inspect(engine).has_table("schema_migrations"):
        return 0
    with engine.connect() as conn:
        rows = conn.execute(select(schema.schema_migrations.c.version)).scalars().all()
    return max(rows, default=0)


def apply_migrations(engine: Engine, clock: Callable[[], float] = time.time) -> int:
    """Apply every migration not yet applied; return the resulting version."""
    with engine.begin() as conn:
        schema.schema_migrations.create(conn, checkfirst=True)
    version = current_version(engine)
    known = max((m[0] for m in MIGRATIONS), default=0)
    if version > known:
        raise RuntimeError(
            f"database schema version {version} is newer than this Strongroom ({known})"
        )
    for number, name, run in MIGRATIONS:
        if number <= version:
            continue
        with engine.begin() as conn:
            run(conn)
            conn.execute(
                schema.schema_migrations.insert().values(
                    version=number, name=name, applied_at=clock()
                )
            )
        version = number
    return version
