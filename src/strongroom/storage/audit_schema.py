"""The audit trail's tables (issue 7), on the shared :data:`strongroom.storage.schema.metadata`.

``audit_events`` is the hash-chained trail: one row per entry (an API call's event, the intent
entry a state-changing call makes durable before it runs, an alarm state change), numbered
gaplessly by ``seq``; ``body`` is the canonical JSON the chain hashes, the other columns are
copies kept for LookupEvents' indexes. ``audit_digests`` holds the signed digests, one per
committed batch, chained by ``prev_hash``. ``audit_head`` is a single row (id 1) naming the chain
head; writers lock it, which serialises batches across processes on PostgreSQL (SQLite's
``BEGIN IMMEDIATE`` does so already). ``audit_hsm_logs`` keeps each HSM's own audit log, one
stream per (cluster, HSM), gapless by the node's sequence number. ``audit_key_usage`` is
derived from the trail as it is stored: each KMS key's last successful cryptographic call
(GetKeyLastUsage), one row per key ARN, plus one row with the empty ARN whose ``event_time``
is when tracking began.
"""

from __future__ import annotations

import time

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from strongroom.storage.schema import metadata

__all__ = [
    "audit_digests",
    "audit_epochs",
    "audit_events",
    "audit_head",
    "audit_hsm_logs",
    "audit_key_usage",
    "migrate_key_usage",
    "tracking_row",
]

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(8), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("event_time", Float, nullable=False),
    Column("event_name", String(128), nullable=False),
    Column("event_source", String(64), nullable=False),
    Column("read_only", Boolean, nullable=False),
    Column("username", String(128), nullable=False),
    Column("access_key_id", String(128), nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("resource_name", String(2048), nullable=False),
    Column("body", Text, nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_time", "event_time"),
    Index("ix_audit_events_event_id", "event_id"),
)

audit_digests = Table(
    "audit_digests",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    Column("signature", String(128), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("digest_seq", BigInteger, nullable=False),
    Column("digest_hash", String(64), nullable=False),
)

#: one row per start of the trail's writer (reliability figure A4): the epoch its digests carry
audit_epochs = Table(
    "audit_epochs",
    metadata,
    Column("epoch", BigInteger, primary_key=True, autoincrement=False),
    Column("started", Float, nullable=False),
)

audit_hsm_logs = Table(
    "audit_hsm_logs",
    metadata,
    Column("cluster_id", String(64), primary_key=True),
    Column("hsm_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_time", Float, nullable=False),
    Column("collected_at", Float, nullable=False),
    Column("body", Text, nullable=False),
)

audit_key_usage = Table(
    "audit_key_usage",
    metadata,
    Column("key_arn", String(2048), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("operation", String(64), nullable=False),
    Column("event_time", Float, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("request_id", String(64), nullable=False),
)


def migrate_key_usage(conn: Connection) -> None:
    """Migration 11: the table, and tracking beginning now (see
    :func:`strongroom.audit.key_usage.ensure_tracking`, which does the same for SQLite's
    separate trail file)."""
    audit_key_usage.create(conn, checkfirst=False)
    conn.execute(audit_key_usage.insert().values(**tracking_row(time.time())))


def tracking_row(now: float) -> dict[str, object]:
    """``audit_key_usage``'s row saying tracking began at ``now``: the empty key ARN."""
    return {"key_arn": "", "seq": 0, "operation": "", "event_time": now, "event_id": "",
            "request_id": ""}  # fmt: skip
