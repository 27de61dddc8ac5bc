"""Shared by cloudhsm_bench.py and cloudhsm_fault.py: a CloudHSM cluster with two HSMs in two
AZs, initialized and activated as a user would do it (boto3 cloudhsmv2, a customer CA from
``strongroom.crypto.x509``, ``strongroom hsm-cli``), a ``kmsuser``, a connected custom key
store and a KMS key in it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from strongroom.crypto.x509 import CustomerCa

__all__ = ["StoreSetup", "client", "setup_store", "wait_for"]

REGION = "us-east-1"
ADMIN_PW = "bench-admin-1"
KMSUSER_PW = "bench-kmsuser-1"


def client(service: str, endpoint: str, ak: str, sk: str, retries: int = 1) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ak,
        aws_secret_access_key=sk,
        config=BotoConfig(retries={"max_attempts": retries, "mode": "standard"}),
    )


def wait_for(probe: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    value = probe()
    while not ok(value):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out; last value {value!r}")
        time.sleep(0.2)
        value = probe()
    return value


class StoreSetup:
    """What setup_store made."""

    def __init__(self, cluster_id: str, store_id: str, key_id: str) -> None:
        self.cluster_id, self.store_id, self.key_id = cluster_id, store_id, key_id


def _cluster(hsm: Any, cid: str) -> dict[str, Any]:
    return dict(hsm.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"][0])


def _hsm_cli(bin_dir: Path, endpoint: str, ak: str, sk: str, cid: str, anchor: Path,
             args: list[str], role: str = "") -> None:  # fmt: skip
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": REGION,
           "AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk}  # fmt: skip
    if role:
        env.update({"CLOUDHSM_ROLE": "admin", "CLOUDHSM_PIN": f"admin:{ADMIN_PW}"})
    argv = [str(bin_dir / "strongroom"), "hsm-cli", "--cluster-id", cid, "--trust-anchor",
            str(anchor), *args]  # fmt: skip
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=120)


def setup_store(bin_dir: Path, endpoint: str, ak: str, sk: str, workdir: Path) -> StoreSetup:
    """Cluster, two HSMs, initialize, activate, kmsuser, key store, key."""
    hsm = client("cloudhsmv2", endpoint, ak, sk)
    kms = client("kms", endpoint, ak, sk)
    cid = hsm.create_cluster(
        HsmType="hsm2m.medium", SubnetIds=["subnet-0000000a", "subnet-0000000b"]
    )["Cluster"]["ClusterId"]
    wait_for(lambda: _cluster(hsm, cid)["State"], lambda s: s == "UNINITIALIZED")
    for zone in ("a", "b"):
        hsm.create_hsm(ClusterId=cid, AvailabilityZone=f"{REGION}{zone}")
    csr = wait_for(lambda: _cluster(hsm, cid)["Certificates"].get("ClusterCsr"), bool)
    wait_for(lambda: [h for h in _cluster(hsm, cid)["Hsms"] if h["State"] == "ACTIVE"],
             lambda x: len(x) == 2)  # fmt: skip
    ca = CustomerCa()
    hsm.initialize_cluster(
        ClusterId=cid, SignedCert=ca.sign_csr(csr), TrustAnchor=ca.certificate_pem
    )
    wait_for(lambda: _cluster(hsm, cid)["State"], lambda s: s == "INITIALIZED")
    anchor = workdir / f"{cid}-customerCA.crt"
    anchor.write_text(ca.certificate_pem)
    _hsm_cli(bin_dir, endpoint, ak, sk, cid, anchor,
             ["cluster", "activate", "--password", ADMIN_PW])  # fmt: skip
    _hsm_cli(bin_dir, endpoint, ak, sk, cid, anchor,
             ["user", "create", "--username", "kmsuser", "--role", "crypto-user",
              "--password", KMSUSER_PW], role="admin")  # fmt: skip
    wait_for(lambda: _cluster(hsm, cid)["State"], lambda s: s == "ACTIVE")
    store = kms.create_custom_key_store(
        CustomKeyStoreName=f"bench-{cid}",
        CloudHsmClusterId=cid,
        TrustAnchorCertificate=ca.certificate_pem,
        KeyStorePassword=KMSUSER_PW,
    )["CustomKeyStoreId"]
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    state = wait_for(
        lambda: kms.describe_custom_key_stores(CustomKeyStoreId=store)["CustomKeyStores"][0],
        lambda e: e["ConnectionState"] in ("CONNECTED", "FAILED"),
    )
    if state["ConnectionState"] != "CONNECTED":
        raise RuntimeError(f"the key store did not connect: {state}")
    key = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store)["KeyMetadata"]["KeyId"]
    return StoreSetup(cid, store, str(key))
