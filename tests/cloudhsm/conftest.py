"""Fixtures: a real ``strongroom serve`` whose HSMs are real node processes (fast Argon2)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.crypto.x509 import CustomerCa
from tests.conftest import STRONGROOM, Server, running_server

NODE_ARGS = "--argon2-time-cost 1 --argon2-memory-kib 8192"
ADMIN_PW = "admin-pass-1"


@pytest.fixture(scope="module")
def hsm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("cloudhsm")
    env = {"STRONGROOM_HSM_NODE_ARGS": NODE_ARGS}
    offset = str(base / "clock-offset")
    args = ("--scheduler-interval", "0.5", "--clock-offset-file", offset)
    with running_server(base / "data", *args, env=env) as srv:
        yield srv


def set_clock_offset(server: Server, seconds: float) -> None:
    """Move the server's domain clock (deletion windows, backup retention)."""
    (server.data_dir.parent / "clock-offset").write_text(str(seconds))


def store_state(kms: Any, store_id: str) -> dict[str, Any]:
    (entry,) = kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"]
    return dict(entry)


def connect_store(kms: Any, store_id: str) -> dict[str, Any]:
    """ConnectCustomKeyStore answers at once (CONNECTING); wait for CONNECTED or FAILED."""
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    return dict(
        wait_for(
            lambda: store_state(kms, store_id),
            lambda e: e["ConnectionState"] in ("CONNECTED", "FAILED"),
        )
    )


@pytest.fixture(scope="module")
def hsm(hsm_server: Server) -> Any:
    return hsm_server.client("cloudhsmv2")


def wait_for(probe: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    value = probe()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last value {value!r}")
        time.sleep(0.1)
        value = probe()
    return value


def describe(hsm: Any, cluster_id: str) -> dict[str, Any]:
    clusters = hsm.describe_clusters(Filters={"clusterIds": [cluster_id]})["Clusters"]
    return dict(clusters[0])


def wait_cluster(hsm: Any, cluster_id: str, state: str, hsms_active: int = 0) -> dict[str, Any]:
    def ok(c: dict[str, Any]) -> bool:
        active = [h for h in c["Hsms"] if h["State"] == "ACTIVE"]
        return bool(c["State"] == state and len(active) >= hsms_active)

    return dict(wait_for(lambda: describe(hsm, cluster_id), ok))


def new_cluster(hsm: Any, zones: tuple[str, ...] = ("a", "b")) -> str:
    cluster = hsm.create_cluster(
        HsmType="hsm2m.medium", SubnetIds=["subnet-0000000a", "subnet-0000000b", "subnet-0000000c"]
    )["Cluster"]
    cid = str(cluster["ClusterId"])
    wait_cluster(hsm, cid, "UNINITIALIZED")
    for zone in zones:
        hsm.create_hsm(ClusterId=cid, AvailabilityZone=f"us-east-1{zone}")
    return cid


def initialize(hsm: Any, cid: str, hsms: int, tmp: Path) -> CustomerCa:
    """Sign the CSR with a new CA and initialize (as a user would)."""
    cluster = wait_cluster(hsm, cid, "UNINITIALIZED", hsms)
    csr = wait_for(lambda: describe(hsm, cid)["Certificates"].get("ClusterCsr"), bool)
    assert cluster["Certificates"]["HsmCertificate"]
    ca = CustomerCa()
    signed = ca.sign_csr(csr)
    hsm.initialize_cluster(ClusterId=cid, SignedCert=signed, TrustAnchor=ca.certificate_pem)
    wait_cluster(hsm, cid, "INITIALIZED", hsms)
    (tmp / "customerCA.crt").write_text(ca.certificate_pem)
    return ca


def connected_store(server: Server, hsm: Any, tmp: Path, name: str) -> tuple[str, list[str], str]:
    """A new cluster of two HSMs in zones a and b, initialized with a new CA (its certificate in
    ``tmp/customerCA.crt``), activated with the crypto user ``kmsuser``, and a custom key store
    on it, connected: (cluster id, its HSMs' ids, the store's id)."""
    kms = server.client("kms")
    cid = new_cluster(hsm, ("a", "b"))
    ca = initialize(hsm, cid, 2, tmp)
    activate(server, cid, tmp / "customerCA.crt", {"kmsuser": "kmsuser-pass-1"})
    hsm_ids = sorted(h["HsmId"] for h in wait_cluster(hsm, cid, "ACTIVE", 2)["Hsms"])
    store = kms.create_custom_key_store(
        CustomKeyStoreName=name,
        CloudHsmClusterId=cid,
        TrustAnchorCertificate=ca.certificate_pem,
        KeyStorePassword="kmsuser-pass-1",
    )["CustomKeyStoreId"]
    assert connect_store(kms, store)["ConnectionState"] == "CONNECTED"
    return cid, hsm_ids, str(store)


def hsm_cli(
    server: Server, cid: str, anchor: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, list[dict[str, Any]], str]:
    full = server.cli_env()
    full.update({"AWS_ENDPOINT_URL": server.endpoint, "AWS_DEFAULT_REGION": "us-east-1"})
    full = {k: v for k, v in full.items() if not k.startswith("CLOUDHSM_")}
    full.update(env or {})
    proc = subprocess.run(
        [STRONGROOM, "hsm-cli", "--cluster-id", cid, "--trust-anchor", str(anchor), *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
        check=False,
    )
    outputs = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    return proc.returncode, outputs, proc.stderr


def activate(server: Server, cid: str, anchor: Path, users: dict[str, str]) -> None:
    code, out, err = hsm_cli(server, cid, anchor, "cluster", "activate", "--password", ADMIN_PW)
    assert code == 0, (out, err)
    admin = {"CLOUDHSM_ROLE": "admin", "CLOUDHSM_PIN": f"admin:{ADMIN_PW}"}
    for name, pw in users.items():
        code, out, err = hsm_cli(
            server,
            cid,
            anchor,
            "user",
            "create",
            "--username",
            name,
            "--role",
            "crypto-user",
            "--password",
            pw,
            env=admin,
        )
        assert code == 0, (out, err)


def on_node(
    server: Server, ip: str, anchor: Path, env: dict[str, str], *args: str
) -> tuple[int, list[dict[str, Any]], str]:
    """``hsm-cli`` against one HSM node alone (``--node``), as ``hsm_cli`` against a cluster."""
    full = {k: v for k, v in server.cli_env().items() if not k.startswith("CLOUDHSM_")}
    full.update(env)
    proc = subprocess.run(
        [STRONGROOM, "hsm-cli", "--node", f"{ip}:2223", "--trust-anchor", str(anchor), *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
        check=False,
    )
    return (
        proc.returncode,
        [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")],
        proc.stderr,
    )


__all__ = [
    "ADMIN_PW",
    "activate",
    "connect_store",
    "describe",
    "hsm_cli",
    "initialize",
    "new_cluster",
    "on_node",
    "os",
    "set_clock_offset",
    "store_state",
    "wait_cluster",
    "wait_for",
]
