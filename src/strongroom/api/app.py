"""The wire edge: AWS JSON 1.1 (and the Query protocol) with SigV4 on ``POST /``.

:class:`App` answers the requests :class:`~strongroom.api.http_protocol.EdgeProtocol` reads off
each connection (:meth:`App.answer`); its ASGI face is only for uvicorn's lifespan.
Per request: refuse a body over :data:`MAX_BODY` (413; the protocol never keeps it) -> verify the
SigV4 signature -> find the service by the ``X-Amz-Target`` prefix and the operation in the
service model -> decode JSON (msgspec) and validate against botocore's model -> run the handler
-> encode. Every failure leaves as ``{"__type": ..., "message": ...}``; nothing else escapes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import msgspec

from strongroom.api.http_protocol import MAX_BODY, Answer, Headers
from strongroom.api.shapes import ServiceShapes
from strongroom.api.sigv4 import SignedIdentity, Verifier
from strongroom.audit.sink import AuditedCall, AuditSink, TrailUnavailable
from strongroom.errors import AwsError
from strongroom.storage.engine import storage_unavailable

__all__ = ["App", "QueryService", "Service", "ServiceCall"]

log = logging.getLogger("strongroom.api")


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: bytes  # undecoded
    query: bytes
    headers: Headers


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: (operation, validated request, verified signature, source ip, request id) -> response
ServiceCall = Callable[[str, dict[str, Any], SignedIdentity, str, str], dict[str, Any]]

_JSON_TYPE = b"application/x-amz-json-1.1"
#: a request that met a full, read-only or failing disk, or a lost database connection
_STORAGE_DOWN = "The service cannot use its database right now; retry the request later."


def _raise_if_storage_down(exc: Exception, what: str) -> None:
    """503, not 500, when ``exc`` says the database cannot be used just now."""
    if storage_unavailable(exc):
        log.error("%s: the database is unavailable: %s", what, type(exc).__name__)
        raise AwsError("ServiceUnavailableException", _STORAGE_DOWN) from None


#: seconds a state-changing call's outcome entry is retried before the call answers 503
OUTCOME_RETRY_SECONDS = 10.0
#: the answer when that fails: its effect may stand (its intent entry says who asked for what)
_EFFECT_UNRECORDED = AwsError(
    "ServiceUnavailableException",
    "The audit trail is unavailable; the request may have been carried out, and the trail "
    "records that it was asked for.",
    503,
)
_XML_TYPE = b"text/xml"
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class RequestIds:
    """UUID-shaped request ids: a random per-process part and a counter (no syscall each)."""

    def __init__(self) -> None:
        raw = os.urandom(10).hex()
        self._prefix = f"{raw[:8]}-{raw[8:12]}-4{raw[12:15]}-{raw[15:19]}-"
        self._counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFF:012x}"


@dataclass(frozen=True, slots=True)
class QueryService:
    """An AWS Query-protocol service (form-encoded ``Action=...``, XML answers), such as STS."""

    signing_name: str
    #: (action, params, verified signature, source ip, request id) -> XML body
    call: Callable[[str, dict[str, str], SignedIdentity, str, str], bytes]
    #: (error, request id) -> XML error body and HTTP status
    render_error: Callable[[AwsError, str], tuple[bytes, int]]


@dataclass(frozen=True, slots=True)
class Service:
    """One AWS service on this endpoint: its target prefix, signing name, model and handler."""

    target_prefix: str
    signing_name: str
    shapes: ServiceShapes
    call: ServiceCall
    internal_error: str = "InternalFailure"
    #: (operation) -> whether to run the call on a worker thread: operations that may wait on
    #: another process (an HSM round trip) must not hold up the event loop
    offload: Callable[[str], bool] | None = None


def _unrecorded(exc: Exception, call: AuditedCall) -> AwsError:
    """Why a call's event could not be recorded, as the error to answer: the trail's own, or,
    where building the event needed the database (the caller's details) and it cannot be used,
    the trail being unavailable. Anything else is a fault of ours and goes on up (a 500)."""
    if isinstance(exc, AwsError):
        return exc
    if not storage_unavailable(exc):
        raise exc
    log.error("%s: its record needs the database, which is unavailable", call.operation)
    return TrailUnavailable()


class App:
    """The ASGI application."""

    def __init__(
        self,
        services: list[Service],
        verifier: Verifier,
        now: Callable[[], float],
        query_services: list[QueryService] | None = None,
        on_startup: Callable[[], Awaitable[None]] | None = None,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
        before_request: Callable[[], None] | None = None,
        audit: AuditSink | None = None,
        observe: Callable[[str, str, str, float], None] | None = None,
        metrics_page: Callable[[], tuple[bytes, bytes]] | None = None,
    ) -> None:
        self._services: Mapping[str, Service] = {s.target_prefix: s for s in services}
        self._query: Mapping[str, QueryService] = {q.signing_name: q for q in query_services or []}
        self._verifier = verifier
        self._now = now
        self._request_ids = RequestIds()
        self._before_request = before_request
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown
        #: every call (verified or not, failed or not) is recorded here before it is answered
        self._audit = audit
        #: (service, operation, outcome, seconds) for metrics; operation '' if unknown
        self._observe = observe
        #: GET /metrics: () -> (content type, body)
        self._metrics_page = metrics_page
        #: how long the outcome of a call that may have changed state is retried
        self.outcome_retry_seconds = OUTCOME_RETRY_SECONDS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI, for uvicorn's lifespan only: requests come through :meth:`answer`."""
        if scope["type"] != "lifespan":
            raise RuntimeError("requests are served by strongroom.api.http_protocol")
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self._on_startup is not None:
                    await self._on_startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._on_shutdown is not None:
                    await self._on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def answer(
        self,
        method: str,
        path: bytes,
        query: bytes,
        headers: Headers,
        client: str,
        body: bytes | None,
        tls: tuple[str, str] | None = None,
    ) -> Answer:
        """The answer to one request (``body`` None: it was over ``MAX_BODY``, refused)."""
        if method == "GET" and path == b"/metrics" and self._metrics_page:
            content_type, page = self._metrics_page()
            return 200, content_type, page, b""
        request_id = self._request_ids.next()
        started = time.perf_counter()
        if self._before_request is not None:
            self._before_request()
        query_service = self._query_flavour(headers)
        content_type = _XML_TYPE if query_service is not None else _JSON_TYPE
        call = AuditedCall(request_id, time.time(), client, headers, tls=tls)
        request = _Request(method, path, query, headers)
        try:
            if body is None:
                raise AwsError(
                    "RequestEntityTooLargeException",
                    f"Request body is larger than {MAX_BODY} bytes",
                    413,
                )
            if query_service is not None:
                status, out = await self._handle_query(request, body, call)
            else:
                status, out = await self._handle(request, body, call)
        except AwsError as err:
            call.error = err
            status, out = self._render_error(err, query_service, request_id)
        if self._audit is not None:
            try:
                await self._audit.outcome(call)
            except Exception as exc:  # the trail is down: the answer must not leave
                unrecorded = _unrecorded(exc, call)
                if not (call.intent_recorded and await self._outcome_again(call)):
                    call.error = unrecorded if not call.intent_recorded else _EFFECT_UNRECORDED
                    status, out = self._render_error(call.error, query_service, request_id)
        if self._observe is not None:
            outcome = "ok" if call.error is None else call.error.code
            self._observe(call.service, call.operation, outcome, time.perf_counter() - started)
        return status, content_type, out, request_id.encode()

    async def _outcome_again(self, call: AuditedCall) -> bool:
        """A call that may have changed state ran after its intent entry was made durable,
        and its outcome could not be recorded: try again, backing off, for up to
        :attr:`outcome_retry_seconds` (a replaced trail writer takes about a second to
        start). True once recorded: the call is then answered as it ran. A retried outcome can
        be recorded twice (under two eventIDs, one requestID) if the writer committed the
        first and died before acknowledging it."""
        assert self._audit is not None
        deadline = time.monotonic() + self.outcome_retry_seconds
        wait = 0.05
        while time.monotonic() + wait < deadline:
            await asyncio.sleep(wait)
            wait = min(wait * 2, 1.0)
            try:
                await self._audit.outcome(call)
            except Exception as exc:
                _unrecorded(exc, call)
                continue
            return True
        log.error("%s ran but its outcome could not be recorded (its intent is)", call.operation)
        return False

    @staticmethod
    def _render_error(
        err: AwsError, query: QueryService | None, request_id: str
    ) -> tuple[int, bytes]:
        if query is not None:
            body, status = query.render_error(err, request_id)
            return status, body
        return err.status, _error_body(err.code, err.message)

    def _query_flavour(self, headers: Headers) -> QueryService | None:
        """The Query service a form-encoded request without X-Amz-Target is for, if any."""
        if not self._query:
            return None
        form = False
        for name, value in headers:
            if name == b"x-amz-target":
                return None
            if name == b"content-type" and value.startswith(b"application/x-www-form-urlencoded"):
                form = True
        if not form:
            return None
        scoped = _scope_service(headers)
        return self._query.get(scoped) or next(iter(self._query.values()))

    def _verify(self, request: _Request, raw: bytes) -> SignedIdentity:
        if request.method != "POST" or request.path != b"/":
            raise AwsError("UnknownOperationException", "Only POST / is served here", 404)
        try:
            return self._verifier.verify(
                "POST", "/", request.query, request.headers, raw, self._now()
            )
        except AwsError:
            raise
        except Exception as exc:  # the caller's secret is looked up in the database
            _raise_if_storage_down(exc, "signature check")
            raise

    async def _handle_query(
        self, request: _Request, raw: bytes, call: AuditedCall
    ) -> tuple[int, bytes]:
        identity = call.identity = self._verify(request, raw)
        service = self._query.get(identity.service)
        if service is None:
            raise AwsError("InvalidAction", "This endpoint serves no such Query service")
        call.service = service.signing_name
        try:
            params = dict(urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError as exc:
            raise AwsError("MalformedQueryString", "The request body is not UTF-8") from exc
        action = params.pop("Action", "")
        params.pop("Version", None)
        call.operation, call.request = action[:128], params
        await self._before_effect(call)
        try:
            body = service.call(action, params, identity, call.source_ip, call.request_id)
        except AwsError:
            raise
        except Exception as exc:
            _raise_if_storage_down(exc, action)
            log.exception("internal error in %s", action)
            raise AwsError("InternalFailure", "An internal error occurred.") from None
        return 200, body

    async def _before_effect(self, call: AuditedCall) -> None:
        """For a call that may change state: its intent entry is durable before it runs."""
        if self._audit is not None and self._audit.needs_intent(call.service, call.operation):
            await self._audit.intent(call)
            call.intent_recorded = True

    async def _handle(self, request: _Request, raw: bytes, call: AuditedCall) -> tuple[int, bytes]:
        identity = call.identity = self._verify(request, raw)
        service, operation = self._target(request.headers)
        call.service, call.operation = service.signing_name, operation
        if service.signing_name != identity.service:
            raise AwsError(
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{service.signing_name}'. ",
            )
        try:
            decoded = _decoder.decode(raw) if raw else {}
        # invalid UTF-8 inside a string, and nesting deeper than the interpreter's recursion
        # limit, surface as these rather than as msgspec's own error
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise AwsError(
                "SerializationException",
                "Start of structure or map found where not expected, or the body is not valid JSON",
            ) from exc
        params = call.request = service.shapes.parse_input(operation, decoded)
        await self._before_effect(call)
        try:
            if service.offload is not None and service.offload(operation):
                result = await asyncio.get_running_loop().run_in_executor(
                    None, service.call, operation, params, identity, call.source_ip,
                    call.request_id,
                )  # fmt: skip
            else:
                result = service.call(operation, params, identity, call.source_ip, call.request_id)
        except AwsError:
            raise
        except Exception as exc:
            _raise_if_storage_down(exc, operation)
            log.exception("internal error in %s", operation)
            raise AwsError(service.internal_error, "An internal error occurred.") from None
        call.response = result
        return 200, _encoder.encode(result)

    def _target(self, headers: list[tuple[bytes, bytes]]) -> tuple[Service, str]:
        target = ""
        for name, value in headers:
            if name == b"x-amz-target":
                target = value.decode("latin-1")
                break
        prefix, _, operation = target.rpartition(".")
        service = self._services.get(prefix)
        if service is None or operation not in service.shapes.operations:
            raise AwsError(
                "UnknownOperationException",
                f"Unknown operation {target}" if target else "Missing X-Amz-Target header",
            )
        return service, operation


def _scope_service(headers: list[tuple[bytes, bytes]]) -> str:
    """The service named in an Authorization header's credential scope ('' if none)."""
    for name, value in headers:
        if name == b"authorization":
            parts = value.split(b"Credential=", 1)
            if len(parts) == 2:
                scope = parts[1].split(b",", 1)[0].split(b"/")
                if len(scope) == 5:
                    return scope[3].decode("latin-1")
    return ""


def _error_body(code: str, message: str) -> bytes:
    return _encoder.encode({"__type": code, "message": message})
