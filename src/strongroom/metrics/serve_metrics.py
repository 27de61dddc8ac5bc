"""``GET /metrics`` on the serve port, in Prometheus text format.

* ``strongroom_requests_total{service, operation, outcome}``: calls by operation and outcome
  (``ok`` or the AWS error code);
* ``strongroom_request_duration_seconds{service, operation}``: latency histogram;
* ``strongroom_kms_keys{state, key_spec}``: key counts, read from the database at scrape time;
* ``strongroom_kms_custom_key_stores{connection_state}``: custom key stores per connection
  state (every state, 0 included; no store ids);
* ``strongroom_build_info{version}``: 1, with the running version;
* collectors added by the composition root: HSM health (``HsmUnhealthy``) and alarm states.

Labels are bounded: ``operation`` is a known operation of the service or ``Other`` (the name a
client sent is never a label unless the model knows it); no key ids, principals or secrets.
With ``serve --workers N`` every worker counts into prometheus_client's multiprocess files in
one directory (``PROMETHEUS_MULTIPROC_DIR``, set by ``serve`` before the workers start) and a
scrape of any worker aggregates all of them; key counts come from the shared database, so they
are right whichever worker answers.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from strongroom.storage.schema import custom_key_stores, keys

__all__ = ["CONNECTION_STATES", "CONTENT_TYPE", "ServeMetrics"]

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
CONNECTION_STATES = ("CONNECTED", "CONNECTING", "DISCONNECTED", "DISCONNECTING", "FAILED")
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _KeyCounts(Collector):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "strongroom_kms_keys",
            "KMS keys by key state and key spec",
            labels=["state", "key_spec"],
        )
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(keys.c.state, keys.c.key_spec, func.count()).group_by(
                    keys.c.state, keys.c.key_spec
                )
            ).all()
        for state, spec, count in rows:
            family.add_metric([state, spec], count)
        yield family
        with self._engine.connect() as conn:
            states = Tally[str](
                dict(
                    conn.execute(
                        select(custom_key_stores.c.connection_state, func.count()).group_by(
                            custom_key_stores.c.connection_state
                        )
                    ).all()
                )
            )
        stores = GaugeMetricFamily(
            "strongroom_kms_custom_key_stores",
            "Custom key stores by connection state",
            labels=["connection_state"],
        )
        for state in sorted(set(CONNECTION_STATES) | set(states)):
            stores.add_metric([state], states.get(state, 0))
        yield stores
        info = GaugeMetricFamily("strongroom_build_info", "Strongroom build", labels=["version"])
        info.add_metric([_VERSION], 1)
        yield info


def _version() -> str:
    try:
        return version("strongroom")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


_VERSION = _version()


class ServeMetrics:
    """The metrics of one serve process (or, in multiprocess mode, of all its workers)."""

    def __init__(self, engine: Engine, operations: Mapping[str, frozenset[str]]) -> None:
        self._operations = operations
        self._record = CollectorRegistry()
        self.requests = Counter(
            "strongroom_requests",
            "API calls by service, operation and outcome",
            ["service", "operation", "outcome"],
            registry=self._record,
        )
        self.latency = Histogram(
            "strongroom_request_duration_seconds",
            "API call latency",
            ["service", "operation"],
            buckets=_BUCKETS,
            registry=self._record,
        )
        self._extra: list[Collector] = [_KeyCounts(engine)]
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def add_collector(self, collector: Collector) -> None:
        self._extra.append(collector)

    def observe(self, service: str, operation: str, outcome: str, seconds: float) -> None:
        """Count one call (the App's ``observe`` hook)."""
        if operation not in self._operations.get(service, frozenset()):
            operation = "Other"
        service = service if service in self._operations else "unknown"
        labels = (service, operation, outcome[:64])
        child = self._children.get(labels)
        if child is None:
            if len(self._children) > 20_000:  # defence in depth against label growth
                labels = (service, operation, "Other")
            child = (
                self.requests.labels(*labels),
                self.latency.labels(service, operation),
            )
            self._children[labels] = child
        child[0].inc()
        child[1].observe(seconds)

    def registry(self) -> CollectorRegistry:
        """Everything ``/metrics`` shows: this process's counters (or, with several workers, all
        workers' counters from the multiprocess directory) plus the scrape-time collectors."""
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Forward(self._record))
        for collector in self._extra:
            registry.register(collector)
        return registry

    def page(self) -> tuple[bytes, bytes]:
        """(content type, body) of ``GET /metrics``."""
        return CONTENT_TYPE, generate_latest(self.registry())

    def samples(self, name: str, labels: Mapping[str, str]) -> list[float]:
        """Current values of the samples named ``name`` whose labels include ``labels``."""
        return [
            s.value
            for metric in self.registry().collect()
            for s in metric.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()
