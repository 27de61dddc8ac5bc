"""What the control plane asks of HSM nodes, as their appliance user: the CSR, installing the
cluster certificate, the join hand-over between a member and a new HSM, and activation status."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from strongroom.cloudhsm.domain import Hsm
from strongroom.cloudhsm.supervisor import NodeSupervisor
from strongroom.hsm.client import HsmClient, client_ssl_context

__all__ = ["NodeLink"]

_APP_USER = "app_user"


class NodeLink:
    """Appliance-user sessions on nodes, trusting them by self-signed cert or trust anchor."""

    def __init__(self, supervisor: NodeSupervisor, anchors_dir: Path) -> None:
        self._sup = supervisor
        self._anchors = anchors_dir

    def anchor_file(self, cluster_id: str, anchor_pem: str) -> Path:
        """The cluster's trust anchor as a file (clients load CA files)."""
        self._anchors.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._anchors / f"{cluster_id}-customerCA.crt"
        if not path.exists() or path.read_text() != anchor_pem:
            path.write_text(anchor_pem)
        return path

    @contextlib.contextmanager
    def session(self, hsm: Hsm, anchor: Path | None = None) -> Iterator[HsmClient]:
        """An HsmClient on one node, logged in as its appliance user."""
        ctx = (
            client_ssl_context(trust_anchor=anchor)
            if anchor is not None
            else client_ssl_context(node_cert=self._sup.node_cert(hsm.hsm_id))
        )
        client = HsmClient([hsm.address], ctx, timeout=15)
        try:
            client.login(_APP_USER, self._sup.appliance_pin(hsm.hsm_id), "appliance-user")
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()
            client.close()

    def info(self, hsm: Hsm, anchor: Path | None = None) -> dict[str, Any]:
        with self.session(hsm, anchor) as c:
            return c.hsm_info()

    def csr(self, hsm: Hsm) -> tuple[str, str]:
        """(cluster CSR, HSM certificate) of a fresh node."""
        with self.session(hsm) as c:
            csr = c.raw_call("cluster_csr")["csr"]
            cert = c.hsm_info()["certificate"]
        return str(csr), str(cert)

    def install(self, hsm: Hsm, certificate: str, anchor_pem: str) -> None:
        with self.session(hsm) as c:
            c.raw_call(
                "install_certificate", {"certificate": certificate, "trust_anchor": anchor_pem}
            )

    def join(self, member: Hsm, newcomer: Hsm, anchor: Path, anchor_pem: str) -> None:
        """Hand the cluster state from ``member`` to the fresh ``newcomer``."""
        with self.session(newcomer) as fresh:
            offer = fresh.raw_call("cluster_join_offer")["public"]
            with self.session(member, anchor) as old:
                envelope = old.raw_call("cluster_join_export", {"offer": offer})
            fresh.raw_call("cluster_join_import", {**envelope, "expected_trust_anchor": anchor_pem})

    def backup(self, member: Hsm, anchor: Path) -> dict[str, Any]:
        """A member's cluster state, sealed by the HSM for the installation's backup key."""
        with self.session(member, anchor) as c:
            return dict(c.raw_call("cluster_backup_export"))

    def restore(self, newcomer: Hsm, envelope: dict[str, Any], anchor_pem: str) -> None:
        """Install a backup on a fresh HSM (it checks the seal and the certificate chain)."""
        with self.session(newcomer) as fresh:
            fresh.raw_call(
                "cluster_backup_restore", {**envelope, "expected_trust_anchor": anchor_pem}
            )
