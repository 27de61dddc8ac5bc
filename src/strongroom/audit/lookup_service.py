"""CloudTrail's LookupEvents on Strongroom's endpoint (JSON 1.1, SigV4 service ``cloudtrail``).

``aws cloudtrail lookup-events --endpoint-url ...`` works: one LookupAttribute (EventId,
EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId),
StartTime / EndTime, MaxResults (1..50, default 50) and an opaque NextToken. Callers need
``cloudtrail:LookupEvents`` from an identity policy (there is no resource policy), and see
their own account's events only: those of its principals' calls, and of calls from other
accounts on its keys.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from strongroom.api.app import Service
from strongroom.api.shapes import ServiceShapes
from strongroom.api.sigv4 import SignedIdentity
from strongroom.audit.query import ATTRIBUTES, EventRow, Filter, lookup
from strongroom.errors import AwsError
from strongroom.iam.authorize import Authorizer, caller_of
from strongroom.iam.identities import IdentityStore
from strongroom.iam.policy import RequestFacts, global_keys

__all__ = ["TARGET_PREFIX", "cloudtrail_service"]

TARGET_PREFIX = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101"
_MAX = 50
_CHUNK = 500  # events read at a time while looking for those the caller's account may see


def _token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"sr1:{seq}".encode()).decode()


def _untoken(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        prefix, _, seq = text.partition(":")
        if prefix != "sr1":
            raise ValueError(text)
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AwsError("InvalidNextTokenException", "Invalid NextToken.") from None


def _filter(request: dict[str, Any]) -> Filter:
    attributes = request.get("LookupAttributes") or []
    if len(attributes) > 1:
        raise AwsError(
            "InvalidLookupAttributesException", "You can only specify one lookup attribute."
        )
    start, end = request.get("StartTime"), request.get("EndTime")
    if start is not None and end is not None and start > end:
        raise AwsError("InvalidTimeRangeException", "Start time must be before end time.")
    if not attributes:
        return Filter(start=start, end=end)
    key, value = attributes[0].get("AttributeKey"), attributes[0].get("AttributeValue", "")
    if key not in ATTRIBUTES:
        raise AwsError("InvalidLookupAttributesException", f"Invalid attribute key: {key}.")
    return Filter(key, value, start, end)


def _wire(row: EventRow) -> dict[str, Any]:
    event = row.event
    out: dict[str, Any] = {
        "EventId": event.get("eventID", ""),
        "EventName": event.get("eventName", ""),
        "ReadOnly": "true" if event.get("readOnly") else "false",
        "EventTime": _epoch(event.get("eventTime", "")),
        "EventSource": event.get("eventSource", ""),
        "CloudTrailEvent": row.body,
        "Resources": (
            [{"ResourceType": row.resource_type, "ResourceName": row.resource_name}]
            if row.resource_name
            else []
        ),
    }
    if row.access_key_id:
        out["AccessKeyId"] = row.access_key_id
    if row.username:
        out["Username"] = row.username
    return out


def visible_to(event: dict[str, Any], account: str) -> bool:
    """Whether an account's trail holds the event, as CloudTrail's do: the caller's account
    (recipientAccountId), and for a call on another account's key, the key's owner too."""
    if event.get("recipientAccountId") == account:
        return True
    for resource in event.get("resources") or ():
        arn = str(resource.get("ARN", "")) if isinstance(resource, dict) else ""
        if arn.split(":")[4:5] == [account]:
            return True
    return False


def _visible_page(
    engine: Engine, flt: Filter, wanted: int, before: int | None, account: str
) -> list[EventRow]:
    """Up to ``wanted`` matching events the account may see, newest first: the trail holds
    every account's events, read here in chunks and kept where :func:`visible_to`."""
    out: list[EventRow] = []
    chunk = max(wanted, _CHUNK)
    while len(out) < wanted:
        rows = lookup(engine, flt, chunk, before)
        out += [row for row in rows if visible_to(row.event, account)]
        if len(rows) < chunk:
            break
        before = rows[-1].seq
    return out[:wanted]


def _epoch(iso: str) -> float:
    try:
        return float(calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return 0.0


def cloudtrail_service(
    engine: Engine,
    identities: IdentityStore,
    authz: Authorizer,
    account_id: str,
    before_read: Callable[[], object] | None = None,
    secure_transport: bool = False,
) -> Service:
    """The CloudTrail :class:`~strongroom.api.app.Service` (LookupEvents only).
    ``before_read`` brings the trail's tables up to date first (the writer's journal);
    ``secure_transport``: the endpoint is HTTPS (``aws:SecureTransport``)."""

    def call(
        operation: str, request: dict[str, Any], who: SignedIdentity, source_ip: str, rid: str
    ) -> dict[str, Any]:
        del rid
        principal = identities.authenticate(who.access_key_id, who.session_token)
        if operation != "LookupEvents":
            raise AwsError(
                "UnsupportedOperationException", f"{operation} is not supported by Strongroom."
            )
        action = "cloudtrail:LookupEvents"
        keys = global_keys(source_ip, who.region, secure_transport, time.time())
        facts = RequestFacts(action, "*", caller_of(principal), keys)
        verdict = authz.decide(principal, facts, None, principal.account_id)
        if not verdict.allowed:
            raise AwsError(
                "AccessDeniedException",
                f"User: {principal.arn} is not authorized to perform: {action} {verdict.reason}",
            )
        flt = _filter(request)
        limit = request.get("MaxResults") or _MAX
        if not 1 <= limit <= _MAX:
            raise AwsError("InvalidMaxResultsException", "MaxResults must be from 1 to 50.")
        token = request.get("NextToken")
        before = _untoken(token) if token else None
        if request.get("EventCategory") == "insight":
            return {"Events": []}  # only Insights events are asked for: Strongroom has none
        if before_read is not None:
            before_read()
        rows = _visible_page(engine, flt, limit + 1, before, principal.account_id)
        result: dict[str, Any] = {"Events": [_wire(r) for r in rows[:limit]]}
        if len(rows) > limit:
            result["NextToken"] = _token(rows[limit - 1].seq)
        return result

    return Service(TARGET_PREFIX, "cloudtrail", ServiceShapes.load("cloudtrail"), call)
