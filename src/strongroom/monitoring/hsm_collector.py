"""The periodic HSM audit-log collection pass: every live HSM of every cluster → the trail store.

The control plane knows the nodes (address, trust: self-signed certificate before
initialization, the cluster's trust anchor after) and holds each node's appliance-user password
(``<data-dir>/hsms/<hsm-id>/appliance-user.pin``), which may read the audit log. The collector
keeps one logged-in session per HSM between passes, so a pass adds a single ``audit_read``
record to each node's own log rather than a login/logout pair; a session that fails (node
restarted, replaced or unreachable) is dropped and opened again at the next pass.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from sqlalchemy import Engine

from strongroom.audit.hsm_logs import HsmSource, collect_hsm_logs
from strongroom.cloudhsm import domain as d
from strongroom.cloudhsm.control import ClusterControl
from strongroom.cloudhsm.domain import Hsm
from strongroom.hsm.audit import AuditRecord
from strongroom.hsm.client import HsmClient, client_ssl_context

__all__ = ["HsmLogCollector"]

log = logging.getLogger("strongroom.monitoring.hsm_logs")
_APP_USER = "app_user"


class HsmLogCollector:
    """Collects every live HSM's audit log into the trail database (one stream per HSM)."""

    def __init__(self, control: ClusterControl, trail_engine: Engine) -> None:
        self._control = control
        self._engine = trail_engine
        self._clients: dict[str, HsmClient] = {}

    def _open(self, hsm: Hsm) -> HsmClient:
        cluster = self._control.cluster(hsm.cluster_id)
        anchor = None if cluster is None else self._control.anchor(cluster)
        sup = self._control.supervisor
        ctx = (
            client_ssl_context(trust_anchor=anchor)
            if anchor is not None
            else client_ssl_context(node_cert=sup.node_cert(hsm.hsm_id))
        )
        client = HsmClient([hsm.address], ctx, timeout=10)
        try:
            client.login(_APP_USER, sup.appliance_pin(hsm.hsm_id), "appliance-user")
        except Exception:
            client.close()
            raise
        return client

    def _drop(self, hsm_id: str) -> None:
        client = self._clients.pop(hsm_id, None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def _source(self, hsm: Hsm) -> HsmSource:
        def fetch(start_seq: int, limit: int) -> Sequence[AuditRecord]:
            try:
                client = self._clients.get(hsm.hsm_id)
                if client is None:
                    client = self._clients[hsm.hsm_id] = self._open(hsm)
                return client.audit(start_seq, limit)
            except Exception:
                self._drop(hsm.hsm_id)
                raise

        return HsmSource(hsm.cluster_id, hsm.hsm_id, fetch)

    def live_hsms(self) -> list[Hsm]:
        """ACTIVE HSMs whose node process runs, in every cluster that is not deleted (none on
        a node that does not run the HSMs: their appliance PINs are in the host's data)."""
        out: list[Hsm] = []
        if not self._control.runs_hsms():
            return out
        for cluster in self._control.clusters():
            if cluster.state != d.DELETED:
                out += self._control.live_members(cluster.cluster_id)
        return out

    def run_once(self) -> int:
        """One pass; returns how many records were stored."""
        hsms = self.live_hsms()
        for gone in set(self._clients) - {h.hsm_id for h in hsms}:
            self._drop(gone)
        stored = collect_hsm_logs(self._engine, [self._source(h) for h in hsms])
        if stored:
            log.debug("collected %d HSM audit record(s)", stored)
        return stored

    def close(self) -> None:
        """Log out of every node."""
        for hsm_id in list(self._clients):
            client = self._clients.get(hsm_id)
            if client is not None:
                with contextlib.suppress(Exception):
                    client.logout()
            self._drop(hsm_id)
