"""Tables of migration 7: each imported material version, the latest import token of a key,
and multi-Region replicas' own tags.

Registered on :data:`strongroom.storage.schema.metadata` (like the audit tables) so migrations
create them from one metadata. Rows go with their key (``ON DELETE CASCADE``), so deleting a
key destroys the sealed copies of its imported material too.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    insert,
    select,
)

from strongroom.storage.schema import import_state, metadata

__all__ = [
    "import_tokens",
    "imported_materials",
    "migrate",
    "migrate_replica_imports",
    "replica_imports",
    "replica_tags",
]

_KEY = "kms_keys.key_id"

imported_materials = Table(
    "kms_imported_materials",
    metadata,
    Column("key_id", String(64), ForeignKey(_KEY, ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    #: the material sealed by the root key, to recognise a reimport of it
    Column("material_check", LargeBinary, nullable=False),
    Column("description", Text, nullable=True),
    Column("expiration_model", String(32), nullable=False),
    Column("valid_to", Float, nullable=True, index=True),
    #: IMPORTED (material present) or PENDING_IMPORT (deleted or expired)
    Column("present", Boolean, nullable=False),
    #: imported as NEW_KEY_MATERIAL and waiting for RotateKeyOnDemand
    Column("pending_rotation", Boolean, nullable=False),
)

import_tokens = Table(
    "kms_import_tokens",
    metadata,
    Column("key_id", String(64), ForeignKey(_KEY, ondelete="CASCADE"), primary_key=True),
    Column("token_id", String(32), nullable=False),
)

replica_tags = Table(
    "kms_replica_tags",
    metadata,
    Column("key_id", String(64), ForeignKey(_KEY, ondelete="CASCADE"), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("tag_key", String(128), primary_key=True),
    Column("tag_value", String(256), nullable=False),
)

#: Migration 8: the import state of each replica of a multi-Region key with imported material.
#: AWS does not copy imported material to replicas: each region imports the same material
#: itself and has its own expiration; the sealed material itself stays shared by key id.
replica_imports = Table(
    "kms_replica_imports",
    metadata,
    Column("key_id", String(64), ForeignKey(_KEY, ondelete="CASCADE"), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("expiration_model", String(32), nullable=False),
    Column("valid_to", Float, nullable=True, index=True),
    Column("present", Boolean, nullable=False),
)


def migrate_replica_imports(conn: Connection) -> None:
    metadata.create_all(conn, tables=[replica_imports])


#: Migration 9: the latest import token of each (key, region). A multi-Region key's replicas
#: share its key id but take their own import parameters; one token per key id let a replica's
#: GetParametersForImport invalidate the primary's outstanding token (and the other way round).
regional_import_tokens = Table(
    "kms_regional_import_tokens",
    metadata,
    Column("key_id", String(64), ForeignKey(_KEY, ondelete="CASCADE"), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("token_id", String(32), nullable=False),
)


def migrate_regional_import_tokens(conn: Connection) -> None:
    """Create the table and carry each key's token over under the key's own region."""
    metadata.create_all(conn, tables=[regional_import_tokens])
    keys = metadata.tables["kms_keys"]
    rows = conn.execute(
        select(import_tokens.c.key_id, keys.c.region, import_tokens.c.token_id).join(
            keys, keys.c.key_id == import_tokens.c.key_id
        )
    ).all()
    if rows:
        conn.execute(
            insert(regional_import_tokens),
            [{"key_id": r.key_id, "region": r.region, "token_id": r.token_id} for r in rows],
        )


def migrate(conn: Connection) -> None:
    """Migration 7: create the tables, and carry each key's single imported material (the
    migration 3 ``kms_import_state`` row) over as its version 1."""
    metadata.create_all(conn, tables=[imported_materials, import_tokens, replica_tags])
    rows = conn.execute(select(import_state)).all()
    if rows:
        conn.execute(
            insert(imported_materials),
            [
                {
                    "key_id": r.key_id,
                    "version": 1,
                    "material_check": r.material_check,
                    "description": None,
                    "expiration_model": r.expiration_model,
                    "valid_to": r.valid_to,
                    "present": r.present,
                    "pending_rotation": False,
                }
                for r in rows
            ],
        )
