"""Turning a call into a CloudTrail-shaped event (the record the trail stores and hashes).

The shape is CloudTrail's for KMS management events: eventVersion, userIdentity, eventTime,
eventSource, eventName, awsRegion, sourceIPAddress, userAgent, requestParameters,
responseElements, errorCode/errorMessage, requestID, eventID, readOnly, resources, eventType,
managementEvent, recipientAccountId, eventCategory. Parameters pass the allow-lists of
:mod:`strongroom.audit.redact`; nothing else of the request or response is kept.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from strongroom.audit.redact import READ_ONLY, allowed_request, allowed_response
from strongroom.audit.sink import AuditedCall
from strongroom.iam.principal import Principal

__all__ = ["EVENT_VERSION", "Columns", "event_from_call", "iso_time", "source_of"]

EVENT_VERSION = "1.08"
_PREFIXES = {
    "TrentService": "kms",
    "BaldrApiService": "cloudhsm",
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101": "cloudtrail",
}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}")
_ROLE_ARN = re.compile(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
_CREDENTIAL = re.compile(rb"Credential=([^/,\s]*)/[^/]*/([^/]*)/([^/,\s]*)/")


class Columns(NamedTuple):
    """The indexed copies of an event's fields (LookupEvents filters on these). A named tuple:
    every call makes one, the writer one more per entry, and a tuple is built fastest."""

    event_id: str
    event_time: float
    event_name: str
    event_source: str
    read_only: bool
    username: str
    access_key_id: str
    resource_type: str
    resource_name: str


def iso_time(epoch: float) -> str:
    return _iso_second(int(epoch))


@functools.lru_cache(maxsize=4)
def _iso_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


class _EventIds:
    """Time-ordered (version 7, RFC 9562) UUIDs for eventIDs: 48 bits of Unix milliseconds, a
    26-bit counter (RFC 9562's "fixed-length dedicated counter", in ``rand_a`` and the top of
    ``rand_b``) and 48 bits drawn once per process. CloudTrail's eventIDs are opaque UUIDs;
    time-ordered ones land at the right edge of the trail's ``event_id`` index instead of on a
    random page of it, which keeps each ingestion's index writes to a few pages. Drawing the
    random part once spares every event a ``getrandom`` system call (~1.3 µs alone, ~8 µs of
    a loaded worker's wall time, py-spy); ``next`` on a counter is atomic, so threads never
    share an id, and a forked child draws its own."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._node = os.urandom(6).hex()
        self._counter = itertools.count(int.from_bytes(os.urandom(4), "big"))
        self._ms = -1
        self._prefix = ""

    def next(self) -> str:
        ms = time.time_ns() // 1_000_000
        if ms != self._ms:  # a race between threads here only reuses a neighbouring prefix
            t = f"{ms:012x}"
            self._prefix = f"{t[:8]}-{t[8:]}-7"
            self._ms = ms
        n = next(self._counter) & 0x3FFFFFF
        return f"{self._prefix}{n >> 14:03x}-{_VARIANT[n >> 12 & 3]}{n & 0xFFF:03x}-{self._node}"


#: the variant (binary 10) and two bits of the counter, as the fourth group's first digit
_VARIANT = "89ab"
_event_ids = _EventIds()
new_event_id = _event_ids.next


def source_of(service: str) -> str:
    return f"{service}.amazonaws.com" if service else "unknown"


def _header(call: AuditedCall, name: bytes) -> str:
    for key, value in call.headers:
        if key == name:
            return value.decode("latin-1")
    return ""


def _claimed(call: AuditedCall) -> tuple[str, str, str]:
    """(access key id, region, service) as the request claims them, verified or not."""
    if call.identity is not None:
        who = call.identity
        return who.access_key_id, who.region, who.service
    match = _CREDENTIAL.search(dict(call.headers).get(b"authorization", b""))
    if match is None:
        return "", "", ""
    akid, region, service = (part.decode("latin-1") for part in match.groups())
    return akid, region, service


@functools.lru_cache(maxsize=1024)
def _user_identity(principal: Principal | None, akid: str) -> dict[str, Any]:
    """The ``userIdentity`` element (shared between events: never changed after this)."""
    if principal is None:
        return {
            "type": "Unknown",
            "principalId": "",
            "arn": "",
            "accountId": "",
            "accessKeyId": akid,
        }
    identity: dict[str, Any] = {
        "type": "AssumedRole" if principal.kind == "AssumedRole" else "IAMUser",
        "principalId": principal.unique_id,
        "arn": principal.arn,
        "accountId": principal.account_id,
        "accessKeyId": principal.access_key_id,
    }
    if principal.kind == "AssumedRole":
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": principal.unique_id.split(":", 1)[0],
                "arn": principal.identity_arn,
                "accountId": principal.account_id,
                "userName": principal.name,
            }
        }
        if principal.source_identity:
            identity["sessionContext"]["sourceIdentity"] = principal.source_identity
    else:
        identity["userName"] = principal.name
    return identity


def _key_arn(call: AuditedCall, region: str, account: str) -> str:
    response = call.response or {}
    for value in (response.get("KeyId"), (response.get("KeyMetadata") or {}).get("Arn")):
        if isinstance(value, str) and value.startswith("arn:"):
            return value
    requested = (call.request or {}).get("KeyId") or (call.request or {}).get("TargetKeyId")
    if isinstance(requested, str):
        if requested.startswith("arn:aws:kms:") and requested.count(":") >= 5:
            return requested  # a caller's ARN, so at least the parts that name an account
        if _UUID.fullmatch(requested):
            return f"arn:aws:kms:{region}:{account}:key/{requested}"
    return ""


def _add_source_key(resources: list[dict[str, str]], response: Mapping[str, Any] | None) -> None:
    """ReEncrypt's event names two keys, as CloudTrail's does: the source key, then the
    destination key."""
    source = (response or {}).get("SourceKeyId")
    if isinstance(source, str) and source.startswith("arn:") and source != resources[0]["ARN"]:
        account = source.split(":")[4]
        resources.insert(0, {"accountId": account, "type": "AWS::KMS::Key", "ARN": source})


def event_from_call(
    call: AuditedCall, principal: Principal | None, account: str
) -> tuple[dict[str, Any], Columns]:
    """The CloudTrail event of a finished (or failed) call, and its indexed columns."""
    akid, region, scoped = _claimed(call)
    service = call.service or _PREFIXES.get(_header(call, b"x-amz-target").rpartition(".")[0], "")
    service = service or scoped
    operation = call.operation or _header(call, b"x-amz-target").rpartition(".")[2][:128]
    error = call.error
    template, account_id, username = _template(
        principal, akid, service, operation, region, account, error is not None
    )
    event_id = new_event_id()
    event = template.copy()  # its keys in CloudTrail's order; the per-call ones set below
    event["eventTime"] = iso_time(call.time)
    event["sourceIPAddress"] = call.source_ip
    event["userAgent"] = _header(call, b"user-agent")[:512]
    event["requestParameters"] = allowed_request(service, operation, call.request)
    event["responseElements"] = allowed_response(service, operation, call.response)
    if error is not None:
        event["errorCode"] = error.code
        event["errorMessage"] = error.message
    kind = "AWS::KMS::Key"
    if service == "kms":
        arn = _key_arn(call, region, account_id)
    else:
        arn = _role_arn(call) if operation == "AssumeRole" else ""
        kind = "AWS::IAM::Role"
    event["requestID"] = call.request_id
    event["eventID"] = event_id
    # the resource's own account: a call on another account's key or role is in both trails
    event["resources"] = [{"accountId": arn.split(":")[4], "type": kind, "ARN": arn}] if arn else []
    if operation == "ReEncrypt" and arn:
        _add_source_key(event["resources"], call.response)
    if call.tls is not None:
        event["tlsDetails"] = {
            "tlsVersion": call.tls[0],
            "cipherSuite": call.tls[1],
            "clientProvidedHostHeader": _header(call, b"host")[:256],
        }
    columns = Columns(
        event_id,
        call.time,
        event["eventName"],
        event["eventSource"],
        event["readOnly"],
        username,
        akid[:128],
        kind if arn else "",
        arn,
    )
    return event, columns


def _role_arn(call: AuditedCall) -> str:
    """AssumeRole's role, when the request names one in ARN form."""
    requested = (call.request or {}).get("RoleArn")
    if isinstance(requested, str) and _ROLE_ARN.fullmatch(requested):
        return requested
    return ""


@functools.lru_cache(maxsize=4096)
def _template(
    principal: Principal | None,
    akid: str,
    service: str,
    operation: str,
    region: str,
    account: str,
    failed: bool,
) -> tuple[dict[str, Any], str, str]:
    """What the events of one caller's calls of one operation share: the event with every
    key in place (the per-call ones empty), its account, and the caller's user name. Shared
    between events and never changed: :func:`event_from_call` copies it."""
    account_id = principal.account_id if principal is not None else account
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": _user_identity(principal, akid),
        "eventTime": "",
        "eventSource": source_of(service),
        "eventName": operation or "Unknown",
        "awsRegion": region,
        "sourceIPAddress": "",
        "userAgent": "",
        "requestParameters": None,
        "responseElements": None,
    }
    if failed:
        event["errorCode"] = event["errorMessage"] = ""
    event.update(
        requestID="",
        eventID="",
        readOnly=operation in READ_ONLY,
        resources=[],
        eventType="AwsApiCall",
        managementEvent=True,
        recipientAccountId=account_id,
        eventCategory="Management",
    )
    username = ""
    if principal is not None:
        username = principal.session_name or principal.name
    return event, account_id, username


def service_event(
    source: str, name: str, account: str, region: str, details: Mapping[str, Any], now: float
) -> tuple[dict[str, Any], Columns]:
    """An event the service itself raises (an alarm's state change), not an API call."""
    event_id = new_event_id()
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": {"type": "AWSService", "invokedBy": source},
        "eventTime": iso_time(now),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": source,
        "userAgent": source,
        "requestParameters": None,
        "responseElements": None,
        "serviceEventDetails": dict(details),
        "eventID": event_id,
        "readOnly": False,
        "resources": [],
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    return event, Columns(event_id, now, name, source, False, "", "", "", "")
