"""Each KMS key's last successful cryptographic call, kept as the trail stores its events.

GetKeyLastUsage answers from here. The trail's store calls :func:`latest_uses` on every batch
it inserts and upserts the result into ``audit_key_usage`` in the same transaction, so the
answer is exactly what the trail holds: a key counts as used by a call only if the call's
event is in the trail, and the answer names that event's eventID and requestID. A call made
while the trail is off (``serve --insecure-no-audit-trail``) has no event and is not tracked.

The scan is cheap on purpose (it runs in the trail writer): an event is decoded only when it
is the newest use of a key in its batch, when it is a ReEncrypt (whose event names two keys,
source first), or when its body mentions ``errorCode`` at all.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from strongroom.storage.audit_schema import audit_key_usage as usage
from strongroom.storage.audit_schema import tracking_row
from strongroom.storage.engine import write_transaction

if TYPE_CHECKING:
    from strongroom.audit.store import ChainedEntry

__all__ = [
    "KMS_SOURCE",
    "UPSERT_SQL",
    "USAGE_OPERATIONS",
    "KeyUse",
    "ensure_tracking",
    "last_use",
    "latest_uses",
]

KMS_SOURCE = "kms.amazonaws.com"

#: the operations GetKeyLastUsage reports (the model's KeyLastUsageData.Operation values)
USAGE_OPERATIONS = frozenset(
    {
        "Decrypt",
        "DeriveSharedSecret",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "ReEncrypt",
        "Sign",
        "Verify",
        "VerifyMac",
        "Encapsulate",
        "Decapsulate",
    }
)

#: upsert one key's use; an older event (a lower seq) never replaces a newer one
UPSERT_SQL = (
    "INSERT INTO audit_key_usage (key_arn, seq, operation, event_time, event_id, request_id) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key_arn) DO UPDATE SET seq = excluded.seq, "
    "operation = excluded.operation, event_time = excluded.event_time, "
    "event_id = excluded.event_id, request_id = excluded.request_id "
    "WHERE excluded.seq > audit_key_usage.seq"
)

_TRACKING = ""  # the key_arn of the row whose event_time is when tracking began


class KeyUse(NamedTuple):
    """One key's last successful cryptographic call."""

    operation: str
    event_time: float
    event_id: str
    request_id: str


def _decode(body: bytes) -> dict[str, Any]:
    event: dict[str, Any] = msgspec.json.decode(body)
    return event


def latest_uses(entries: Sequence[ChainedEntry]) -> list[tuple[str, int, str, float, str, str]]:
    """The rows :data:`UPSERT_SQL` takes for a batch: per key ARN, its newest successful use."""
    found: dict[str, tuple[str, int, str, float, str, str]] = {}
    for entry in reversed(entries):
        cols = entry.columns
        if (
            cols.event_name not in USAGE_OPERATIONS
            or cols.event_source != KMS_SOURCE
            or entry.kind != "event"
        ):
            continue
        if cols.event_name != "ReEncrypt" and cols.resource_name in found:
            continue  # a newer use of this key came later in the batch
        event: dict[str, Any] | None = None
        if b'"errorCode"' in entry.body:
            event = _decode(entry.body)
            if "errorCode" in event:
                continue
        if cols.event_name == "ReEncrypt":
            event = event or _decode(entry.body)
            arns = [str(r.get("ARN", "")) for r in event.get("resources") or ()]
        else:
            arns = [cols.resource_name]
        fresh = [arn for arn in arns if arn and arn not in found]
        if not fresh:
            continue
        event = event or _decode(entry.body)
        request_id = str(event.get("requestID", ""))[:64]
        for arn in fresh:
            found[arn] = (
                arn, entry.seq, cols.event_name, cols.event_time, cols.event_id, request_id
            )  # fmt: skip
    return list(found.values())


def ensure_tracking(engine: Engine, now: float | None = None) -> None:
    """Record when tracking began, unless it is recorded already."""
    with write_transaction(engine) as conn:
        if conn.execute(select(usage.c.seq).where(usage.c.key_arn == _TRACKING)).first():
            return
        try:
            with conn.begin_nested():
                conn.execute(
                    usage.insert().values(**tracking_row(time.time() if now is None else now))
                )
        except IntegrityError:
            pass  # another process recorded it first


def last_use(engine: Engine, key_arn: str) -> tuple[KeyUse | None, float | None]:
    """The key's last use (None if none is recorded) and when tracking began (None if it
    never did)."""
    with engine.connect() as conn:
        rows = conn.execute(select(usage).where(usage.c.key_arn.in_((_TRACKING, key_arn)))).all()
    use: KeyUse | None = None
    since: float | None = None
    for row in rows:
        if row.key_arn == _TRACKING:
            since = float(row.event_time)
        else:
            use = KeyUse(row.operation, float(row.event_time), row.event_id, row.request_id)
    return use, since
