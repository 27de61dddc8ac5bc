"""``GET /metrics`` scraped from a real server and parsed with prometheus_client's parser."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.audit.conftest import AuditEnv, audit_env

__all__ = ["audit_env"]


def _scrape(env: AuditEnv) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"{env.server.endpoint}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def test_requests_latency_and_key_counts(audit_env: AuditEnv) -> None:
    kms = audit_env.server.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=key, Plaintext=b"x")
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    samples = _scrape(audit_env)
    requests = samples["strongroom_requests_total"]
    wanted = {"service": "kms", "operation": "Encrypt", "outcome": "ok"}
    ok = [v for labels, v in requests if labels == wanted]
    assert ok and ok[0] >= 1
    buckets = samples["strongroom_request_duration_seconds_bucket"]
    assert any(labels.get("operation") == "Encrypt" for labels, _ in buckets)
    keys = samples["strongroom_kms_keys"]
    pending = {"state": "PendingDeletion", "key_spec": "SYMMETRIC_DEFAULT"}
    assert any(lab == pending and v >= 1 for lab, v in keys)
    # No unbounded or secret labels: no key ids, no principals.
    text = str(samples)
    assert key not in text and "admin" not in text
