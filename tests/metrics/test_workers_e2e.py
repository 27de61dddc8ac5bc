"""``serve --workers 2``: every worker's ``/metrics`` shows the counts of all workers."""

from __future__ import annotations

import http.client
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import running_server


def _encrypt_ok(port: int) -> float:
    """Encrypt/ok from one scrape on a fresh connection (so any worker may answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Connection": "close"})
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "strongroom_requests_total" and s.labels.get("operation") == "Encrypt":
                return s.value
    return 0.0


def test_metrics_are_summed_over_workers_and_reset_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data, "--workers", "2") as server:
        key = server.client().create_key()["KeyMetadata"]["KeyId"]
        for _ in range(24):  # a fresh client per call: new connections spread over workers
            server.client().encrypt(KeyId=key, Plaintext=b"x")
        assert {_encrypt_ok(server.port) for _ in range(8)} == {24.0}
        mp = data / "metrics-multiproc"
        assert any(mp.glob("counter_*.db"))
    with running_server(data, "--workers", "2") as server:
        assert _encrypt_ok(server.port) == 0.0  # the directory was emptied at start
