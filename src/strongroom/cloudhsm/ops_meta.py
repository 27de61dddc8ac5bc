"""Tags of the ``cloudhsmv2`` API (on clusters and backups), and the operation table's backup
part (:mod:`strongroom.cloudhsm.ops_backup`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.cloudhsm import domain as d
from strongroom.cloudhsm.domain import bad_request
from strongroom.cloudhsm.ops_backup import BACKUP_OPERATIONS, backup_of

if TYPE_CHECKING:
    from strongroom.cloudhsm.control import ClusterControl
    from strongroom.cloudhsm.ops import CallerContext

__all__ = ["META_OPERATIONS"]

_MAX_TAGS = 50


def _tag_target(control: ClusterControl, ctx: CallerContext, resource_id: str) -> Any:
    from strongroom.cloudhsm.ops import _cluster

    if resource_id.startswith("backup-"):
        return backup_of(control, ctx, resource_id)
    if not resource_id.startswith("cluster-"):
        raise bad_request(f"Invalid resource id {resource_id}")
    return _cluster(control, ctx, resource_id)


def _save(control: ClusterControl, target: Any) -> None:
    if target.__class__.__name__ == "Backup":
        control.backups.save(target)
    else:
        control.save_cluster(target)


def tag_resource(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """TagResource: add or overwrite tags on a cluster or backup (keys not ``aws:``...)."""
    new = d.request_tags(req["TagList"])
    with control.lock:
        cluster = _tag_target(control, ctx, req["ResourceId"])
        tags = dict(cluster.tags)
        tags.update(new)
        if len(tags) > _MAX_TAGS:
            from strongroom.errors import AwsError

            raise AwsError(
                "CloudHsmResourceLimitExceededException", "A resource has at most 50 tags"
            )
        cluster.tags = tags
        _save(control, cluster)
    return {}


def untag_resource(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """UntagResource: remove tags by key (absent keys are ignored; ``aws:`` keys refused)."""
    d.check_tag_keys(req["TagKeyList"])
    with control.lock:
        cluster = _tag_target(control, ctx, req["ResourceId"])
        for key in req["TagKeyList"]:
            cluster.tags.pop(key, None)
        _save(control, cluster)
    return {}


def list_tags(control: ClusterControl, ctx: CallerContext, req: dict[str, Any]) -> Any:
    """ListTags: paginated (MaxResults 1–100)."""
    cluster = _tag_target(control, ctx, req["ResourceId"])
    items = [{"Key": k, "Value": v} for k, v in sorted(cluster.tags.items())]
    start = d.page_start(req.get("NextToken"))
    limit = req.get("MaxResults", 100)
    out: dict[str, Any] = {"TagList": items[start : start + limit]}
    if start + limit < len(items):
        out["NextToken"] = d.page_token(start + limit)
    return out


META_OPERATIONS = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTags": list_tags,
    **BACKUP_OPERATIONS,
}
