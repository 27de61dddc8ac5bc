"""A server with alarms and a webhook receiver, and an ACTIVE two-HSM cluster (real nodes)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cloudhsm.conftest import (
    NODE_ARGS,
    activate,
    initialize,
    new_cluster,
    wait_cluster,
)
from tests.conftest import Server, running_server

__all__ = ["ALICE_PW", "Env", "Hook", "env", "scrape"]

ALICE_PW = "alice-pass-1"


@dataclass
class Hook:
    """A loopback webhook receiver that keeps every JSON body POSTed to it."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", "0"))
                hook.messages.append(json.loads(self.rfile.read(size)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/alarm"

    def states(self) -> list[str]:
        return [m["NewStateValue"] for m in list(self.messages)]


@dataclass
class Env:
    server: Server
    hsm: Any
    cluster_id: str
    anchor: Path
    hook: Hook


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples of a Prometheus text page, parsed with prometheus_client's parser."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("monitoring")
    hook = Hook()
    url = hook.start()
    alarm = {
        "name": "hsm-unhealthy",
        "description": "An HSM is not performing properly",
        "metric": "HsmUnhealthy",
        "statistic": "Maximum",
        "comparison": "GreaterThanThreshold",
        "threshold": 0,
        "evaluation_periods": 1,
        "period_seconds": 1,
        "actions": [url],
    }
    config = base / "alarms.json"
    config.write_text(json.dumps({"alarms": [alarm]}))
    args = ("--scheduler-interval", "0.5", "--alarms-config", str(config))
    node_env = {"STRONGROOM_HSM_NODE_ARGS": NODE_ARGS}
    try:
        with running_server(base / "data", *args, env=node_env) as server:
            hsm = server.client("cloudhsmv2")
            cid = new_cluster(hsm, ("a", "b"))
            initialize(hsm, cid, 2, base)
            anchor = base / "customerCA.crt"
            activate(server, cid, anchor, {"alice": ALICE_PW})
            wait_cluster(hsm, cid, "ACTIVE", 2)
            yield Env(server, hsm, cid, anchor, hook)
    finally:
        if hook.server is not None:
            hook.server.shutdown()
