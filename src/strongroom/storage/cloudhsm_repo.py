"""CloudHSM repositories: clusters and HSMs as JSON documents, over the caller's connection."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from strongroom.storage.schema import cloudhsm_clusters, cloudhsm_hsms

__all__ = [
    "delete_cluster",
    "delete_hsm",
    "get_cluster",
    "get_hsm",
    "hsms_of",
    "list_clusters",
    "put_cluster",
    "put_hsm",
]


def get_cluster(conn: Connection, cluster_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(cloudhsm_clusters.c.document).where(cloudhsm_clusters.c.cluster_id == cluster_id)
    ).first()
    return None if row is None else dict(json.loads(row[0]))


def list_clusters(conn: Connection, account_id: str | None = None) -> list[dict[str, Any]]:
    query = select(cloudhsm_clusters.c.document).order_by(
        cloudhsm_clusters.c.created, cloudhsm_clusters.c.cluster_id
    )
    if account_id is not None:
        query = query.where(cloudhsm_clusters.c.account_id == account_id)
    return [dict(json.loads(r[0])) for r in conn.execute(query)]


def put_cluster(conn: Connection, doc: dict[str, Any]) -> None:
    """Insert or replace a cluster document."""
    values = {
        "account_id": doc["account_id"],
        "region": doc["region"],
        "state": doc["state"],
        "created": doc["created"],
        "document": json.dumps(doc),
    }
    done = conn.execute(
        update(cloudhsm_clusters)
        .where(cloudhsm_clusters.c.cluster_id == doc["cluster_id"])
        .values(**values)
    )
    if done.rowcount == 0:
        conn.execute(insert(cloudhsm_clusters).values(cluster_id=doc["cluster_id"], **values))


def delete_cluster(conn: Connection, cluster_id: str) -> None:
    conn.execute(delete(cloudhsm_clusters).where(cloudhsm_clusters.c.cluster_id == cluster_id))


def get_hsm(conn: Connection, hsm_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(cloudhsm_hsms.c.document).where(cloudhsm_hsms.c.hsm_id == hsm_id)
    ).first()
    return None if row is None else dict(json.loads(row[0]))


def hsms_of(conn: Connection, cluster_id: str | None = None) -> list[dict[str, Any]]:
    query = select(cloudhsm_hsms.c.document).order_by(
        cloudhsm_hsms.c.created, cloudhsm_hsms.c.hsm_id
    )
    if cluster_id is not None:
        query = query.where(cloudhsm_hsms.c.cluster_id == cluster_id)
    return [dict(json.loads(r[0])) for r in conn.execute(query)]


def put_hsm(conn: Connection, doc: dict[str, Any]) -> None:
    """Insert or replace an HSM document."""
    values = {
        "cluster_id": doc["cluster_id"],
        "state": doc["state"],
        "created": doc["created"],
        "document": json.dumps(doc),
    }
    done = conn.execute(
        update(cloudhsm_hsms).where(cloudhsm_hsms.c.hsm_id == doc["hsm_id"]).values(**values)
    )
    if done.rowcount == 0:
        conn.execute(insert(cloudhsm_hsms).values(hsm_id=doc["hsm_id"], **values))


def delete_hsm(conn: Connection, hsm_id: str) -> None:
    conn.execute(delete(cloudhsm_hsms).where(cloudhsm_hsms.c.hsm_id == hsm_id))
