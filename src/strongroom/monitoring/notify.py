"""Where an alarm's state change goes: the log, the audit trail, and its webhooks.

The trail record is a service event (``eventSource: monitoring.amazonaws.com``, ``eventName:
AlarmStateChange``, ``eventType: AwsServiceEvent``) written through the trail's group-commit
writer, so it is hash-chained and signed like every call. The webhook body is the shape of
CloudWatch's alarm notification (AlarmName, NewStateValue, OldStateValue, NewStateReason,
StateChangeTime, Trigger). A webhook that fails is logged and not retried.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

from strongroom.audit.events import iso_time, service_event
from strongroom.audit.sink import TrailSink
from strongroom.monitoring.alarms import Transition

__all__ = ["EVENT_NAME", "EVENT_SOURCE", "AlarmNotifier", "alarm_message"]

log = logging.getLogger("strongroom.monitoring.alarms")
EVENT_SOURCE = "monitoring.amazonaws.com"
EVENT_NAME = "AlarmStateChange"


def alarm_message(change: Transition, account_id: str, region: str) -> dict[str, Any]:
    """The notification body (CloudWatch's alarm message fields)."""
    return {
        "AlarmName": change.alarm.name,
        "AlarmDescription": change.alarm.description or None,
        "AWSAccountId": account_id,
        "Region": region,
        "NewStateValue": change.new,
        "OldStateValue": change.old,
        "NewStateReason": change.reason,
        "StateChangeTime": iso_time(change.at),
        "Trigger": change.alarm.trigger(),
    }


class AlarmNotifier:
    """Runs the actions of a state change (from the monitoring thread)."""

    def __init__(
        self,
        trail: TrailSink | None,
        account_id: str,
        region: str = "us-east-1",
        timeout: float = 5,
    ) -> None:
        self._trail = trail
        self._account = account_id
        self._region = region
        self._timeout = timeout

    def __call__(self, change: Transition) -> None:
        level = logging.WARNING if change.new == "ALARM" else logging.INFO
        log.log(level, "alarm %s: %s -> %s: %s", change.alarm.name, change.old, change.new,
                change.reason)  # fmt: skip
        message = alarm_message(change, self._account, self._region)
        if self._trail is not None:
            details = {k: message[k] for k in ("AlarmName", "NewStateValue", "OldStateValue",
                                               "NewStateReason", "Trigger")}  # fmt: skip
            event, columns = service_event(
                EVENT_SOURCE, EVENT_NAME, self._account, self._region, details, change.at
            )
            try:
                self._trail.write_event(event, columns)
            except Exception:
                log.exception("could not record alarm %s's state change", change.alarm.name)
        body = json.dumps(message).encode()
        for url in change.alarm.actions:
            self._post(url, body, change.alarm.name)

    def _post(self, url: str, body: bytes, name: str) -> None:
        request = urllib.request.Request(  # noqa: S310 (http(s) only: alarm_config checks)
            url, body, {"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as resp:  # noqa: S310
                resp.read()
        except Exception as exc:
            log.warning("alarm %s: webhook POST failed: %s", name, exc)
