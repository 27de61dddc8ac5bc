"""What the cluster issue needs from a node: CSR, installing the customer-signed certificate
(switching TLS to the cluster chain), trust-anchor verification, masked-object cloning hooks."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.crypto.x509 import CustomerCa
from strongroom.hsm.client import ErrorCode, HsmClient, HsmClientError, client_ssl_context

from .conftest import NodeProc, activate, run_cli


def _appliance(node: NodeProc, c: HsmClient) -> None:
    c.login("app_user", (node.data_dir / "appliance-user.pin").read_text(), "appliance-user")


def test_install_cluster_certificate(node_factory: Any, tmp_path: Any) -> None:
    node: NodeProc = node_factory()
    ca = CustomerCa()
    with node.client() as c:
        csr = c.cluster_csr()
        assert "BEGIN CERTIFICATE REQUEST" in csr
        _appliance(node, c)
        other = CustomerCa()
        with pytest.raises(HsmClientError) as bad:
            c.install_certificate(other.sign_csr(csr), ca.certificate_pem)
        assert bad.value.code is ErrorCode.CERTIFICATE_INVALID
        foreign_csr = "junk"
        with pytest.raises(HsmClientError):
            c.install_certificate(foreign_csr, ca.certificate_pem)
        c.install_certificate(ca.sign_csr(csr), ca.certificate_pem)
    anchor = tmp_path / "customerCA.crt"
    anchor.write_text(ca.certificate_pem)
    ctx = client_ssl_context(trust_anchor=anchor)
    with HsmClient([node.address], ctx) as c:
        info = c.hsm_info()
        assert info["cluster-initialized"] is True
    assert "BEGIN CERTIFICATE" in node.cert.read_text()
    node.restart()  # survives a restart
    res = run_cli(
        node, "cluster", "hsm-info", conn=["--node", node.address, "--trust-anchor", str(anchor)]
    )
    assert res.code == 0
    wrong = tmp_path / "wrong.crt"
    wrong.write_text(CustomerCa().certificate_pem)
    res = run_cli(
        node, "cluster", "hsm-info", conn=["--node", node.address, "--trust-anchor", str(wrong)]
    )
    assert res.code == 1


def test_clone_export_import(node_factory: Any) -> None:
    node: NodeProc = node_factory()
    activate(node, {"alice": "alice-pass"})
    with node.client() as c:
        c.login("alice", "alice-pass")
        key = c.generate_aes_key("cloned")
        ct = c.encrypt(key.ref, b"data")
        blob = c.clone_export([key.ref])
        assert b"cloned" not in blob
        c.logout()
        _appliance(node, c)
        everything = c.clone_export(users=True)
        c.logout()
    other: NodeProc = node_factory()
    with other.client() as c:
        _appliance(other, c)
        with pytest.raises(HsmClientError) as foreign:
            c.clone_import(everything)  # another cluster's masking key
        assert foreign.value.code is ErrorCode.CRYPTO_FAILED
    with node.client() as c:
        c.login("alice", "alice-pass")
        c.set_attribute(key.ref, "destroyable", True)
        c.delete_key(key.ref)
        assert c.clone_import(blob) == {"keys": 1, "users": 0}
        assert c.decrypt(key.ref, ct) == b"data"
