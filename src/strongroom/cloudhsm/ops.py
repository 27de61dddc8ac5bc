"""The ``cloudhsmv2`` operations (handlers take the control plane, the caller and the request).

Handlers validate and record intent; the control loop (:mod:`strongroom.cloudhsm.control`) makes
it happen. Errors are the model's: CloudHsmInvalidRequestException for a wrong state or bad
parameter, CloudHsmResourceNotFoundException for an unknown id.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strongroom.cloudhsm import domain as d
from strongroom.cloudhsm.control import ClusterControl, new_hsm
from strongroom.cloudhsm.domain import Cluster, bad_request, not_found
from strongroom.cloudhsm.ops_backup import source_backup
from strongroom.crypto.x509 import CertificateError, validate_signed_csr

__all__ = ["OPERATIONS", "CallerContext"]


@dataclass(frozen=True)
class CallerContext:
    account_id: str
    region: str


Handler = Callable[[ClusterControl, CallerContext, dict[str, Any]], dict[str, Any]]


def _cluster(control: ClusterControl, ctx: CallerContext, cluster_id: str) -> Cluster:
    """The caller's cluster in the request's region (clusters are regional resources)."""
    found = control.cluster(cluster_id)
    if (
        found is None
        or not found.belongs_to(ctx.account_id, ctx.region)
        or found.state == d.DELETED
    ):
        raise not_found(f"Cluster {cluster_id} not found")
    return found


def _retention(policy: dict[str, Any] | None, default: int) -> int:
    if not policy:
        return default
    try:
        days = int(policy.get("Value", ""))
    except ValueError:
        days = 0
    if policy.get("Type") != "DAYS" or not 7 <= days <= 379:
        raise bad_request("BackupRetentionPolicy must be Type DAYS with a Value from 7 to 379")
    return days


def create_cluster(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """CreateCluster: a new cluster (UNINITIALIZED once created) in the given subnets."""
    subnets: dict[str, str] = {}
    for subnet in req["SubnetIds"]:
        az = d.subnet_zone(subnet, ctx.region)
        if az in subnets.values():
            raise bad_request("Only one subnet per Availability Zone may be given")
        subnets[subnet] = az
    hsm_type = req["HsmType"]
    if hsm_type not in ("hsm1.medium", "hsm2m.medium"):
        raise bad_request(f"HsmType {hsm_type} is not supported")
    tags = d.request_tags(req.get("TagList"))
    mode = req.get("Mode", "FIPS" if hsm_type == "hsm1.medium" else "NON_FIPS")
    restored: dict[str, Any] = {}
    if req.get("SourceBackupId"):
        source = source_backup(control, ctx, req["SourceBackupId"])
        if source.state != "READY":
            raise bad_request(f"Backup {source.backup_id} is not READY")
        if "Mode" in req and mode != source.mode:
            raise bad_request(f"A {source.mode} backup restores only into a {source.mode} cluster")
        mode = source.mode
        restored = {
            "source_backup_id": source.backup_id,
            "trust_anchor": source.trust_anchor,
            "cluster_certificate": source.cluster_certificate,
        }
    if hsm_type == "hsm1.medium" and mode != "FIPS":
        raise bad_request("hsm1.medium clusters run in FIPS mode only")
    cluster = Cluster(
        cluster_id=d.new_id("cluster"),
        account_id=ctx.account_id,
        region=ctx.region,
        hsm_type=hsm_type,
        state=d.CREATE_IN_PROGRESS,
        subnets=subnets,
        created=control.now(),
        retention_days=_retention(req.get("BackupRetentionPolicy"), 90),
        mode=mode,
        network_type=req.get("NetworkType", "IPV4"),
        tags=tags,
        **restored,
    )
    control.save_cluster(cluster)
    return {"Cluster": cluster.wire([])}


_CLUSTER_FILTERS = frozenset({"clusterIds", "vpcIds", "states"})


def _matches(cluster: Cluster, filters: dict[str, list[str]]) -> bool:
    tests = {
        "clusterIds": cluster.cluster_id,
        "vpcIds": d.VPC_ID,
        "states": cluster.state,
    }
    return all(tests[name] in values for name, values in filters.items())


def describe_clusters(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """DescribeClusters: filtered, paginated (MaxResults 1–25, NextToken)."""
    filters = req.get("Filters", {})
    unknown = sorted(set(filters) - _CLUSTER_FILTERS)
    if unknown:
        raise bad_request(f"Unknown filter {unknown[0]}")
    start = d.page_start(req.get("NextToken"))
    mine = [c for c in control.clusters(ctx.account_id) if c.belongs_to(ctx.account_id, ctx.region)]
    found = [c for c in mine if _matches(c, filters)]
    if "states" not in filters:
        found = [c for c in found if c.state != d.DELETED]
    limit = req.get("MaxResults", 25)
    page = found[start : start + limit]
    out: dict[str, Any] = {
        "Clusters": [c.wire(control.hsms(c.cluster_id)) for c in page],
    }
    if start + limit < len(found):
        out["NextToken"] = d.page_token(start + limit)
    return out


def initialize_cluster(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """InitializeCluster: check the customer-signed certificate and trust anchor, then claim."""
    cluster = _cluster(control, ctx, req["ClusterId"])
    if cluster.state != d.UNINITIALIZED or not cluster.csr:
        raise bad_request(
            f"Cluster {cluster.cluster_id} must be UNINITIALIZED with an ACTIVE HSM to be "
            f"initialized; it is {cluster.state}"
        )
    try:
        validate_signed_csr(req["SignedCert"], req["TrustAnchor"], cluster.csr)
    except CertificateError as exc:
        raise bad_request(f"Invalid certificate: {exc}") from None
    with control.lock:
        cluster = _cluster(control, ctx, req["ClusterId"])
        cluster.cluster_certificate = req["SignedCert"]
        cluster.trust_anchor = req["TrustAnchor"]
        cluster.state = d.INITIALIZE_IN_PROGRESS
        cluster.state_message = (
            "Cluster is initializing. State will change to INITIALIZED upon completion."
        )
        control.save_cluster(cluster)
    return {"State": cluster.state, "StateMessage": cluster.state_message}


def modify_cluster(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """ModifyCluster: the backup retention policy and the HSM type (cloudhsm.md §1.5, §1.8).

    HsmType hsm1.medium → hsm2m.medium (only from ACTIVE) starts MODIFY_IN_PROGRESS; back to
    hsm1.medium is allowed until HsmTypeRollbackExpiration (ROLLBACK_IN_PROGRESS). The control
    loop takes a backup, then replaces the HSMs one at a time with HSMs of the new type.
    """
    with control.lock:
        cluster = _cluster(control, ctx, req["ClusterId"])
        if "HsmType" in req and req["HsmType"] != cluster.hsm_type:
            _change_hsm_type(control, cluster, req["HsmType"])
        cluster.retention_days = _retention(
            req.get("BackupRetentionPolicy"), cluster.retention_days
        )
        control.save_cluster(cluster)
    return {"Cluster": cluster.wire(control.hsms(cluster.cluster_id))}


#: How long a migrated cluster may roll back to hsm1.medium. [inferred] The reference gives no
#: figure for HsmTypeRollbackExpiration; 7 days after the change is our choice.
ROLLBACK_WINDOW = 7 * 86400.0


def _change_hsm_type(control: ClusterControl, cluster: Cluster, target: str) -> None:
    if cluster.state != d.ACTIVE:
        raise bad_request(
            f"Cluster {cluster.cluster_id} must be ACTIVE to change its HSM type; "
            f"it is {cluster.state}"
        )
    now = control.now()
    if cluster.hsm_type == "hsm1.medium" and target == "hsm2m.medium":
        cluster.state = d.MODIFY_IN_PROGRESS
        cluster.state_message = "The cluster's HSMs are being migrated to hsm2m.medium."
        cluster.rollback_expiration = now + ROLLBACK_WINDOW
    elif (
        cluster.hsm_type == "hsm2m.medium"
        and target == "hsm1.medium"
        and cluster.rollback_expiration is not None
        and now < cluster.rollback_expiration
    ):
        cluster.state = d.ROLLBACK_IN_PROGRESS
        cluster.state_message = "The cluster's HSMs are being rolled back to hsm1.medium."
        cluster.rollback_expiration = None
    else:
        raise bad_request(
            f"Cannot change the HSM type of {cluster.cluster_id} from {cluster.hsm_type} "
            f"to {target}"
        )
    cluster.hsm_type = target
    cluster.backup_due = "HSM type change"


def delete_cluster(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """DeleteCluster: only a cluster without HSMs."""
    with control.lock:
        cluster = _cluster(control, ctx, req["ClusterId"])
        if control.hsms(cluster.cluster_id):
            raise bad_request(
                f"Cluster {cluster.cluster_id} has HSMs; delete them before the cluster"
            )
        cluster.state = d.DELETE_IN_PROGRESS
        cluster.state_message = "The cluster is being deleted."
        control.save_cluster(cluster)
    return {"Cluster": cluster.wire([])}


def create_hsm(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """CreateHsm: a new HSM (a node process) in one of the cluster's AZs."""
    with control.lock:
        cluster = _cluster(control, ctx, req["ClusterId"])
        az = req["AvailabilityZone"]
        subnet = next((s for s, z in cluster.subnets.items() if z == az), None)
        if subnet is None:
            raise bad_request(f"Availability zone {az} is not in the cluster's subnet mapping")
        if cluster.state not in (d.UNINITIALIZED, d.INITIALIZED, d.ACTIVE):
            raise bad_request(f"Cannot add an HSM to a cluster in state {cluster.state}")
        if len(control.hsms(cluster.cluster_id)) >= 28:
            raise bad_request("A cluster has at most 28 HSMs")
        ip = _requested_ip(control, subnet, req["IpAddress"]) if req.get("IpAddress") else ""
        hsm = new_hsm(cluster, az, subnet, control.now(), ip)
        control.save_hsm(hsm)
    return {"Hsm": hsm.wire()}


def _requested_ip(control: ClusterControl, subnet: str, wanted: str) -> str:
    """CreateHsm's IpAddress: a free address of the subnet of the HSM's AZ."""
    network = d.SUBNET_CIDRS[subnet]
    try:
        ip = ipaddress.IPv4Address(wanted)
    except ValueError:
        raise bad_request(f"{wanted} is not a valid IPv4 address") from None
    if ip not in network or ip in (network.network_address, network.broadcast_address):
        raise bad_request(f"IP address {wanted} is not in the range of {subnet} ({network})")
    taken = any(h.eni_ip == str(ip) for h in control.hsms())
    if taken or not control.supervisor.address_free(str(ip), d.NODE_PORT):
        raise bad_request(f"IP address {wanted} is already in use")
    return str(ip)


def delete_hsm(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """DeleteHsm: by exactly one of HsmId, EniId, EniIp."""
    given = [k for k in ("HsmId", "EniId", "EniIp") if req.get(k)]
    if len(given) != 1:
        raise bad_request("Specify exactly one of HsmId, EniId and EniIp")
    field = {"HsmId": "hsm_id", "EniId": "eni_id", "EniIp": "eni_ip"}[given[0]]
    with control.lock:
        cluster = _cluster(control, ctx, req["ClusterId"])
        hsm = next(
            (h for h in control.hsms(cluster.cluster_id) if getattr(h, field) == req[given[0]]),
            None,
        )
        if hsm is None:
            raise not_found(f"HSM {req[given[0]]} not found in {cluster.cluster_id}")
        hsm.state = d.DELETE_IN_PROGRESS
        control.save_hsm(hsm)
    return {"HsmId": hsm.hsm_id}


from strongroom.cloudhsm.ops_meta import META_OPERATIONS  # noqa: E402

OPERATIONS: dict[str, Handler] = {
    "CreateCluster": create_cluster,
    "DescribeClusters": describe_clusters,
    "InitializeCluster": initialize_cluster,
    "ModifyCluster": modify_cluster,
    "DeleteCluster": delete_cluster,
    "CreateHsm": create_hsm,
    "DeleteHsm": delete_hsm,
    **META_OPERATIONS,
}
