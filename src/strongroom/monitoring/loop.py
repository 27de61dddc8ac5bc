"""The monitoring pass of ``serve``: HSM audit-log collection, then alarm evaluation.

It runs as its own background task beside the key scheduler, every
``min(scheduler_interval, 10)`` seconds, off the event loop (it talks to HSM nodes and may POST
to webhooks). With ``serve --workers N`` only the worker holding ``<data-dir>/monitoring.lock``
runs it; if that worker dies another takes over at its next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from pathlib import Path
from typing import IO

from sqlalchemy import Engine

from strongroom.audit.sink import TrailSink
from strongroom.cloudhsm.control import ClusterControl
from strongroom.metrics.serve_metrics import ServeMetrics
from strongroom.monitoring.alarm_config import load_alarms
from strongroom.monitoring.alarms import AlarmEvaluator, AlarmStates
from strongroom.monitoring.hsm_collector import HsmLogCollector
from strongroom.monitoring.hsm_health import HsmHealth
from strongroom.monitoring.notify import AlarmNotifier

__all__ = ["ALARM_STATES_FILE", "Monitoring"]

log = logging.getLogger("strongroom.monitoring")
ALARM_STATES_FILE = "alarms.json"


class Monitoring:
    """HSM log collection and alarms for one ``serve`` data directory."""

    def __init__(
        self,
        data_dir: Path,
        interval: float,
        collector: HsmLogCollector,
        evaluator: AlarmEvaluator | None,
    ) -> None:
        self._lock_path = data_dir / "monitoring.lock"
        self._lock: IO[str] | None = None
        self.interval = interval
        self.collector = collector
        self.evaluator = evaluator
        self.notifier: AlarmNotifier | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def build(
        cls,
        data_dir: Path,
        alarms_config: str | None,
        interval: float,
        control: ClusterControl,
        trail_engine: Engine,
        trail: TrailSink | None,
        metrics: ServeMetrics,
        account_id: str,
    ) -> Monitoring:
        """Wire the pieces; adds the HSM health and alarm-state families to ``metrics``."""
        alarms = load_alarms(alarms_config)
        states = data_dir / ALARM_STATES_FILE
        metrics.add_collector(HsmHealth(control))
        metrics.add_collector(AlarmStates(alarms, states))
        evaluator = notifier = None
        if alarms:
            notifier = AlarmNotifier(trail, account_id)
            evaluator = AlarmEvaluator(alarms, metrics.samples, notifier, states)
        collector = HsmLogCollector(control, trail_engine)
        monitoring = cls(data_dir, min(interval, 10.0), collector, evaluator)
        monitoring.notifier = notifier
        return monitoring

    def _leader(self) -> bool:
        if self._lock is not None:
            return True
        handle = open(self._lock_path, "a+", encoding="ascii")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock = handle
        return True

    def run_once(self) -> None:
        """One pass: collect the HSM logs, then evaluate the alarms."""
        self.collector.run_once()
        if self.evaluator is not None:
            self.evaluator.run_once()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self.collector.close)
        if self.notifier is not None:
            await asyncio.to_thread(self.notifier.close)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    async def _run(self) -> None:
        while True:
            try:
                if self._leader():
                    await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("monitoring pass failed")
            await asyncio.sleep(self.interval)
