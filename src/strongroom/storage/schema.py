"""The relational schema, as SQLAlchemy Core tables (the same on SQLite and PostgreSQL).

Times are float seconds since the epoch (UTC). Secrets (access-key secrets, key material) are
stored only wrapped by the root key. Later issues add tables through new migrations
(``strongroom.storage.migrations``), never by editing a migration that has shipped.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "access_keys",
    "aliases",
    "cloudhsm_backups",
    "cloudhsm_clusters",
    "cloudhsm_hsms",
    "custom_key_stores",
    "grants",
    "import_state",
    "key_materials",
    "keys",
    "material_events",
    "metadata",
    "multi_region",
    "replicas",
    "role_policies",
    "roles",
    "rotation_settings",
    "schema_migrations",
    "session_attributes",
    "sessions",
    "shared_settings",
    "tags",
    "user_policies",
    "users",
]

metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("applied_at", Float, nullable=False),
)

users = Table(
    "iam_users",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("user_name", String(64), primary_key=True),
    Column("user_id", String(32), nullable=False, unique=True),
    Column("created", Float, nullable=False),
)

access_keys = Table(
    "iam_access_keys",
    metadata,
    Column("access_key_id", String(32), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("user_name", String(64), nullable=False),
    Column("secret_wrapped", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created", Float, nullable=False),
)

keys = Table(
    "kms_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("account_id", String(12), nullable=False, index=True),
    Column("region", String(32), nullable=False),
    Column("state", String(32), nullable=False),
    Column("key_spec", String(32), nullable=False),
    Column("key_usage", String(32), nullable=False),
    Column("origin", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("deletion_date", Float, nullable=True, index=True),
    Column("pending_window_days", Integer, nullable=True),
    Column("multi_region", Boolean, nullable=False),
    Column("key_manager", String(16), nullable=False),
    Column("custom_key_store_id", String(64), nullable=True),
    Column("policy", Text, nullable=False),
    Column("current_version", Integer, nullable=False),
)

key_materials = Table(
    "kms_key_materials",
    metadata,
    Column("key_id", String(64), ForeignKey("kms_keys.key_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("material_wrapped", LargeBinary, nullable=False),
    Column("created", Float, nullable=False),
)

aliases = Table(
    "kms_aliases",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("alias_name", String(256), primary_key=True),
    Column("key_id", String(64), ForeignKey("kms_keys.key_id"), nullable=False, index=True),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)

tags = Table(
    "kms_tags",
    metadata,
    Column("key_id", String(64), ForeignKey("kms_keys.key_id"), primary_key=True),
    Column("tag_key", String(128), primary_key=True),
    Column("tag_value", String(256), nullable=False),
)

# -- migration 2: roles, identity policies, STS sessions, grants (issue 3) -------------------

roles = Table(
    "iam_roles",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("role_name", String(64), primary_key=True),
    Column("role_id", String(32), nullable=False, unique=True),
    Column("trust_policy", Text, nullable=False),
    Column("max_session_duration", Integer, nullable=False),
    Column("created", Float, nullable=False),
)

user_policies = Table(
    "iam_user_policies",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("user_name", String(64), primary_key=True),
    Column("policy_name", String(128), primary_key=True),
    Column("document", Text, nullable=False),
)

role_policies = Table(
    "iam_role_policies",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("role_name", String(64), primary_key=True),
    Column("policy_name", String(128), primary_key=True),
    Column("document", Text, nullable=False),
)

sessions = Table(
    "sts_sessions",
    metadata,
    Column("access_key_id", String(32), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("role_name", String(64), nullable=False),
    Column("session_name", String(64), nullable=False),
    Column("secret_wrapped", LargeBinary, nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("expiration", Float, nullable=False, index=True),
    Column("source_identity", String(256), nullable=False),
)

#: what AssumeRole gave a session beyond its role, for sessions given anything: the inline
#: session policy (``Policy``), the source identity (``SourceIdentity``, or the one the calling
#: session carried) and the session tags (``Tags``, with the caller's transitive ones)
session_attributes = Table(
    "sts_session_attributes",
    metadata,
    Column("access_key_id", String(32), primary_key=True),
    Column("policy", Text, nullable=True),
    Column("source_identity", String(64), nullable=True),
    #: session tags, a JSON object, and the transitive ones' keys, a JSON list
    Column("tags", Text, nullable=True),
    Column("transitive_tag_keys", Text, nullable=True),
)

grants = Table(
    "kms_grants",
    metadata,
    Column("grant_id", String(64), primary_key=True),
    Column("key_id", String(64), ForeignKey("kms_keys.key_id"), nullable=False, index=True),
    Column("name", String(256), nullable=True),
    Column("grantee_principal", String(256), nullable=False),
    Column("retiring_principal", String(256), nullable=True, index=True),
    Column("issuing_account", String(12), nullable=False),
    Column("operations", Text, nullable=False),
    Column("constraints", Text, nullable=True),
    Column("created", Float, nullable=False),
    #: the region of the key the grant is on: each region of a multi-Region key has its own
    #: grants (migration 10; NULL only in rows from before it, which it fills in)
    Column("region", String(32), nullable=True),
)

# -- migration 3: rotation, imported material, multi-Region replicas (issue 4) ---------------

rotation_settings = Table(
    "kms_rotation_settings",
    metadata,
    Column("key_id", String(64), ForeignKey("kms_keys.key_id"), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("period_days", Integer, nullable=False),
    Column("next_rotation", Float, nullable=True, index=True),
    Column("on_demand_start", Float, nullable=True),
)

material_events = Table(
    "kms_material_events",
    metadata,
    Column("key_id", String(64), ForeignKey("kms_keys.key_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("rotation_type", String(16), nullable=False),
    Column("rotated_at", Float, nullable=False),
)

import_state = Table(
    "kms_import_state",
    metadata,
    Column("key_id", String(64), ForeignKey("kms_keys.key_id"), primary_key=True),
    Column("material_check", LargeBinary, nullable=False),
    Column("expiration_model", String(32), nullable=False),
    Column("valid_to", Float, nullable=True, index=True),
    Column("present", Boolean, nullable=False),
)

multi_region = Table(
    "kms_multi_region",
    metadata,
    Column("key_id", String(64), ForeignKey("kms_keys.key_id"), primary_key=True),
    Column("primary_region", String(32), nullable=False),
)

replicas = Table(
    "kms_replicas",
    metadata,
    Column("key_id", String(64), ForeignKey("kms_keys.key_id"), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("state", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("policy", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("deletion_date", Float, nullable=True),
    Column("pending_window_days", Integer, nullable=True),
)

# --- migration 5: CloudHSM clusters, their HSMs, and KMS custom key stores ------------------

cloudhsm_clusters = Table(
    "cloudhsm_clusters",
    metadata,
    Column("cluster_id", String(32), primary_key=True),
    Column("account_id", String(12), nullable=False, index=True),
    Column("region", String(32), nullable=False),
    Column("state", String(32), nullable=False),
    Column("created", Float, nullable=False),
    Column("document", Text, nullable=False),
)

cloudhsm_hsms = Table(
    "cloudhsm_hsms",
    metadata,
    Column("hsm_id", String(32), primary_key=True),
    Column("cluster_id", String(32), nullable=False, index=True),
    Column("state", String(32), nullable=False),
    Column("created", Float, nullable=False),
    Column("document", Text, nullable=False),
)

custom_key_stores = Table(
    "kms_custom_key_stores",
    metadata,
    Column("store_id", String(32), primary_key=True),
    Column("account_id", String(12), nullable=False, index=True),
    Column("region", String(32), nullable=False),
    Column("name", String(256), nullable=False),
    Column("cluster_id", String(32), nullable=False),
    Column("trust_anchor", Text, nullable=False),
    Column("password_wrapped", LargeBinary, nullable=False),
    Column("connection_state", String(16), nullable=False),
    Column("error_code", String(64), nullable=True),
    Column("created", Float, nullable=False),
)

cloudhsm_backups = Table(
    "cloudhsm_backups",
    metadata,
    Column("backup_id", String(32), primary_key=True),
    Column("account_id", String(12), nullable=False, index=True),
    Column("region", String(32), nullable=False),
    Column("cluster_id", String(32), nullable=False, index=True),
    Column("state", String(32), nullable=False),
    Column("created", Float, nullable=False),
    Column("document", Text, nullable=False),
    Column("sealed", LargeBinary, nullable=True),  # the HSM-sealed cluster state
)

#: what the nodes sharing this database agree on (strongroom.node): a check value of each
#: secret they must share, the node that runs the CloudHSM clusters
shared_settings = Table(
    "shared_settings",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", String(64), nullable=False),
    Column("recorded_at", Float, nullable=False),
)
