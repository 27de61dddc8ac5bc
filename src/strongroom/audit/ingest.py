"""When and how the trail writer moves its journal into the trail's tables.

The writer process appends each batch to its :class:`~strongroom.audit.journal.Journal` and
tells the :class:`Ingester`, which ingests once :data:`INGEST_ENTRIES` entries or
:data:`INGEST_SECONDS` have gathered: it starts a new journal segment and ingests the entries
of the finished ones on a thread of its own, so that the writer goes on answering its clients
meanwhile (an ingestion of a few hundred entries takes milliseconds, a stall every worker would
wait out), and recycles those segments once they are in the tables. One ingestion runs at a
time. What an earlier writer left is ingested before the writer serves, and everything is
ingested when it stops.

If an ingestion fails, :attr:`Ingester.failed` holds until one of everything in the journal
succeeds (retried once a second); the writer refuses batches meanwhile (fail-closed), and goes
on from the tables' head once it succeeds (:attr:`Ingester.resumed`): what it chained before
is in the tables then, and if it had failed from the start, what an earlier writer left is too.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from strongroom.audit.journal import Journal, JournalDamaged
from strongroom.audit.store import ChainedEntry, TrailStore

__all__ = ["INGEST_ENTRIES", "INGEST_SECONDS", "Ingester"]

log = logging.getLogger("strongroom.audit.writer")

#: the journal is ingested into the trail's tables once this many entries or seconds gathered
INGEST_ENTRIES = 512
INGEST_SECONDS = 0.25
_RETRY_SECONDS = 1.0


def _set_nice(nice: int | None) -> None:
    """The ingestion thread's niceness (a thread inherits its creator's; lowering a thread's
    priority back is always permitted)."""
    if nice is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)  # on Linux: the calling thread
        except OSError:
            log.warning("the trail's ingestion thread cannot take niceness %d", nice)


class Ingester:
    """The writer's ingestion schedule and thread."""

    def __init__(
        self,
        store: TrailStore,
        journal: Journal,
        seconds: float = INGEST_SECONDS,
        entries: int = INGEST_ENTRIES,
        thread_nice: int | None = None,
    ) -> None:
        self.journal = journal
        self._store = store
        self._seconds = seconds
        self._entries = entries
        self._pool = ThreadPoolExecutor(
            1, thread_name_prefix="trail-ingest", initializer=_set_nice, initargs=(thread_nice,)
        )
        self._running: Future[bool] | None = None
        self._backlog: list[ChainedEntry] = []  # appended, not yet handed to an ingestion
        self._since = 0.0  # when the oldest of them was appended
        self._failed_at: float | None = None
        #: everything in the journal is in the tables: their head is the chain's (the writer
        #: reads it and clears this)
        self.resumed = False

    @property
    def failed(self) -> bool:
        return self._failed_at is not None

    def start(self) -> tuple[int, str]:
        """Ingest what an earlier writer left; the chain head (seq, hash) to go on from."""
        self.ingest_all()
        return self._store.head()

    def added(self, chained: Sequence[ChainedEntry]) -> None:
        """``chained`` is durable in the journal."""
        if not self._backlog:
            self._since = time.monotonic()
        self._backlog += chained

    def timeout(self) -> float:
        """How long the writer may wait for clients before :meth:`tick` is due."""
        if self._running is not None:
            return 0.05  # to notice its end soon
        if self._failed_at is not None:
            return max(0.0, self._failed_at + _RETRY_SECONDS - time.monotonic())
        if not self._backlog:
            return 0.5
        return max(0.0, min(0.5, self._since + self._seconds - time.monotonic()))

    def tick(self) -> None:
        """Collect a finished ingestion; start the next one if it is due."""
        if self._running is not None:
            if not self._running.done():
                return
            self._collect()
        now = time.monotonic()
        if self._failed_at is not None:
            if now - self._failed_at >= _RETRY_SECONDS:
                self.ingest_all()
            return
        if not self._backlog or (
            len(self._backlog) < self._entries and now - self._since < self._seconds
        ):
            return
        self.journal.rotate()
        segments = self.journal.segments()  # the finished ones: the next is not created yet
        batch, self._backlog = self._backlog, []
        self._running = self._pool.submit(self._ingest, lambda: batch, segments, True)

    def ingest_all(self) -> None:
        """Wait for a running ingestion, then ingest every segment there is."""
        if self._running is not None:
            self._running.result()
            self._collect()
        self.journal.rotate()
        segments = self.journal.segments()
        ok = self._ingest(lambda: self.journal.read(segments), segments, False)
        if ok:
            self._backlog = []
            self.resumed = True
        self._failed_at = None if ok else time.monotonic()

    def finish(self) -> None:
        self.ingest_all()
        self._pool.shutdown()
        self.journal.close()

    def _collect(self) -> None:
        assert self._running is not None
        ok = self._running.result()
        self._running = None
        if not ok:
            self._failed_at = time.monotonic()

    def _ingest(
        self, source: Callable[[], list[ChainedEntry]], segments: list[Path], ours: bool
    ) -> bool:
        """Ingest ``source()`` and recycle ``segments`` once all of it is in the tables."""
        read_up_to = [0]

        def read() -> list[ChainedEntry]:
            entries = source()
            if entries:
                read_up_to[0] = entries[-1].seq
            return entries

        try:
            last = self._store.ingest(read, chained_by_us=ours)
            if last >= read_up_to[0]:
                for path in segments:
                    self.journal.recycle(path)
        except JournalDamaged as exc:
            log.error("the audit journal is damaged; calls are refused until it is mended: %s", exc)
            return False
        except Exception:
            log.exception("ingesting the audit journal into the trail failed")
            # a SQLite connection that met an I/O error stays unusable ("attempt to write a
            # readonly database") after the disk is back: the retry opens new ones
            self._store.close()
            self._store.engine.dispose()
            return False
        return True
