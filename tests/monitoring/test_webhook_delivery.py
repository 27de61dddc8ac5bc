"""Alarm webhooks: delivered by their own thread, retried on 5xx/429 and connection errors with
back-off, not retried on other 4xx. A real loopback HTTP receiver answers as each test says."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from strongroom.monitoring.alarm_config import load_alarms
from strongroom.monitoring.alarms import Transition
from strongroom.monitoring.notify import ATTEMPTS, AlarmNotifier


class Receiver:
    """Answers POSTs with the statuses in ``script`` (then 204), recording every body."""

    def __init__(self, script: list[int], port: int = 0) -> None:
        self.script = list(script)
        self.seen: list[tuple[int, dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.script.pop(0) if receiver.script else 204
                receiver.seen.append((status, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < count and time.monotonic() < deadline:
            time.sleep(0.02)


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[tuple[AlarmNotifier, Any]]:
    notifier = AlarmNotifier(None, "111122223333", timeout=2)
    notifier._backoff = 0.05  # the schedule's shape, not its 1-second scale, is under test

    def change(url: str) -> Transition:
        spec = {"name": "hot", "metric": "HsmUnhealthy", "comparison": "GreaterThanThreshold",
                "threshold": 0, "actions": [url]}  # fmt: skip
        path = tmp_path / "alarms.json"
        path.write_text(json.dumps({"alarms": [spec]}))
        alarm = load_alarms(path)[0]
        return Transition(alarm, "OK", "ALARM", "Threshold crossed", time.time())

    yield notifier, change
    notifier.close()


def test_failed_posts_are_retried_until_delivered(notify: tuple[AlarmNotifier, Any]) -> None:
    notifier, change = notify
    receiver = Receiver([503, 500, 429])
    started = time.monotonic()
    notifier(change(receiver.url))  # returns at once: delivery has its own thread
    assert time.monotonic() - started < 1
    receiver.wait_for(4)
    assert [status for status, _ in receiver.seen] == [503, 500, 429, 204]
    assert {body["NewStateValue"] for _, body in receiver.seen} == {"ALARM"}
    assert receiver.seen[-1][1]["AlarmName"] == "hot"


def test_a_client_error_is_not_retried_and_gives_up_after_the_last_attempt(
    notify: tuple[AlarmNotifier, Any],
) -> None:
    notifier, change = notify
    refused = Receiver([400])
    notifier(change(refused.url))
    refused.wait_for(1)
    always_down = Receiver([502] * (ATTEMPTS + 3))
    notifier(change(always_down.url))
    always_down.wait_for(ATTEMPTS)
    time.sleep(0.5)  # long past the next back-off step: no further attempt comes
    assert [s for s, _ in refused.seen] == [400]
    assert [s for s, _ in always_down.seen] == [502] * ATTEMPTS


def test_an_unreachable_receiver_is_retried(notify: tuple[AlarmNotifier, Any]) -> None:
    notifier, change = notify
    gone = Receiver([])
    port = gone.server.server_address[1]
    gone.server.shutdown()
    gone.server.server_close()  # connections to the port are refused for now
    notifier(change(gone.url))
    time.sleep(0.1)  # the first attempt (refused) has been made; retries are under way
    back = Receiver([], port)  # the receiver comes back on the same address
    back.wait_for(1)
    assert [s for s, _ in back.seen] == [204]
    assert not gone.seen
