"""Tags, resource policies and backups of the ``cloudhsmv2`` API.

Backups are not taken by this Strongroom version (issue 6, scope item 5): DescribeBackups lists
none, and operations on a backup id answer CloudHsmResourceNotFoundException. Resource policies
apply only to backups, so they too find no resource.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.cloudhsm.domain import bad_request, not_found

if TYPE_CHECKING:
    from strongroom.cloudhsm.control import ClusterControl
    from strongroom.cloudhsm.ops import CallerContext

__all__ = ["META_OPERATIONS"]

_MAX_TAGS = 50


def _tag_target(control: ClusterControl, ctx: CallerContext, resource_id: str) -> Any:
    from strongroom.cloudhsm.ops import _cluster

    if resource_id.startswith("backup-"):
        raise not_found(f"Backup {resource_id} not found")
    if not resource_id.startswith("cluster-"):
        raise bad_request(f"Invalid resource id {resource_id}")
    return _cluster(control, ctx, resource_id)


def tag_resource(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """TagResource: add or overwrite tags on a cluster."""
    with control.lock:
        cluster = _tag_target(control, ctx, req["ResourceId"])
        tags = dict(cluster.tags)
        tags.update({t["Key"]: t["Value"] for t in req["TagList"]})
        if len(tags) > _MAX_TAGS:
            from strongroom.errors import AwsError

            raise AwsError(
                "CloudHsmResourceLimitExceededException", "A resource has at most 50 tags"
            )
        cluster.tags = tags
        control.save_cluster(cluster)
    return {}


def untag_resource(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """UntagResource: remove tags by key."""
    with control.lock:
        cluster = _tag_target(control, ctx, req["ResourceId"])
        for key in req["TagKeyList"]:
            cluster.tags.pop(key, None)
        control.save_cluster(cluster)
    return {}


def list_tags(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """ListTags: paginated (MaxResults 1–100)."""
    cluster = _tag_target(control, ctx, req["ResourceId"])
    items = [{"Key": k, "Value": v} for k, v in sorted(cluster.tags.items())]
    start = int(req["NextToken"]) if str(req.get("NextToken", "")).isdigit() else 0
    limit = req.get("MaxResults", 100)
    out: dict[str, Any] = {"TagList": items[start : start + limit]}
    if start + limit < len(items):
        out["NextToken"] = str(start + limit)
    return out


def _backup_resource(req: dict[str, Any]) -> Any:
    arn = req.get("ResourceArn") or req.get("BackupId") or ""
    if not arn:
        raise bad_request("ResourceArn is required")
    raise not_found(f"Backup {arn.rsplit('/', 1)[-1]} not found")


def describe_backups(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """DescribeBackups: no backups are taken by this version."""
    return {"Backups": []}


def on_backup(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """DeleteBackup, RestoreBackup, ModifyBackupAttributes, CopyBackupToRegion,
    Get/Put/DeleteResourcePolicy: the backup does not exist."""
    return _backup_resource(req)


META_OPERATIONS = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTags": list_tags,
    "DescribeBackups": describe_backups,
    "DeleteBackup": on_backup,
    "RestoreBackup": on_backup,
    "ModifyBackupAttributes": on_backup,
    "CopyBackupToRegion": on_backup,
    "GetResourcePolicy": on_backup,
    "PutResourcePolicy": on_backup,
    "DeleteResourcePolicy": on_backup,
}
