"""Where an alarm's state change goes: the log, the audit trail, and its webhooks.

The trail record is a service event (``eventSource: monitoring.amazonaws.com``, ``eventName:
AlarmStateChange``, ``eventType: AwsServiceEvent``) written through the trail's group-commit
writer, so it is hash-chained and signed like every call. The webhook body is the shape of
CloudWatch's alarm notification (AlarmName, NewStateValue, OldStateValue, NewStateReason,
StateChangeTime, Trigger). Webhooks are POSTed by a delivery thread of their own, so a slow
receiver never holds up alarm evaluation: in order, each up to :data:`ATTEMPTS` times (a
connection error, a timeout or a 5xx/429 answer is retried after 1, 2, 4, ... seconds; another
4xx is not), and whatever still fails is logged.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from typing import Any

from strongroom.audit.events import iso_time, service_event
from strongroom.audit.sink import TrailSink
from strongroom.monitoring.alarms import Transition

__all__ = ["ATTEMPTS", "EVENT_NAME", "EVENT_SOURCE", "AlarmNotifier", "alarm_message"]

log = logging.getLogger("strongroom.monitoring.alarms")
EVENT_SOURCE = "monitoring.amazonaws.com"
EVENT_NAME = "AlarmStateChange"
ATTEMPTS = 5


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
        self._backoff = 1.0
        self._outbox: queue.SimpleQueue[tuple[str, bytes, str] | None] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._stopping = threading.Event()

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
            if self._sender is None:
                self._sender = threading.Thread(target=self._deliver, name="alarm-webhooks",
                                                daemon=True)  # fmt: skip
                self._sender.start()
            self._outbox.put((url, body, change.alarm.name))

    def close(self) -> None:
        """Stop the delivery thread (what is still queued or being retried is dropped)."""
        self._stopping.set()
        self._outbox.put(None)
        if self._sender is not None:
            self._sender.join(timeout=self._timeout + 1)

    def _deliver(self) -> None:
        while (job := self._outbox.get()) is not None:
            url, body, name = job
            delay = self._backoff
            for attempt in range(1, ATTEMPTS + 1):
                error = self._post(url, body)
                if error is None:
                    break
                retry, reason = error
                if not retry or attempt == ATTEMPTS:
                    log.warning("alarm %s: webhook POST failed (attempt %d of %d, giving up): %s",
                                name, attempt, ATTEMPTS, reason)  # fmt: skip
                    break
                log.info("alarm %s: webhook POST failed (attempt %d): %s; retrying in %.0f s",
                         name, attempt, reason, delay)  # fmt: skip
                if self._stopping.wait(delay):
                    return
                delay *= 2

    def _post(self, url: str, body: bytes) -> tuple[bool, str] | None:
        """None when delivered; else (whether to retry, why not)."""
        request = urllib.request.Request(  # noqa: S310 (http(s) only: alarm_config checks)
            url, body, {"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as resp:  # noqa: S310
                resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code >= 500 or exc.code == 429, f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
            return True, str(exc)
        return None
