"""GetKeyLastUsage: a key's last successful cryptographic call, as the audit trail recorded it.

The answer comes from :mod:`strongroom.audit.key_usage` through ``Kms.key_usage``: the
operation, its time, and the eventID and requestID of its trail event. ``TrackingStartDate`` is
when the trail began tracking uses, or the key's creation if that is later; without a trail that
ever tracked, it is absent and so is every use.
"""

from __future__ import annotations

from strongroom.kms.ops import _common as c
from strongroom.kms.service import Kms, RequestContext

__all__ = ["HANDLERS"]


def get_key_last_usage(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """GetKeyLastUsage (key ID or key ARN only; in every key state)."""
    rec = kms.resolve(ctx, req["KeyId"], "GetKeyLastUsage", allow_alias=False, request=req)
    use, since = kms.key_usage(rec.arn) if kms.key_usage is not None else (None, None)
    out: c.Response = {"KeyId": rec.key_id, "KeyLastUsage": {}, "KeyCreationDate": rec.created}
    if since is not None:
        out["TrackingStartDate"] = max(since, rec.created)
    if use is not None:
        operation, when, event_id, request_id = use
        out["KeyLastUsage"] = {
            "Operation": operation,
            "Timestamp": when,
            "CloudTrailEventId": event_id,
            "KmsRequestId": request_id,
        }
    return out


HANDLERS: dict[str, c.Handler] = {"GetKeyLastUsage": get_key_last_usage}
