"""Alarm definitions (the CloudWatch PutMetricAlarm role), read from ``serve --alarms-config``.

The file is JSON (or YAML, if PyYAML is installed and the name ends in ``.yml``/``.yaml``)::

    {"alarms": [{
        "name": "hsm-unhealthy",
        "description": "An HSM is not performing properly",
        "metric": "HsmUnhealthy",
        "dimensions": {"cluster_id": "cluster-..."},      # optional: labels to match
        "statistic": "Maximum",              # Maximum|Minimum|Average|Sum|SampleCount
        "comparison": "GreaterThanThreshold",  # GreaterThan[OrEqualTo]Threshold,
                                               # LessThan[OrEqualTo]Threshold
        "threshold": 0,
        "evaluation_periods": 1,
        "period_seconds": 60,
        "actions": ["http://alerts.example/hook"]         # webhook URLs (POST JSON)
    }]}

``metric`` is a sample name of ``serve``'s ``/metrics`` (e.g. ``HsmUnhealthy``,
``strongroom_kms_custom_key_stores``, ``strongroom_requests_total``).
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["COMPARISONS", "STATISTICS", "Alarm", "AlarmConfigError", "load_alarms"]

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
STATISTICS: dict[str, Callable[[Sequence[float]], float]] = {
    "Maximum": max,
    "Minimum": min,
    "Average": statistics.fmean,
    "Sum": lambda values: float(sum(values)),
    "SampleCount": lambda values: float(len(values)),
}
_NAME = re.compile(r"[A-Za-z0-9_.:/ #-]{1,255}")
_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


class AlarmConfigError(ValueError):
    """The alarms configuration file is invalid."""


@dataclass(frozen=True)
class Alarm:
    """One metric alarm."""

    name: str
    metric: str
    comparison: str
    threshold: float
    statistic: str = "Maximum"
    evaluation_periods: int = 1
    period_seconds: float = 60.0
    dimensions: dict[str, str] = field(default_factory=dict)
    actions: tuple[str, ...] = ()
    description: str = ""

    def breaches(self, value: float) -> bool:
        return COMPARISONS[self.comparison](value, self.threshold)

    def aggregate(self, values: Sequence[float]) -> float:
        return STATISTICS[self.statistic](values)

    def trigger(self) -> dict[str, Any]:
        """The ``Trigger`` part of a notification (CloudWatch's alarm message shape)."""
        return {
            "MetricName": self.metric,
            "Dimensions": [{"name": k, "value": v} for k, v in sorted(self.dimensions.items())],
            "Statistic": self.statistic,
            "ComparisonOperator": self.comparison,
            "Threshold": self.threshold,
            "EvaluationPeriods": self.evaluation_periods,
            "Period": self.period_seconds,
        }


def _url(text: object) -> str:
    if not isinstance(text, str) or urlsplit(text).scheme not in ("http", "https"):
        raise AlarmConfigError(f"action {text!r} is not an http(s) webhook URL")
    if not urlsplit(text).hostname:
        raise AlarmConfigError(f"action {text!r} has no host")
    return text


def _alarm(doc: Any) -> Alarm:
    if not isinstance(doc, dict):
        raise AlarmConfigError("each alarm must be an object")
    known = {f for f in Alarm.__dataclass_fields__} | {"actions"}
    unknown = set(doc) - known
    if unknown:
        raise AlarmConfigError(f"unknown alarm field(s): {', '.join(sorted(unknown))}")
    try:
        alarm = Alarm(
            name=str(doc["name"]),
            metric=str(doc["metric"]),
            comparison=str(doc["comparison"]),
            threshold=float(doc["threshold"]),
            statistic=str(doc.get("statistic", "Maximum")),
            evaluation_periods=int(doc.get("evaluation_periods", 1)),
            period_seconds=float(doc.get("period_seconds", 60)),
            dimensions={str(k): str(v) for k, v in dict(doc.get("dimensions", {})).items()},
            actions=tuple(_url(u) for u in doc.get("actions", [])),
            description=str(doc.get("description", "")),
        )
    except KeyError as exc:
        raise AlarmConfigError(f"alarm field {exc.args[0]!r} is required") from None
    except (TypeError, ValueError) as exc:
        raise AlarmConfigError(f"alarm {doc.get('name')!r}: {exc}") from None
    if not _NAME.fullmatch(alarm.name):
        raise AlarmConfigError(f"alarm name {alarm.name!r} is not valid")
    if not _METRIC.fullmatch(alarm.metric):
        raise AlarmConfigError(f"metric {alarm.metric!r} is not a Prometheus sample name")
    if alarm.comparison not in COMPARISONS:
        raise AlarmConfigError(f"comparison {alarm.comparison!r}: one of {', '.join(COMPARISONS)}")
    if alarm.statistic not in STATISTICS:
        raise AlarmConfigError(f"statistic {alarm.statistic!r}: one of {', '.join(STATISTICS)}")
    if not 1 <= alarm.evaluation_periods <= 100 or not 0.1 <= alarm.period_seconds <= 86400:
        raise AlarmConfigError(f"alarm {alarm.name!r}: evaluation_periods or period out of range")
    return alarm


def _parse(path: Path) -> Any:
    text = path.read_text()
    if path.suffix in (".yml", ".yaml"):
        try:
            import yaml  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            raise AlarmConfigError("YAML alarm files need PyYAML; use JSON") from None
        return yaml.safe_load(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AlarmConfigError(f"{path}: {exc}") from None


def load_alarms(path: Path | str | None) -> list[Alarm]:
    """The alarms of a configuration file (none without a file)."""
    if path is None:
        return []
    try:
        doc = _parse(Path(path))
    except OSError as exc:
        raise AlarmConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("alarms", []), list):
        raise AlarmConfigError(f"{path}: expected an object with a list 'alarms'")
    alarms = [_alarm(x) for x in doc.get("alarms", [])]
    names = [a.name for a in alarms]
    if len(set(names)) != len(names):
        raise AlarmConfigError(f"{path}: alarm names must be unique")
    return alarms
