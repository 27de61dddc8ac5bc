"""Per-HSM health for ``serve``'s ``/metrics`` (and so for alarms), scraped from the nodes.

* ``HsmUnhealthy{cluster_id, hsm_id, availability_zone}`` (CloudWatch's name and meaning):
  0 for an ACTIVE HSM whose node process runs and answers ``GET /metrics`` on its metrics port
  (node port + 1), else 1. An HSM that died stays at 1 — under its own id — until the control
  plane's replacement is ACTIVE, then its series disappears (CloudWatch's per-HSM dimension).
* ``strongroom_cloudhsm_hsms{state, availability_zone}`` and
  ``strongroom_cloudhsm_clusters{state}``: counts.

Label values are bounded by the HSMs that exist now (at most 28 per cluster); HSM ids are
CloudWatch's dimension for these metrics and are not secret.
"""

from __future__ import annotations

import contextlib
import urllib.request
from collections import Counter
from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from strongroom.cloudhsm import domain as d
from strongroom.cloudhsm.control import ClusterControl
from strongroom.cloudhsm.domain import Hsm

__all__ = ["HsmHealth", "node_metrics_url", "probe_node"]


def node_metrics_url(hsm: Hsm) -> str:
    """Where a node serves ``GET /metrics`` (see ``hsm-node --metrics-port``)."""
    return f"http://{hsm.eni_ip}:{hsm.port + 1}/metrics"


def probe_node(hsm: Hsm, timeout: float = 0.5) -> bool:
    """True if the node's metrics endpoint answers 200."""
    with (
        contextlib.suppress(OSError, ValueError),
        urllib.request.urlopen(node_metrics_url(hsm), timeout=timeout) as resp,  # noqa: S310
    ):
        return bool(resp.status == 200)
    return False


class HsmHealth(Collector):
    """The HSM families of ``serve``'s ``/metrics``, computed at scrape time."""

    def __init__(self, control: ClusterControl) -> None:
        self._control = control

    def unhealthy(self) -> list[tuple[Hsm, int]]:
        """(HSM, HsmUnhealthy) for every HSM that has a value now (on the node that runs the
        HSMs: another node sharing the database cannot see their processes)."""
        out: list[tuple[Hsm, int]] = []
        if not self._control.runs_hsms():
            return out
        for cluster in self._control.clusters():
            if cluster.state == d.DELETED:
                continue
            for hsm in self._control.hsms(cluster.cluster_id):
                if hsm.state == d.ACTIVE:
                    ok = self._control.supervisor.alive(hsm.pid) and probe_node(hsm)
                    out.append((hsm, 0 if ok else 1))
                elif hsm.state == d.CREATE_IN_PROGRESS and hsm.replacing:
                    dead = Hsm(**{**hsm.__dict__, "hsm_id": hsm.replacing, "replacing": ""})
                    out.append((dead, 1))
        return out

    def collect(self) -> Iterable[Metric]:
        unhealthy = GaugeMetricFamily(
            "HsmUnhealthy",
            "1 if the HSM is not performing properly (dead, not answering, being replaced)",
            labels=["cluster_id", "hsm_id", "availability_zone"],
        )
        for hsm, value in self.unhealthy():
            unhealthy.add_metric([hsm.cluster_id, hsm.hsm_id, hsm.az], value)
        yield unhealthy
        hsms = GaugeMetricFamily(
            "strongroom_cloudhsm_hsms",
            "HSMs by state and Availability Zone",
            labels=["state", "availability_zone"],
        )
        clusters = Counter[str]()
        by_state = Counter[tuple[str, str]]()
        for cluster in self._control.clusters():
            clusters[cluster.state] += 1
            if cluster.state != d.DELETED:
                by_state.update((h.state, h.az) for h in self._control.hsms(cluster.cluster_id))
        for (state, az), count in sorted(by_state.items()):
            hsms.add_metric([state, az], count)
        yield hsms
        family = GaugeMetricFamily(
            "strongroom_cloudhsm_clusters", "Clusters by state", labels=["state"]
        )
        for state, count in sorted(clusters.items()):
            family.add_metric([state], count)
        yield family
