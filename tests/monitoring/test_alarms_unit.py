"""Alarm definitions and evaluation (pure: a sampler function stands in for /metrics), and the
Prometheus rules file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strongroom.monitoring.alarm_config import AlarmConfigError, load_alarms
from strongroom.monitoring.alarms import AlarmEvaluator, Transition, read_states

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "strongroom-rules.yml"
BASE = {"name": "a", "metric": "HsmUnhealthy", "comparison": "GreaterThanThreshold",
        "threshold": 0}  # fmt: skip


def _write(tmp: Path, *alarms: dict[str, object]) -> Path:
    path = tmp / "alarms.json"
    path.write_text(json.dumps({"alarms": list(alarms)}))
    return path


@pytest.mark.parametrize(
    "change",
    [
        {"comparison": "Bigger"},
        {"statistic": "p99"},
        {"metric": "no spaces allowed"},
        {"actions": ["file:///etc/passwd"]},
        {"evaluation_periods": 0},
        {"surprise": 1},
        {"threshold": "high"},
    ],
)
def test_invalid_alarms_are_refused(tmp_path: Path, change: dict[str, object]) -> None:
    with pytest.raises(AlarmConfigError):
        load_alarms(_write(tmp_path, {**BASE, **change}))


def test_missing_field_and_duplicate_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AlarmConfigError, match="threshold"):
        load_alarms(_write(tmp_path, {k: v for k, v in BASE.items() if k != "threshold"}))
    with pytest.raises(AlarmConfigError, match="unique"):
        load_alarms(_write(tmp_path, BASE, BASE))


def test_ok_to_alarm_and_back_over_evaluation_periods(tmp_path: Path) -> None:
    spec = {**BASE, "comparison": "GreaterThanOrEqualToThreshold", "threshold": 5,
            "statistic": "Average", "evaluation_periods": 2, "period_seconds": 10}  # fmt: skip
    alarm = load_alarms(_write(tmp_path, spec))[0]
    now, value, seen = [0.0], [0.0], list[Transition]()
    ev = AlarmEvaluator([alarm], lambda name, dims: [value[0], value[0]], seen.append,
                        tmp_path / "states.json", lambda: now[0])  # fmt: skip

    def at(t: float, v: float) -> list[str]:
        now[0], value[0] = t, v
        return [c.new for c in ev.run_once()]

    assert at(1, 9) == []  # one breaching period of two: still OK
    assert at(11, 9) == ["ALARM"]
    assert read_states(tmp_path / "states.json")["a"]["state"] == "ALARM"
    assert at(15, 1) == []  # period average (9+1)/2 = 5 still breaches
    assert at(21, 1) == ["OK"]
    assert seen[0].old == "OK" and "breached" in seen[0].reason
    # a restarted evaluator resumes from the saved state (no duplicate notification)
    again = AlarmEvaluator([alarm], lambda n, d: [1.0], seen.append, tmp_path / "states.json")
    assert again.states["a"]["state"] == "OK" and again.run_once() == []


def test_prometheus_rules_file_is_valid_yaml() -> None:
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(RULES.read_text())
    rules = doc["groups"][0]["rules"]
    assert {"alert", "expr"} <= set(rules[0])
    assert any("HsmUnhealthy" in r["expr"] for r in rules)
