"""What a ``cloudhsmv2`` call is authorized against, beyond its action: the resource it acts on
and its tag condition keys, as AWS's service authorization reference has them for CloudHSM.

* The actions on one cluster (CreateHsm, DeleteCluster, DeleteHsm, InitializeCluster,
  ModifyCluster) are authorized on ``arn:aws:cloudhsm:<region>:<account>:cluster/<id>``; those on
  one backup (CopyBackupToRegion, DeleteBackup, ModifyBackupAttributes, RestoreBackup) on
  ``...:backup/<id>``; TagResource, UntagResource and ListTags on whichever their ResourceId
  names; Put/Get/DeleteResourcePolicy on their ResourceArn. The others (CreateCluster,
  DescribeClusters, DescribeBackups) on ``*``.
* Restoring another account's backup (CreateCluster with its full ARN as SourceBackupId) is
  authorized a second time, on that backup's ARN, against the resource policy its owner put on
  it (PutResourcePolicy) together with the caller's identity policies, as cross-account access
  is everywhere: both must allow ``cloudhsm:CreateCluster`` (:func:`shared_source`).
* ``aws:ResourceTag/<key>``: the tags of that cluster or backup (none if it does not exist, so
  that a caller learns nothing from a denial); ``aws:RequestTag/<key>`` and ``aws:TagKeys``: the
  tags CreateCluster, CopyBackupToRegion and TagResource set, and the keys UntagResource
  removes.
"""

from __future__ import annotations

from typing import Any

from strongroom.cloudhsm.control import ClusterControl
from strongroom.cloudhsm.ops import CallerContext
from strongroom.cloudhsm.ops_backup import backup_of, shared_backup
from strongroom.errors import AwsError

__all__ = ["names_resource_tags", "resource_of", "shared_source", "tag_context"]

_BY_CLUSTER = frozenset(
    {"CreateHsm", "DeleteCluster", "DeleteHsm", "InitializeCluster", "ModifyCluster"}
)
_BY_BACKUP = frozenset(
    {"CopyBackupToRegion", "DeleteBackup", "ModifyBackupAttributes", "RestoreBackup"}
)
_BY_RESOURCE_ID = frozenset({"TagResource", "UntagResource", "ListTags"})
_BY_ARN = frozenset({"PutResourcePolicy", "GetResourcePolicy", "DeleteResourcePolicy"})
_SETS_TAGS = frozenset({"CreateCluster", "CopyBackupToRegion", "TagResource"})


def _resource_id(operation: str, request: dict[str, Any]) -> str:
    if operation in _BY_CLUSTER:
        found = request.get("ClusterId")
    elif operation in _BY_BACKUP:
        found = request.get("BackupId")
    elif operation in _BY_RESOURCE_ID:
        found = request.get("ResourceId")
    elif operation in _BY_ARN:
        found = request.get("ResourceArn")
    else:
        return ""
    if not isinstance(found, str):
        return ""
    return found.rsplit("/", 1)[-1] if found.startswith("arn:") else found


def resource_of(operation: str, request: dict[str, Any], ctx: CallerContext) -> str:
    """The ARN the call is authorized on, or ``*``."""
    resource_id = _resource_id(operation, request)
    for kind in ("cluster", "backup"):
        if resource_id.startswith(f"{kind}-"):
            return f"arn:aws:cloudhsm:{ctx.region}:{ctx.account_id}:{kind}/{resource_id}"
    return "*"


def names_resource_tags(documents: tuple[str, ...]) -> bool:
    """Whether any of the caller's policies names ``aws:ResourceTag`` (condition keys are
    case-insensitive); only then are the resource's tags read for the call."""
    return any("aws:resourcetag/" in document.lower() for document in documents)


def tag_context(
    control: ClusterControl,
    operation: str,
    request: dict[str, Any],
    ctx: CallerContext,
    resource_tags: bool = True,
) -> dict[str, tuple[str, ...]]:
    """``aws:ResourceTag/*`` (read only if ``resource_tags``), ``aws:RequestTag/*`` and
    ``aws:TagKeys`` of the call."""
    out: dict[str, tuple[str, ...]] = {}
    resource_id = _resource_id(operation, request) if resource_tags else ""
    try:
        if resource_id.startswith("cluster-"):
            found = control.cluster(resource_id)
            mine = found is not None and found.belongs_to(ctx.account_id, ctx.region)
            tags = found.tags if found is not None and mine else {}
        elif resource_id.startswith("backup-"):
            tags = backup_of(control, ctx, resource_id).tags
        else:
            tags = {}
    except AwsError:  # no such backup: no resource tags
        tags = {}
    for key, value in tags.items():
        out[f"aws:ResourceTag/{key}"] = (value,)
    if operation in _SETS_TAGS:
        pairs = [t for t in request.get("TagList") or () if isinstance(t, dict)]
        for tag in pairs:
            out[f"aws:RequestTag/{tag.get('Key', '')}"] = (str(tag.get("Value", "")),)
        if pairs:
            out["aws:TagKeys"] = tuple(str(tag.get("Key", "")) for tag in pairs)
    elif operation == "UntagResource" and request.get("TagKeyList"):
        out["aws:TagKeys"] = tuple(str(key) for key in request["TagKeyList"])
    return out


def shared_source(
    control: ClusterControl, operation: str, request: dict[str, Any], ctx: CallerContext
) -> tuple[str, str, str] | None:
    """For CreateCluster from another account's shared backup: (the backup's ARN, its
    resource policy, its owner's account); None for every other call."""
    ref = request.get("SourceBackupId")
    if operation != "CreateCluster" or not isinstance(ref, str) or not ref.startswith("arn:"):
        return None
    backup = shared_backup(control, ctx, ref)
    return None if backup is None else (backup.arn, backup.policy, backup.account_id)
