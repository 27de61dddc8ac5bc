"""The small interface between the wire edge and the audit trail.

The edge (:class:`strongroom.api.app.App`) fills an :class:`AuditedCall` as a request passes
through it (what is known when: the raw headers first, then the verified signature, the
operation, the validated request, the response or the error) and hands it to an
:class:`AuditSink`. Nothing here does I/O; rendering the record happens in the sink.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from strongroom.api.sigv4 import SignedIdentity
from strongroom.errors import AwsError

__all__ = ["AuditSink", "AuditedCall", "TrailSink", "TrailUnavailable"]


@dataclass(slots=True)
class AuditedCall:
    """One API call as the edge saw it."""

    request_id: str
    time: float
    source_ip: str
    headers: Sequence[tuple[bytes, bytes]]
    service: str = ""  # signing name of the service the call reached ('' before it is known)
    operation: str = ""
    identity: SignedIdentity | None = None
    request: Mapping[str, Any] | None = None
    response: Mapping[str, Any] | None = None
    error: AwsError | None = None
    #: (TLS version, cipher suite) of the connection; None over plain HTTP
    tls: tuple[str, str] | None = None
    #: its intent entry is durable (it may have changed state from then on)
    intent_recorded: bool = False


class TrailUnavailable(AwsError):
    """The trail could not make a record durable: the call must fail (5xx) without effect."""

    def __init__(self) -> None:
        super().__init__(
            "ServiceUnavailableException",
            "The audit trail is unavailable; the request was not carried out.",
            503,
        )


class AuditSink(Protocol):
    """Where the edge sends every call. Both methods return only once the entry is durable
    and raise :class:`TrailUnavailable` if it cannot be made so."""

    def needs_intent(self, service: str, operation: str) -> bool:
        """Whether this operation may change state (it then gets an intent entry first)."""
        ...

    async def intent(self, call: AuditedCall) -> None:
        """Record, durably, that the call is about to run (before any effect)."""
        ...

    async def outcome(self, call: AuditedCall) -> None:
        """Record, durably, the call's event (before its response leaves)."""
        ...


class TrailSink(AuditSink, Protocol):
    """An :class:`AuditSink` that other parts of ``serve`` (alarms) write to as well."""

    def write_event(self, event: dict[str, object], columns: Any) -> None:
        """Append a service event from any thread, blocking until it is durable."""
        ...

    def close(self) -> None: ...
