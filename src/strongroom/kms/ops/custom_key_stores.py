"""Custom key store operations (AWS_CLOUDHSM): Create, Describe, Update, Connect, Disconnect and
Delete, with the rules and errors of kms-api.md §4."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from strongroom.cloudhsm import domain as hsmd
from strongroom.errors import AwsError
from strongroom.kms.keystores.cloudhsm import CloudHsmKeyStores
from strongroom.kms.ops import _common as c
from strongroom.kms.service import Kms, RequestContext
from strongroom.storage import cks_repo
from strongroom.storage.cks_repo import StoreRow

if TYPE_CHECKING:
    from strongroom.kms.domain.keys import KeyRecord

__all__ = ["HANDLERS", "check_cluster_for_keys", "delete_cluster_key", "store_for"]

log = logging.getLogger("strongroom.kms.cloudhsm")

_LIMIT = 10


def _stores(kms: Kms) -> CloudHsmKeyStores:
    stores = kms.cloudhsm
    if not isinstance(stores, CloudHsmKeyStores):
        raise AwsError("UnsupportedOperationException", "Custom key stores are not configured.")
    return stores


def store_for(kms: Kms, ctx: RequestContext, store_id: str) -> StoreRow:
    """The caller's store, or CustomKeyStoreNotFoundException."""
    with kms.engine.connect() as conn:
        row = cks_repo.get_store(conn, store_id)
    if row is None or row.account_id != ctx.account_id or row.region != ctx.region:
        raise AwsError(
            "CustomKeyStoreNotFoundException", f"Custom key store {store_id} does not exist"
        )
    return row


def _invalid_state(row: StoreRow, op: str) -> AwsError:
    return AwsError(
        "CustomKeyStoreInvalidStateException",
        f"{op} is not valid for custom key store {row.store_id} in state {row.connection_state}",
    )


def check_cluster_for_keys(kms: Kms, ctx: RequestContext, cluster_id: str) -> None:
    """The cluster exists (the caller's, in the request's region: clusters are regional, as
    key stores are), is ACTIVE and has ≥ 2 ACTIVE HSMs in different AZs."""
    control = _stores(kms).control
    cluster = control.cluster(cluster_id)
    if (
        cluster is None
        or not cluster.belongs_to(ctx.account_id, ctx.region)
        or cluster.state == hsmd.DELETED
    ):
        raise AwsError("CloudHsmClusterNotFoundException", f"Cluster {cluster_id} not found")
    if cluster.state != hsmd.ACTIVE:
        raise AwsError("CloudHsmClusterNotActiveException", f"Cluster {cluster_id} is not active")
    zones = {h.az for h in control.live_members(cluster_id)}
    if len(cluster.subnets) < 2 or len(zones) < 2:
        raise AwsError(
            "CloudHsmClusterInvalidConfigurationException",
            f"Cluster {cluster_id} must have at least two active HSMs in different "
            "Availability Zones.",
        )


def create_custom_key_store(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """CreateCustomKeyStore (AWS_CLOUDHSM)."""
    kms.authorize(ctx, None, "CreateCustomKeyStore", request=req)
    if req.get("CustomKeyStoreType", "AWS_CLOUDHSM") != "AWS_CLOUDHSM":
        raise AwsError("UnsupportedOperationException", "External key stores are not supported.")
    for name in ("CloudHsmClusterId", "TrustAnchorCertificate", "KeyStorePassword"):
        if not req.get(name):
            raise AwsError("ValidationException", f"{name} is required for AWS_CLOUDHSM stores")
    cluster_id, name = req["CloudHsmClusterId"], req["CustomKeyStoreName"]
    stores = _stores(kms)
    with kms.engine.connect() as conn:
        existing = cks_repo.list_stores(conn, ctx.account_id, ctx.region)
    for row in existing:
        if row.name == name:
            raise AwsError("CustomKeyStoreNameInUseException", f"{name} is already in use")
        if row.cluster_id == cluster_id:
            raise AwsError("CloudHsmClusterInUseException", f"{cluster_id} is already in use")
    if len(existing) >= _LIMIT:
        raise AwsError("LimitExceededException", "An account can have 10 custom key stores")
    check_cluster_for_keys(kms, ctx, cluster_id)
    cluster = stores.control.cluster(cluster_id)
    anchor = req["TrustAnchorCertificate"]
    if cluster is None or cluster.trust_anchor.strip() != anchor.strip():
        raise AwsError(
            "IncorrectTrustAnchorException",
            f"The trust anchor certificate does not match cluster {cluster_id}",
        )
    store_id = "cks-" + os.urandom(9).hex()[:17]
    row = StoreRow(
        store_id,
        ctx.account_id,
        ctx.region,
        name,
        cluster_id,
        anchor,
        stores.seal_password(store_id, req["KeyStorePassword"]),
        "DISCONNECTED",
        None,
        round(kms.clock.now(), 3),
    )
    with kms.transaction() as conn:
        cks_repo.insert_store(conn, row)
    return {"CustomKeyStoreId": store_id}


def _entry(row: StoreRow) -> c.Response:
    out: c.Response = {
        "CustomKeyStoreId": row.store_id,
        "CustomKeyStoreName": row.name,
        "CloudHsmClusterId": row.cluster_id,
        "TrustAnchorCertificate": row.trust_anchor,
        "ConnectionState": row.connection_state,
        "CreationDate": row.created,
        "CustomKeyStoreType": "AWS_CLOUDHSM",
    }
    if row.connection_state == "FAILED" and row.error_code:
        out["ConnectionErrorCode"] = row.error_code
    return out


def describe_custom_key_stores(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """DescribeCustomKeyStores: by id or name (not both), paginated."""
    kms.authorize(ctx, None, "DescribeCustomKeyStores", request=req)
    if "CustomKeyStoreId" in req and "CustomKeyStoreName" in req:
        raise AwsError("ValidationException", "Specify CustomKeyStoreId or CustomKeyStoreName")
    with kms.engine.connect() as conn:
        rows = cks_repo.list_stores(conn, ctx.account_id, ctx.region)
    if "CustomKeyStoreId" in req:
        rows = [r for r in rows if r.store_id == req["CustomKeyStoreId"]]
    if "CustomKeyStoreName" in req:
        rows = [r for r in rows if r.name == req["CustomKeyStoreName"]]
    if not rows and ("CustomKeyStoreId" in req or "CustomKeyStoreName" in req):
        raise AwsError("CustomKeyStoreNotFoundException", "The custom key store does not exist")
    limit = c.page_limit(req, 100, 1000)
    after = c.decode_marker("cks", req.get("Marker"))
    if after:
        rows = [r for r in rows if r.store_id > after]
    out: c.Response = {"CustomKeyStores": [_entry(r) for r in rows[:limit]]}
    out["Truncated"] = len(rows) > limit
    if len(rows) > limit:
        out["NextMarker"] = c.encode_marker("cks", rows[limit - 1].store_id)
    return out


def update_custom_key_store(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """UpdateCustomKeyStore: name (connected or not); password and cluster only disconnected."""
    kms.authorize(ctx, None, "UpdateCustomKeyStore", request=req)
    row = store_for(kms, ctx, req["CustomKeyStoreId"])
    stores = _stores(kms)
    changes: dict[str, object] = {}
    deep = "KeyStorePassword" in req or "CloudHsmClusterId" in req
    if deep and row.connection_state != "DISCONNECTED":
        raise _invalid_state(row, "UpdateCustomKeyStore")
    if "NewCustomKeyStoreName" in req:
        if row.connection_state not in ("DISCONNECTED", "CONNECTED"):
            raise _invalid_state(row, "UpdateCustomKeyStore")
        with kms.engine.connect() as conn:
            others = cks_repo.list_stores(conn, ctx.account_id, ctx.region)
        if any(o.name == req["NewCustomKeyStoreName"] for o in others):
            raise AwsError("CustomKeyStoreNameInUseException", "That name is already in use")
        changes["name"] = req["NewCustomKeyStoreName"]
    if "CloudHsmClusterId" in req and req["CloudHsmClusterId"] != row.cluster_id:
        check_cluster_for_keys(kms, ctx, req["CloudHsmClusterId"])
        new = stores.control.cluster(req["CloudHsmClusterId"])
        old = stores.control.cluster(row.cluster_id)
        if new is None or old is None or new.cluster_certificate != old.cluster_certificate:
            raise AwsError(
                "CloudHsmClusterNotRelatedException",
                "The cluster does not share the backup history of the key store's cluster",
            )
        changes["cluster_id"] = req["CloudHsmClusterId"]
    if "KeyStorePassword" in req:
        changes["password_wrapped"] = stores.seal_password(row.store_id, req["KeyStorePassword"])
    if changes:
        with kms.transaction() as conn:
            cks_repo.update_store(conn, row.store_id, **changes)
    return {}


def connect_custom_key_store(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """ConnectCustomKeyStore: answers at once with the store CONNECTING; the cluster control
    loop logs in as kmsuser, rotates its password, and records CONNECTED or FAILED."""
    kms.authorize(ctx, None, "ConnectCustomKeyStore", request=req)
    row = store_for(kms, ctx, req["CustomKeyStoreId"])
    if row.connection_state in ("DISCONNECTING", "FAILED"):
        raise _invalid_state(row, "ConnectCustomKeyStore")
    if row.connection_state in ("CONNECTED", "CONNECTING"):
        return {}
    cluster = _stores(kms).control.cluster(row.cluster_id)
    if cluster is not None and cluster.state not in (
        hsmd.ACTIVE,
        hsmd.DELETED,
        hsmd.DELETE_IN_PROGRESS,
    ):
        raise AwsError("CloudHsmClusterNotActiveException", f"{row.cluster_id} is not active")
    with kms.transaction() as conn:
        cks_repo.update_store(conn, row.store_id, connection_state="CONNECTING", error_code=None)
    return {}


def disconnect_custom_key_store(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """DisconnectCustomKeyStore: log out; the store's keys become Unavailable. Every process
    drops its own login (the key store sweeper sees the state)."""
    kms.authorize(ctx, None, "DisconnectCustomKeyStore", request=req)
    row = store_for(kms, ctx, req["CustomKeyStoreId"])
    if row.connection_state in ("DISCONNECTING", "DISCONNECTED"):
        raise _invalid_state(row, "DisconnectCustomKeyStore")
    with kms.transaction() as conn:
        cks_repo.update_store(conn, row.store_id, connection_state="DISCONNECTED", error_code=None)
    _stores(kms).disconnect(row.store_id)
    return {}


def delete_custom_key_store(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """DeleteCustomKeyStore: only disconnected and without KMS keys."""
    kms.authorize(ctx, None, "DeleteCustomKeyStore", request=req)
    row = store_for(kms, ctx, req["CustomKeyStoreId"])
    if row.connection_state != "DISCONNECTED":
        raise _invalid_state(row, "DeleteCustomKeyStore")
    from sqlalchemy import func, select

    from strongroom.storage.schema import keys

    with kms.transaction() as conn:
        count = conn.execute(
            select(func.count()).where(keys.c.custom_key_store_id == row.store_id)
        ).scalar_one()
        if count:
            raise AwsError(
                "CustomKeyStoreHasCMKsException",
                f"Custom key store {row.store_id} contains KMS keys; delete them first",
            )
        cks_repo.delete_store(conn, row.store_id)
    return {}


HANDLERS: dict[str, c.Handler] = {
    "CreateCustomKeyStore": create_custom_key_store,
    "DescribeCustomKeyStores": describe_custom_key_stores,
    "UpdateCustomKeyStore": update_custom_key_store,
    "ConnectCustomKeyStore": connect_custom_key_store,
    "DisconnectCustomKeyStore": disconnect_custom_key_store,
    "DeleteCustomKeyStore": delete_custom_key_store,
}


# --- keys in a CloudHSM key store (called from CreateKey and the crypto operations) ----------


def create_cloudhsm_key(
    kms: Kms, ctx: RequestContext, req: c.Request, spec: str, usage: str
) -> c.Response:
    """CreateKey with Origin AWS_CLOUDHSM: the key's AES-256 material is made in the cluster."""
    from strongroom.kms.domain.keys import KeyRecord, default_policy
    from strongroom.kms.domain.states import KeyState
    from strongroom.kms.ops import _keyspec, _lifecycle
    from strongroom.storage import kms_repo

    if req.get("Origin") != "AWS_CLOUDHSM" or "CustomKeyStoreId" not in req:
        raise AwsError(
            "ValidationException",
            "A key in a custom key store needs Origin AWS_CLOUDHSM and a CustomKeyStoreId",
        )
    if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT" or req.get("MultiRegion"):
        raise AwsError(
            "UnsupportedOperationException",
            "Custom key stores support only symmetric encryption keys in a single Region.",
        )
    row = store_for(kms, ctx, req["CustomKeyStoreId"])
    if row.connection_state != "CONNECTED":
        raise _invalid_state(row, "CreateKey")
    check_cluster_for_keys(kms, ctx, row.cluster_id)
    tags = c.check_tags(req.get("Tags"))
    rec = KeyRecord(
        key_id=_keyspec.new_key_id(False),
        account_id=ctx.account_id,
        region=ctx.region,
        state=KeyState.ENABLED,
        key_spec=spec,
        key_usage=usage,
        origin="AWS_CLOUDHSM",
        description=req.get("Description", ""),
        created=round(kms.clock.now(), 3),
        deletion_date=None,
        pending_window_days=None,
        multi_region=False,
        key_manager="CUSTOMER",
        custom_key_store_id=row.store_id,
        policy=req.get("Policy") or default_policy(ctx.account_id),
        current_version=1,
    )
    _stores(kms).create_key(row, rec.arn)
    with kms.transaction() as conn:
        kms_repo.insert_key(conn, rec, None)
        kms_repo.put_tags(conn, rec.key_id, tags)
        _lifecycle.on_create(conn, rec)
    meta = _lifecycle.metadata(kms, rec)
    meta["CloudHsmClusterId"] = row.cluster_id
    return {"KeyMetadata": meta}


def _connected_row(kms: Kms, store_id: str, arn: str) -> StoreRow:
    row = kms.key_store(store_id)
    if row is None or row.connection_state != "CONNECTED":
        raise AwsError(
            "KMSInvalidStateException",
            f"{arn} is unavailable: its custom key store {store_id} is not connected.",
        )
    return row


def seal(kms: Kms, key_id: str, arn: str, store_id: str, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt inside the cluster."""
    row = _connected_row(kms, store_id, arn)
    return _stores(kms).encrypt(row, key_id, arn, plaintext, aad)


def open_blob(kms: Kms, arn: str, store_id: str, head: object, aad: bytes) -> bytes:
    """Decrypt inside the cluster."""
    from strongroom.kms.domain.ciphertext import BlobHeader

    assert isinstance(head, BlobHeader)
    row = _connected_row(kms, store_id, arn)
    return _stores(kms).decrypt(row, arn, head, aad)


def random_bytes(kms: Kms, ctx: RequestContext, store_id: str, count: int) -> bytes:
    """GenerateRandom with a CustomKeyStoreId: bytes from the cluster."""
    row = store_for(kms, ctx, store_id)
    if row.connection_state != "CONNECTED":
        raise _invalid_state(row, "GenerateRandom")
    return _stores(kms).random(row, count)


def delete_cluster_key(kms: Kms, rec: KeyRecord) -> None:
    """After a deleted key's waiting period: best-effort delete of its cluster key (a store
    that is not connected leaves it orphaned, as AWS does)."""
    row = None if rec.custom_key_store_id is None else kms.key_store(rec.custom_key_store_id)
    stores = kms.cloudhsm
    if (
        row is None
        or row.connection_state != "CONNECTED"
        or not isinstance(stores, CloudHsmKeyStores)
    ):
        log.warning("the cluster key of deleted key %s is left in the cluster", rec.arn)
        return
    if not stores.delete_key(row, rec.arn):
        log.warning("could not delete the cluster key of deleted key %s", rec.arn)
