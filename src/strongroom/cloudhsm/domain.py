"""CloudHSM control-plane domain: identifiers, states, subnets, and the Cluster and Hsm records.

Records are plain dataclasses stored as JSON documents; :meth:`Cluster.wire` and
:meth:`Hsm.wire` give the ``cloudhsmv2`` shapes (cloudhsm.md §1.3).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strongroom.errors import AwsError

__all__ = [
    "ACTIVE",
    "DEFAULT_SUBNETS",
    "SUBNET_CIDRS",
    "Cluster",
    "Hsm",
    "bad_request",
    "check_tag_keys",
    "new_id",
    "not_found",
    "page_start",
    "page_token",
    "request_tags",
    "subnet_zone",
]

CREATE_IN_PROGRESS = "CREATE_IN_PROGRESS"
UNINITIALIZED = "UNINITIALIZED"
INITIALIZE_IN_PROGRESS = "INITIALIZE_IN_PROGRESS"
INITIALIZED = "INITIALIZED"
ACTIVE = "ACTIVE"
MODIFY_IN_PROGRESS = "MODIFY_IN_PROGRESS"
ROLLBACK_IN_PROGRESS = "ROLLBACK_IN_PROGRESS"
DELETE_IN_PROGRESS = "DELETE_IN_PROGRESS"
DELETED = "DELETED"
DEGRADED = "DEGRADED"

#: The embedded subnet configuration: subnet → zone letter in the request's region.
DEFAULT_SUBNETS = {"subnet-0000000a": "a", "subnet-0000000b": "b", "subnet-0000000c": "c"}
#: Each subnet's address range: an HSM's ENI address (a loopback address the node listens on)
#: is taken from the range of the subnet of its AZ, as CreateHsm's IpAddress must be.
SUBNET_CIDRS = {
    "subnet-0000000a": ipaddress.IPv4Network("127.64.0.0/12"),
    "subnet-0000000b": ipaddress.IPv4Network("127.80.0.0/12"),
    "subnet-0000000c": ipaddress.IPv4Network("127.96.0.0/12"),
}
VPC_ID = "vpc-00000001"
NODE_PORT = 2223


def new_id(prefix: str) -> str:
    """``cluster-…`` / ``hsm-…`` / ``backup-…``: 11 base32 characters, as AWS's ids."""
    return f"{prefix}-" + base64.b32encode(os.urandom(10)).decode().lower()[:11]


def bad_request(message: str) -> AwsError:
    return AwsError("CloudHsmInvalidRequestException", message)


def not_found(message: str) -> AwsError:
    return AwsError("CloudHsmResourceNotFoundException", message)


def tag_error(message: str) -> AwsError:
    return AwsError("CloudHsmTagException", message)


def check_tag_keys(keys: Iterable[str]) -> None:
    """CloudHsmTagException for a key with the reserved ``aws:`` prefix (any case)."""
    for key in keys:
        if key.lower().startswith("aws:"):
            raise tag_error(f"Tag keys beginning with aws: are reserved: {key}")


def request_tags(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """A request's TagList as a dict; CloudHsmTagException for reserved or repeated keys."""
    out: dict[str, str] = {}
    for tag in tags or ():
        key = tag["Key"]
        check_tag_keys([key])
        if key in out:
            raise tag_error(f"Duplicate tag key {key}")
        out[key] = tag["Value"]
    return out


def page_token(start: int) -> str:
    """The NextToken of a page that ends before item ``start``."""
    return base64.urlsafe_b64encode(str(start).encode()).decode()


def page_start(token: str | None) -> int:
    """Where a NextToken (from :func:`page_token`) resumes; CloudHsmInvalidRequestException
    for a token this service did not issue."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except (ValueError, binascii.Error):
        text = ""
    if not text.isdigit() or page_token(int(text)) != token:
        raise bad_request("Invalid NextToken")
    return int(text)


def subnet_zone(subnet_id: str, region: str) -> str:
    """The availability zone of a configured subnet, or CloudHsmInvalidRequestException."""
    letter = DEFAULT_SUBNETS.get(subnet_id)
    if letter is None:
        raise bad_request(f"The subnet ID {subnet_id} does not exist")
    return region + letter


@dataclass
class Hsm:
    """One HSM: a node process on a loopback address, with its own data directory."""

    hsm_id: str
    cluster_id: str
    az: str
    subnet_id: str
    hsm_type: str
    state: str
    eni_id: str
    eni_ip: str
    created: float
    pid: int = 0
    port: int = NODE_PORT
    state_message: str = ""
    joined: bool = False
    #: the dead HSM this one replaces (reported unhealthy until this one is ACTIVE)
    replacing: str = ""

    def wire(self) -> dict[str, Any]:
        """The ``Hsm`` shape."""
        out: dict[str, Any] = {
            "AvailabilityZone": self.az,
            "ClusterId": self.cluster_id,
            "SubnetId": self.subnet_id,
            "EniId": self.eni_id,
            "EniIp": self.eni_ip,
            "HsmId": self.hsm_id,
            "HsmType": self.hsm_type,
            "State": self.state,
        }
        if self.state_message:
            out["StateMessage"] = self.state_message
        return out

    @property
    def address(self) -> str:
        return f"{self.eni_ip}:{self.port}"


@dataclass
class Cluster:
    """One cluster as stored."""

    cluster_id: str
    account_id: str
    region: str
    hsm_type: str
    state: str
    subnets: dict[str, str]
    created: float
    retention_days: int = 90
    mode: str = "FIPS"
    network_type: str = "IPV4"
    state_message: str = ""
    csr: str = ""
    hsm_certificate: str = ""
    cluster_certificate: str = ""
    trust_anchor: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    source_backup_id: str = ""
    csr_hsm_id: str = ""
    #: why a backup is to be taken at the next pass ("" when none is due)
    backup_due: str = ""
    #: after an hsm1.medium → hsm2m.medium change: rollback allowed until then (epoch seconds)
    rollback_expiration: float | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:cloudhsm:{self.region}:{self.account_id}:cluster/{self.cluster_id}"

    def belongs_to(self, account_id: str, region: str) -> bool:
        """Whether a caller of ``account_id`` in ``region`` sees it (clusters are regional)."""
        return self.account_id == account_id and self.region == region

    def document(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Cluster:
        return cls(**doc)

    def certificates(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.state == UNINITIALIZED and self.csr:
            out["ClusterCsr"] = self.csr
        if self.hsm_certificate:
            out["HsmCertificate"] = self.hsm_certificate
            out["AwsHardwareCertificate"] = self.hsm_certificate
            out["ManufacturerHardwareCertificate"] = self.hsm_certificate
        if self.cluster_certificate:
            out["ClusterCertificate"] = self.cluster_certificate
        return out

    def wire(self, hsms: list[Hsm]) -> dict[str, Any]:
        """The ``Cluster`` shape."""
        out: dict[str, Any] = {
            "BackupPolicy": "DEFAULT",
            "BackupRetentionPolicy": {"Type": "DAYS", "Value": str(self.retention_days)},
            "ClusterId": self.cluster_id,
            "CreateTimestamp": self.created,
            "Hsms": [h.wire() for h in hsms],
            "HsmType": self.hsm_type,
            "SecurityGroup": "sg-" + self.cluster_id.removeprefix("cluster-")[:8].encode().hex(),
            "State": self.state,
            "SubnetMapping": {az: subnet for subnet, az in self.subnets.items()},
            "VpcId": VPC_ID,
            "NetworkType": self.network_type,
            "Certificates": self.certificates(),
            "TagList": [{"Key": k, "Value": v} for k, v in self.tags.items()],
            "Mode": self.mode,
        }
        if self.state_message:
            out["StateMessage"] = self.state_message
        if self.source_backup_id:
            out["SourceBackupId"] = self.source_backup_id
        if self.rollback_expiration is not None:
            out["HsmTypeRollbackExpiration"] = self.rollback_expiration
        return out
