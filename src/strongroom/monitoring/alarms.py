"""Alarm evaluation inside ``serve``: OK ⇄ ALARM, like CloudWatch metric alarms.

Every monitoring pass samples each alarm's metric from ``serve``'s own ``/metrics`` registry
(the statistic folds the matching series into one datapoint), keeps the datapoints of the last
``evaluation_periods × period_seconds``, and computes the statistic per period. The alarm is in
ALARM when every one of the last ``evaluation_periods`` periods has data and breaches the
threshold, else OK (missing data counts as not breaching). On a change the notifier runs: the
log, an ``AlarmStateChange`` event in the audit trail, and a JSON POST to each webhook.

Current states are kept in ``<data-dir>/alarms.json`` (written atomically) so a restarted
``serve`` does not notify a change twice, every worker can export ``strongroom_alarm_firing``,
and ``strongroom status`` can show them.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from strongroom.files import replace_text
from strongroom.monitoring.alarm_config import Alarm

__all__ = ["ALARM", "OK", "AlarmEvaluator", "AlarmStates", "Transition", "read_states"]

OK, ALARM = "OK", "ALARM"
Sampler = Callable[[str, Mapping[str, str]], list[float]]


@dataclass(frozen=True)
class Transition:
    """One state change."""

    alarm: Alarm
    old: str
    new: str
    reason: str
    at: float


def read_states(path: Path) -> dict[str, dict[str, Any]]:
    """The saved states ({alarm name: {state, since, reason}}), empty if none."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _write_states(path: Path, states: Mapping[str, Mapping[str, Any]]) -> None:
    replace_text(path, json.dumps(states, indent=1, sort_keys=True))


class AlarmEvaluator:
    """Samples, evaluates and notifies; one instance in the monitoring leader."""

    def __init__(
        self,
        alarms: Sequence[Alarm],
        sample: Sampler,
        notify: Callable[[Transition], None],
        state_path: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._alarms = list(alarms)
        self._sample = sample
        self._notify = notify
        self._path = state_path
        self._clock = clock
        self._points: dict[str, deque[tuple[float, float]]] = {a.name: deque() for a in alarms}
        saved = read_states(state_path)
        self.states: dict[str, dict[str, Any]] = {
            a.name: saved.get(a.name) or {"state": OK, "since": clock(), "reason": "initial"}
            for a in alarms
        }
        _write_states(state_path, self.states)

    def _datapoint(self, alarm: Alarm, now: float) -> None:
        values = self._sample(alarm.metric, alarm.dimensions)
        points = self._points[alarm.name]
        if values:
            points.append((now, alarm.aggregate(values)))
        horizon = now - alarm.evaluation_periods * alarm.period_seconds
        while points and points[0][0] <= horizon:
            points.popleft()

    def _evaluate(self, alarm: Alarm, now: float) -> tuple[str, str]:
        points = self._points[alarm.name]
        per_period: list[float] = []
        for i in range(alarm.evaluation_periods):
            end = now - i * alarm.period_seconds
            window = [v for t, v in points if end - alarm.period_seconds < t <= end]
            if not window:
                return OK, f"no datapoint in period {i + 1} of {alarm.evaluation_periods}"
            per_period.append(alarm.aggregate(window))
        shown = ", ".join(f"{v:g}" for v in reversed(per_period))
        verb = "breached" if all(alarm.breaches(v) for v in per_period) else "did not breach"
        reason = (
            f"Threshold Crossed: {alarm.evaluation_periods} datapoint(s) [{shown}] {verb} "
            f"the threshold ({alarm.comparison} {alarm.threshold:g})"
        )
        return (ALARM if verb == "breached" else OK), reason

    def run_once(self) -> list[Transition]:
        """One evaluation of every alarm; returns (and notifies) the state changes."""
        now = self._clock()
        changes: list[Transition] = []
        for alarm in self._alarms:
            self._datapoint(alarm, now)
            new, reason = self._evaluate(alarm, now)
            old = self.states[alarm.name]["state"]
            if new != old:
                self.states[alarm.name] = {"state": new, "since": now, "reason": reason}
                changes.append(Transition(alarm, old, new, reason, now))
        if changes:
            _write_states(self._path, self.states)
            for change in changes:
                self._notify(change)
        return changes


class AlarmStates(Collector):
    """``strongroom_alarm_firing{alarm}``: 1 for an alarm in ALARM (names come from the config,
    so the label is bounded)."""

    def __init__(self, alarms: Sequence[Alarm], state_path: Path) -> None:
        self._names = [a.name for a in alarms]
        self._path = state_path

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "strongroom_alarm_firing", "1 while the alarm is in ALARM state", labels=["alarm"]
        )
        states = read_states(self._path) if self._names else {}
        for name in self._names:
            firing = states.get(name, {}).get("state") == ALARM
            family.add_metric([name], 1 if firing else 0)
        yield family
