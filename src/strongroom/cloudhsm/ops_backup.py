"""The ``cloudhsmv2`` backup operations: DescribeBackups, DeleteBackup, RestoreBackup,
ModifyBackupAttributes, CopyBackupToRegion, and the backup resource policies.

Backups are taken by the control loop (:mod:`strongroom.cloudhsm.backups`); there is no
CreateBackup, as on AWS.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from strongroom.cloudhsm import backups as b
from strongroom.cloudhsm import domain as d
from strongroom.cloudhsm.backups import Backup
from strongroom.cloudhsm.domain import bad_request, not_found
from strongroom.iam.policy import PolicyError, parse_policy

if TYPE_CHECKING:
    from strongroom.cloudhsm.control import ClusterControl
    from strongroom.cloudhsm.ops import CallerContext

__all__ = ["BACKUP_OPERATIONS", "backup_of", "shared_backup", "source_backup"]

_REGION = re.compile(r"^[a-z]{2}(-(gov|iso|isob))?-[a-z]+-\d{1,2}$")


def backup_of(control: ClusterControl, ctx: CallerContext, backup_id: str) -> Backup:
    """The caller's backup in the request's region, or CloudHsmResourceNotFoundException."""
    if backup_id.startswith("arn:"):
        backup_id = backup_id.rsplit("/", 1)[-1]
    found = control.backups.get(backup_id)
    if (
        found is None
        or found.account_id != ctx.account_id
        or found.region != ctx.region
        or found.state == b.DELETED
    ):
        raise not_found(f"Backup {backup_id} not found")
    return found


def shared_backup(control: ClusterControl, ctx: CallerContext, ref: str) -> Backup | None:
    """The backup a full backup ARN of *another* account names, if it exists in the caller's
    region and its owner shared it (a resource policy); None for anything else. Whether that
    policy lets the caller restore from it is decided where calls are authorized
    (:mod:`strongroom.cloudhsm.binding`)."""
    parts = ref.split(":")
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "cloudhsm"] or parts[4] == ctx.account_id:
        return None
    found = control.backups.get(parts[5].removeprefix("backup/"))
    if (
        found is None
        or found.arn != ref
        or found.region != ctx.region
        or found.state == b.DELETED
        or not found.policy
    ):
        return None
    return found


def source_backup(control: ClusterControl, ctx: CallerContext, ref: str) -> Backup:
    """CreateCluster's SourceBackupId: the caller's backup (ID or ARN), or another account's
    that was shared with a resource policy (full ARN only, as on AWS)."""
    if ref.startswith("arn:"):
        shared = shared_backup(control, ctx, ref)
        if shared is not None:
            return shared
    return backup_of(control, ctx, ref)


_BACKUP_FILTERS = frozenset(
    {"backupIds", "sourceBackupIds", "clusterIds", "states", "neverExpires"}
)


def _matches(backup: Backup, filters: dict[str, list[str]]) -> bool:
    tests = {
        "backupIds": backup.backup_id,
        "sourceBackupIds": backup.source_backup,
        "clusterIds": backup.cluster_id,
        "states": backup.state,
        "neverExpires": str(backup.never_expires).lower(),
    }
    for name, values in filters.items():
        if tests[name] not in [str(v).lower() if name == "neverExpires" else v for v in values]:
            return False
    return True


def describe_backups(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """DescribeBackups: filters, MaxResults 1–50, NextToken, SortAscending (default newest
    first); ``Shared`` lists backups shared with the caller through RAM (none here)."""
    filters = req.get("Filters", {})
    unknown = sorted(set(filters) - _BACKUP_FILTERS)
    if unknown:
        raise bad_request(f"Unknown filter {unknown[0]}")
    start = d.page_start(req.get("NextToken"))
    if req.get("Shared"):
        return {"Backups": []}
    found = [
        x
        for x in control.backups.all(ctx.account_id)
        if x.region == ctx.region and _matches(x, filters)
    ]
    if "states" not in filters:
        found = [x for x in found if x.state != b.DELETED]
    found.sort(key=lambda x: (x.created, x.backup_id), reverse=not req.get("SortAscending"))
    limit = req.get("MaxResults", 50)
    out: dict[str, Any] = {"Backups": [x.wire() for x in found[start : start + limit]]}
    if start + limit < len(found):
        out["NextToken"] = d.page_token(start + limit)
    return out


def delete_backup(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """DeleteBackup: PENDING_DELETION, restorable for 7 days (then DELETED)."""
    with control.lock:
        backup = backup_of(control, ctx, req["BackupId"])
        if backup.state != b.READY:
            raise bad_request(f"Backup {backup.backup_id} is {backup.state}; it must be READY")
        backup.state, backup.delete_ts = b.PENDING_DELETION, control.now() + b.RESTORE_WINDOW
        control.backups.save(backup)
    return {"Backup": backup.wire()}


def restore_backup(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """RestoreBackup: a PENDING_DELETION backup becomes READY again."""
    with control.lock:
        backup = backup_of(control, ctx, req["BackupId"])
        if backup.state != b.PENDING_DELETION:
            raise bad_request(f"Backup {backup.backup_id} is not pending deletion")
        backup.state, backup.delete_ts = b.READY, None
        control.backups.save(backup)
    return {"Backup": backup.wire()}


def modify_backup_attributes(
    control: ClusterControl, ctx: CallerContext, req: dict[str, Any]
) -> Any:
    """ModifyBackupAttributes: NeverExpires exempts a backup from the retention policy."""
    with control.lock:
        backup = backup_of(control, ctx, req["BackupId"])
        backup.never_expires = bool(req["NeverExpires"])
        control.backups.save(backup)
    return {"Backup": backup.wire()}


def copy_backup_to_region(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """CopyBackupToRegion: a new backup in the destination region, unrelated to any cluster
    (no retention policy); TagList replaces the source's tags if given."""
    region = req["DestinationRegion"]
    if not _REGION.match(region) or region == ctx.region:
        raise bad_request(f"Invalid destination region {region}")
    source = backup_of(control, ctx, req["BackupId"])
    if source.state != b.READY:
        raise bad_request(f"Backup {source.backup_id} must be READY to be copied")
    with control.engine.connect() as conn:
        from strongroom.storage.cloudhsm_backup_repo import sealed_of

        sealed = sealed_of(conn, source.backup_id)
    tags = d.request_tags(req["TagList"]) if "TagList" in req else source.tags
    copy = dataclasses.replace(
        source,
        backup_id=d.new_id("backup"),
        region=region,
        cluster_id="",
        state=b.CREATE_IN_PROGRESS,
        never_expires=False,
        delete_ts=None,
        source_region=ctx.region,
        source_backup=source.backup_id,
        source_cluster=source.cluster_id,
        copy_ts=control.now(),
        tags=tags,
        policy="",
    )
    control.backups.save(copy, sealed)
    destination = {
        "CreateTimestamp": copy.copy_ts,
        "SourceRegion": ctx.region,
        "SourceBackup": source.backup_id,
        "SourceCluster": source.cluster_id,
    }
    return {"DestinationBackup": destination}


def _policy_target(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Backup:
    arn = req.get("ResourceArn") or ""
    if not arn:
        raise bad_request("ResourceArn is required")
    return backup_of(control, ctx, arn)


def put_resource_policy(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """PutResourcePolicy: a policy on a READY backup (sharing it)."""
    with control.lock:
        backup = _policy_target(control, ctx, req)
        if backup.state != b.READY:
            raise bad_request("Only a READY backup can be shared")
        policy = req.get("Policy") or ""
        try:
            parse_policy(policy, kind="resource")
        except PolicyError as exc:
            raise bad_request(f"The policy is not valid: {exc}") from None
        backup.policy = policy
        control.backups.save(backup)
    return {"ResourceArn": backup.arn, "Policy": policy}


def get_resource_policy(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """GetResourcePolicy."""
    backup = _policy_target(control, ctx, req)
    return {"Policy": backup.policy} if backup.policy else {}


def delete_resource_policy(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """DeleteResourcePolicy: returns the policy it removed."""
    with control.lock:
        backup = _policy_target(control, ctx, req)
        previous, backup.policy = backup.policy, ""
        control.backups.save(backup)
    out: dict[str, Any] = {"ResourceArn": backup.arn}
    if previous:
        out["Policy"] = previous
    return out


BACKUP_OPERATIONS = {
    "DescribeBackups": describe_backups,
    "DeleteBackup": delete_backup,
    "RestoreBackup": restore_backup,
    "ModifyBackupAttributes": modify_backup_attributes,
    "CopyBackupToRegion": copy_backup_to_region,
    "PutResourcePolicy": put_resource_policy,
    "GetResourcePolicy": get_resource_policy,
    "DeleteResourcePolicy": delete_resource_policy,
}
