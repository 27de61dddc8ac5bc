"""The audit trail writer as a thread of the request process: group commit, fail-closed.

``serve`` itself uses a writer process (:mod:`strongroom.audit.writer`); this in-process
variant serves embedded use (:func:`strongroom.server.build` without ``trail_socket``).

Every call's entry goes to one writer thread per process, which appends whatever has queued up
as one batch (one transaction, one fsync, one signed digest) and then wakes all the requests of
that batch at once. A request's response leaves only after its batch committed; if the batch
fails, every request in it answers 503 ``ServiceUnavailableException``.

What "no effect" means, per kind of operation (:data:`strongroom.audit.redact.EFFECT_FREE`):

* Effect-free operations (Encrypt, Decrypt, GenerateDataKey, Describe*, List*, ...): their only
  effect is the response. One entry, the event, is made durable after the operation ran and
  before the response leaves; if it cannot be, the response is withheld (503), so nothing
  happened that anyone can observe.
* State-changing operations (CreateKey, ScheduleKeyDeletion, PutKeyPolicy, AssumeRole, ...): an
  ``intent`` entry (the same event, without outcome) is made durable *before* the operation
  runs; if it cannot be, the operation never runs (503, no effect). After it ran, the event is
  written as for the others. If that second write fails it is retried for a while
  (:data:`strongroom.api.app.OUTCOME_RETRY_SECONDS`); if the trail stays unwritable, the call
  answers 503 saying it may have run, and its effect stands; the trail still holds the intent
  entry (who asked for what, when, from where), which ``audit verify`` and LookupEvents report
  as an event with outcome unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import msgspec

from strongroom.audit.events import Columns, event_from_call
from strongroom.audit.redact import EFFECT_FREE
from strongroom.audit.sink import AuditedCall, TrailUnavailable
from strongroom.audit.store import NewEntry, TrailStore
from strongroom.iam.principal import Principal

__all__ = ["CallSink", "Trail"]

log = logging.getLogger("strongroom.audit")
_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class _Job:
    kind: str
    call: AuditedCall | None
    principal: Principal | None
    prebuilt: tuple[dict[str, object], Columns] | None
    loop: asyncio.AbstractEventLoop | None
    waiter: asyncio.Future[None] | Future[None]


class CallSink:
    """What both trail sinks share: which calls get an intent entry first, and who the caller
    is; :meth:`_record` makes the entry durable (in a thread here, in the writer process for
    :class:`~strongroom.audit.client.TrailClient`)."""

    def __init__(self, account_id: str, principal_of: Callable[[str], Principal | None]) -> None:
        self._account = account_id
        self._principal_of = principal_of

    def needs_intent(self, service: str, operation: str) -> bool:
        return operation not in EFFECT_FREE

    async def intent(self, call: AuditedCall) -> None:
        await self._record("intent", call, self._caller(call))

    async def outcome(self, call: AuditedCall) -> None:
        await self._record("event", call, self._caller(call))

    def _caller(self, call: AuditedCall) -> Principal | None:
        return None if call.identity is None else self._principal_of(call.identity.access_key_id)

    async def _record(self, kind: str, call: AuditedCall, principal: Principal | None) -> None:
        raise NotImplementedError


class Trail(CallSink):
    """The trail sink of embedded use: a writer thread in this process."""

    def __init__(
        self,
        store: TrailStore,
        account_id: str,
        principal_of: Callable[[str], Principal | None],
        max_batch: int = 1024,
        linger: float = 0.0005,
    ) -> None:
        super().__init__(account_id, principal_of)
        self.store = store
        self._max_batch = max_batch
        #: how long the writer waits for more entries after the first of a batch: the
        #: request threads run meanwhile (the GIL is free), so batches grow with the load
        self._linger = linger
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    # -- other writers (alarms) ----------------------------------------------------------
    def write_event(self, event: dict[str, object], columns: Columns) -> None:
        """Append a service event from any thread, blocking until it is durable."""
        waiter: Future[None] = Future()
        self._ensure_started()
        self._queue.put(_Job("event", None, None, (event, columns), None, waiter))
        waiter.result()

    async def _record(self, kind: str, call: AuditedCall, principal: Principal | None) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._ensure_started()
        self._queue.put(_Job(kind, call, principal, None, loop, waiter))
        await waiter

    # -- the writer thread ---------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="audit-trail", daemon=True)
            self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            deadline = time.monotonic() + self._linger
            while len(batch) < self._max_batch:
                try:
                    job = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._commit(batch)
            if stop:
                return

    def _render(self, job: _Job) -> NewEntry:
        if job.prebuilt is not None:
            event, columns = job.prebuilt
        else:
            assert job.call is not None
            event, columns = event_from_call(job.call, job.principal, self._account)
        return NewEntry(job.kind, _encoder.encode(event), columns)

    def _commit(self, batch: list[_Job]) -> None:
        error: BaseException | None = None
        try:
            self.store.append([self._render(job) for job in batch])
        except Exception as exc:
            log.exception("audit trail write failed; %d call(s) refused", len(batch))
            error = exc
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for job in batch:
            if job.loop is None:
                assert isinstance(job.waiter, Future)
                if error is None:
                    job.waiter.set_result(None)
                else:
                    job.waiter.set_exception(TrailUnavailable())
            else:
                assert isinstance(job.waiter, asyncio.Future)
                by_loop.setdefault(job.loop, []).append(job.waiter)
        for loop, waiters in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop closed (shutdown)
                loop.call_soon_threadsafe(_wake, waiters, error is not None)


def _wake(waiters: list[asyncio.Future[None]], failed: bool) -> None:
    for waiter in waiters:
        if waiter.done():
            continue
        if failed:
            waiter.set_exception(TrailUnavailable())
        else:
            waiter.set_result(None)
