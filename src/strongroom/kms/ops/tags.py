"""Tag operations: TagResource, UntagResource, ListResourceTags (a multi-Region replica's
tags are its own)."""

from __future__ import annotations

from strongroom.errors import AwsError
from strongroom.kms.ops import _common as c
from strongroom.kms.service import Kms, RequestContext
from strongroom.storage import replica_repo

__all__ = ["HANDLERS"]


def tag_resource(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """TagResource: add or overwrite tags; at most 50 per key."""
    rec = kms.resolve(ctx, req["KeyId"], "TagResource", allow_alias=False, request=req)
    new_tags = c.check_tags(req["Tags"])
    with kms.transaction() as conn:
        kms.locked(conn, rec, "TagResource")
        existing = dict(replica_repo.tags_of(conn, rec))
        if len(existing | new_tags) > c.MAX_TAGS:
            raise AwsError("LimitExceededException", f"A key can have at most {c.MAX_TAGS} tags")
        replica_repo.tag(conn, rec, new_tags)
    return {}


def untag_resource(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """UntagResource: absent tag keys are ignored."""
    rec = kms.resolve(ctx, req["KeyId"], "UntagResource", allow_alias=False, request=req)
    for key in req["TagKeys"]:
        c.check_tag_key(key)
    with kms.transaction() as conn:
        kms.locked(conn, rec, "UntagResource")
        replica_repo.untag(conn, rec, list(req["TagKeys"]))
    return {}


def list_resource_tags(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """ListResourceTags (Limit 1-50, default 50)."""
    rec = kms.resolve(ctx, req["KeyId"], "ListResourceTags", allow_alias=False, request=req)
    limit = c.page_limit(req, 50, 50)
    after = c.decode_marker("tags", req.get("Marker"))
    with kms.engine.connect() as conn:
        pairs = [p for p in replica_repo.tags_of(conn, rec) if after is None or p[0] > after]
    page = pairs[:limit]
    out: c.Response = {
        "Tags": [{"TagKey": k, "TagValue": v} for k, v in page],
        "Truncated": len(pairs) > limit,
    }
    if len(pairs) > limit:
        out["NextMarker"] = c.encode_marker("tags", page[-1][0])
    return out


HANDLERS: dict[str, c.Handler] = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListResourceTags": list_resource_tags,
}
