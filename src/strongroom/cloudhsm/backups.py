"""Cluster backups: the Backup record, and what the control loop does with backups.

Backups are taken by the service only (cloudhsm.md §1.9): when a cluster is activated, when an
HSM is added to or removed from an active cluster, and when a cluster's newest backup is a day
old. A backup is a member HSM's cluster state sealed by the HSM for the installation's backup
key (:mod:`strongroom.hsm.ops_backup`): the database holds only that blob. The retention
policy (7–379 days) purges old backups — PENDING_DELETION, restorable for 7 days — except the
cluster's newest and those marked NeverExpires; PENDING_DELETION backups past their
DeleteTimestamp become DELETED and lose their blob. A new HSM of a cluster with no live member
is restored from the cluster's newest backup, or from the backup the cluster was created from.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from strongroom.cloudhsm import domain as d
from strongroom.cloudhsm.domain import Cluster, Hsm
from strongroom.storage import cloudhsm_backup_repo as repo

if TYPE_CHECKING:
    from strongroom.cloudhsm.control import ClusterControl

__all__ = ["DAY", "RESTORE_WINDOW", "Backup", "BackupKeeper"]

log = logging.getLogger("strongroom.cloudhsm")

DAY = 86400.0
RESTORE_WINDOW = 7 * DAY
READY = "READY"
PENDING_DELETION = "PENDING_DELETION"
DELETED = "DELETED"
CREATE_IN_PROGRESS = "CREATE_IN_PROGRESS"


@dataclass
class Backup:
    """One backup as stored (a copy in another region has no cluster)."""

    backup_id: str
    account_id: str
    region: str
    cluster_id: str
    state: str
    created: float
    hsm_type: str
    mode: str
    trust_anchor: str
    cluster_certificate: str
    never_expires: bool = False
    delete_ts: float | None = None
    source_region: str = ""
    source_backup: str = ""
    source_cluster: str = ""
    copy_ts: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    policy: str = ""

    @property
    def arn(self) -> str:
        return f"arn:aws:cloudhsm:{self.region}:{self.account_id}:backup/{self.backup_id}"

    def document(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Backup:
        return cls(**doc)

    def wire(self) -> dict[str, Any]:
        """The ``Backup`` shape."""
        out: dict[str, Any] = {
            "BackupId": self.backup_id,
            "BackupArn": self.arn,
            "BackupState": self.state,
            "CreateTimestamp": self.created,
            "NeverExpires": self.never_expires,
            "TagList": [{"Key": k, "Value": v} for k, v in self.tags.items()],
            "HsmType": self.hsm_type,
            "Mode": self.mode,
        }
        if self.cluster_id:
            out["ClusterId"] = self.cluster_id
        if self.delete_ts is not None:
            out["DeleteTimestamp"] = self.delete_ts
        if self.copy_ts is not None:
            out["CopyTimestamp"] = self.copy_ts
        for key, value in (
            ("SourceRegion", self.source_region),
            ("SourceBackup", self.source_backup),
            ("SourceCluster", self.source_cluster),
        ):
            if value:
                out[key] = value
        return out


class BackupKeeper:
    """Storage access for the handlers, and the control loop's backup work."""

    def __init__(self, control: ClusterControl) -> None:
        self.control = control

    def get(self, backup_id: str) -> Backup | None:
        with self.control.engine.connect() as conn:
            doc = repo.get_backup(conn, backup_id)
        return None if doc is None else Backup.from_document(doc)

    def all(self, account_id: str | None = None, cluster_id: str | None = None) -> list[Backup]:
        with self.control.engine.connect() as conn:
            docs = repo.list_backups(conn, account_id, cluster_id)
        return [Backup.from_document(x) for x in docs]

    def save(self, backup: Backup, sealed: bytes | None = None) -> None:
        with self.control.write() as conn:
            repo.put_backup(conn, backup.document(), sealed)

    # --- the control loop ----------------------------------------------------------------

    def step(self, cluster: Cluster) -> None:
        """An ACTIVE cluster: take a due backup, then apply the retention policy."""
        now = self.control.now()
        mine = self.all(None, cluster.cluster_id)
        ready = [b for b in mine if b.state == READY]
        # the daily schedule counts from the newest backup taken, also when it is pending
        # deletion: deleting it does not make the next one due at once
        taken = [b.created for b in mine if b.state in (READY, PENDING_DELETION)]
        daily = not taken or max(taken) <= now - DAY
        if (cluster.backup_due or daily) and self.take(cluster, cluster.backup_due or "daily"):
            ready = [b for b in self.all(None, cluster.cluster_id) if b.state == READY]
        limit = now - cluster.retention_days * DAY
        for old in ready[:-1]:  # never the newest
            if not old.never_expires and old.created < limit:
                old.state, old.delete_ts = PENDING_DELETION, now + RESTORE_WINDOW
                self.save(old)
                log.info("backup %s of %s purged by its retention policy", old.backup_id,
                         cluster.cluster_id)  # fmt: skip

    def sweep(self) -> bool:
        """Every backup: copies become READY; expired deletions become DELETED. Whether a
        backup is left waiting for its deletion."""
        now = self.control.now()
        waiting = False
        for b in self.all():
            if b.state == CREATE_IN_PROGRESS:
                b.state = READY
                self.save(b)
            elif b.state == PENDING_DELETION and b.delete_ts is not None and b.delete_ts <= now:
                b.state = DELETED
                self.save(b)
            elif b.state == PENDING_DELETION:
                waiting = True
        return waiting

    def take(self, cluster: Cluster, reason: str) -> bool:
        """A backup of the cluster from a live member; False if none can be taken now."""
        anchor = self.control.anchor(cluster)
        members = [m for m in self.control.live_members(cluster.cluster_id) if m.joined]
        if anchor is None or not members:
            return False
        envelope = self.control.nodes.backup(members[0], anchor)
        backup = Backup(
            backup_id=d.new_id("backup"),
            account_id=cluster.account_id,
            region=cluster.region,
            cluster_id=cluster.cluster_id,
            state=READY,
            created=self.control.now(),
            hsm_type=cluster.hsm_type,
            mode=cluster.mode,
            trust_anchor=cluster.trust_anchor,
            cluster_certificate=cluster.cluster_certificate,
        )
        self.save(backup, msgspec.msgpack.encode(envelope))
        self.control.update_cluster(cluster.cluster_id, backup_due="")
        log.info("backup %s of %s taken (%s)", backup.backup_id, cluster.cluster_id, reason)
        return True

    def restore(self, cluster: Cluster, hsm: Hsm) -> bool:
        """Restore a fresh HSM from the cluster's newest backup (or its source backup)."""
        ready = [b for b in self.all(None, cluster.cluster_id) if b.state == READY]
        source = ready[-1] if ready else self.get(cluster.source_backup_id)
        if source is None or source.state not in (READY, PENDING_DELETION):
            return False
        with self.control.engine.connect() as conn:
            sealed = repo.sealed_of(conn, source.backup_id)
        if sealed is None:
            return False
        envelope = msgspec.msgpack.decode(sealed, type=dict[str, Any])
        self.control.nodes.restore(hsm, envelope, cluster.trust_anchor)
        log.info("HSM %s restored from backup %s", hsm.hsm_id, source.backup_id)
        return True
