"""Custom key store connection errors, Unavailable keys, refused operations, cluster-key
deletion, and a CONNECTED store across a serve restart with several workers."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cloudhsm.conftest import (
    ADMIN_PW,
    activate,
    connect_store,
    connected_store,
    describe,
    hsm_cli,
    initialize,
    new_cluster,
    set_clock_offset,
    wait_cluster,
    wait_for,
)
from tests.conftest import Server

ADMIN = {"CLOUDHSM_ROLE": "admin", "CLOUDHSM_PIN": f"admin:{ADMIN_PW}"}


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def failed_with(kms: Any, store: str) -> str:
    entry = connect_store(kms, store)
    assert entry["ConnectionState"] == "FAILED", entry
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    return str(entry["ConnectionErrorCode"])


def admin_cli(srv: Server, cid: str, anchor: Path, *args: str) -> None:
    rc, out, err = hsm_cli(srv, cid, anchor, *args, env=ADMIN)
    assert rc == 0, (out, err)


def test_connection_error_codes(hsm: Any, hsm_server: Server, tmp_path: Path) -> None:
    kms = hsm_server.client("kms")
    cid = new_cluster(hsm, ("a", "b"))
    ca = initialize(hsm, cid, 2, tmp_path)
    anchor = tmp_path / "customerCA.crt"
    activate(hsm_server, cid, anchor, {})
    wait_cluster(hsm, cid, "ACTIVE", 2)
    store = kms.create_custom_key_store(
        CustomKeyStoreName="errors",
        CloudHsmClusterId=cid,
        TrustAnchorCertificate=ca.certificate_pem,
        KeyStorePassword="kmsuser-pass-1",
    )["CustomKeyStoreId"]
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    (entry,) = kms.describe_custom_key_stores(CustomKeyStoreId=store)["CustomKeyStores"]
    assert entry["ConnectionState"] in ("CONNECTING", "FAILED")
    entry = wait_for(
        lambda: kms.describe_custom_key_stores(CustomKeyStoreId=store)["CustomKeyStores"][0],
        lambda e: e["ConnectionState"] == "FAILED",
    )
    assert entry["ConnectionErrorCode"] == "USER_NOT_FOUND"
    with pytest.raises(ClientError) as exc:  # FAILED: disconnect first, as AWS requires
        kms.connect_custom_key_store(CustomKeyStoreId=store)
    assert code(exc) == "CustomKeyStoreInvalidStateException"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    admin_cli(hsm_server, cid, anchor, "user", "create", "--username", "kmsuser",
              "--role", "crypto-user", "--password", "kmsuser-pass-1")  # fmt: skip
    kms.update_custom_key_store(CustomKeyStoreId=store, KeyStorePassword="wrong-pass-1")
    # five failed logins lock kmsuser, as on CloudHSM
    assert [failed_with(kms, store) for _ in range(5)] == ["INVALID_CREDENTIALS"] * 5
    assert failed_with(kms, store) == "USER_LOCKED_OUT"
    admin_cli(hsm_server, cid, anchor, "user", "change-password", "--username", "kmsuser",
              "--role", "crypto-user", "--password", "kmsuser-pass-2")  # fmt: skip
    kms.update_custom_key_store(CustomKeyStoreId=store, KeyStorePassword="kmsuser-pass-2")
    # kmsuser logged in elsewhere (a client holding a session): KMS cannot rotate its password
    from strongroom.hsm.client import HsmClient, client_ssl_context

    addresses = [f"{h['EniIp']}:2223" for h in describe(hsm, cid)["Hsms"]]
    other = HsmClient(addresses, client_ssl_context(trust_anchor=anchor), timeout=10)
    other.login("kmsuser", "kmsuser-pass-2", "crypto-user")
    try:
        assert failed_with(kms, store) == "USER_LOGGED_IN"
    finally:
        other.logout()
        other.close()
    # unreachable HSMs (processes stopped): NETWORK_ERRORS
    pids = [int((hsm_server.data_dir / "hsms" / h["HsmId"] / "node.pid").read_text())
            for h in describe(hsm, cid)["Hsms"]]  # fmt: skip
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        assert failed_with(kms, store) == "NETWORK_ERRORS"
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert connect_store(kms, store)["ConnectionState"] == "CONNECTED"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    for h in describe(hsm, cid)["Hsms"]:
        hsm.delete_hsm(ClusterId=cid, HsmId=h["HsmId"])
    wait_for(lambda: describe(hsm, cid)["Hsms"], lambda x: not x)
    assert failed_with(kms, store) == "INSUFFICIENT_CLOUDHSM_HSMS"
    hsm.delete_cluster(ClusterId=cid)
    wait_for(lambda: hsm.describe_clusters(Filters={"states": ["DELETED"]})["Clusters"],
             lambda cs: any(c["ClusterId"] == cid for c in cs))  # fmt: skip
    assert failed_with(kms, store) == "CLUSTER_NOT_FOUND"
    kms.delete_custom_key_store(CustomKeyStoreId=store)


def test_unavailable_keys_refusals_deletion_and_workers(
    hsm: Any, hsm_server: Server, tmp_path: Path
) -> None:
    kms = hsm_server.client("kms")
    cid, _, store = connected_store(hsm_server, hsm, tmp_path, "states")
    anchor = tmp_path / "customerCA.crt"
    key = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store)["KeyMetadata"]["Arn"]
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["CloudHsmClusterId"] == cid and meta["KeyState"] == "Enabled"
    blob = kms.encrypt(KeyId=key, Plaintext=b"kept")["CiphertextBlob"]
    wrapping = {"WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}
    for name, extra in (
        ("enable_key_rotation", {}),
        ("rotate_key_on_demand", {}),
        ("get_parameters_for_import", wrapping),
    ):
        with pytest.raises(ClientError) as exc:
            getattr(kms, name)(KeyId=key, **extra)
        assert code(exc) == "UnsupportedOperationException"
    # disconnected: Unavailable; DisableKey succeeds and shows once the store is back
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "Unavailable" and meta["Enabled"] is False
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=key, Plaintext=b"x")
    assert code(exc) == "KMSInvalidStateException"
    kms.disable_key(KeyId=key)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Unavailable"
    assert connect_store(kms, store)["ConnectionState"] == "CONNECTED"
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"
    kms.enable_key(KeyId=key)
    # a serve restart with two workers: each logs in with the stored (rotated) password
    hsm_server.stop()
    hsm_server.extra_args += ["--workers", "2"]
    hsm_server.start()
    wait_cluster(hsm, cid, "ACTIVE", 2)
    for _ in range(6):  # fresh clients: new connections spread over the workers
        fresh = hsm_server.client("kms")
        assert fresh.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"
    # deletion: after the waiting period the cluster key goes too
    kms = hsm_server.client("kms")
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    set_clock_offset(hsm_server, 8 * 86400)
    try:
        wait_for(lambda: _exists(kms, key), lambda found: not found)
    finally:
        set_clock_offset(hsm_server, 0)
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    deadline = time.monotonic() + 10  # every worker logs kmsuser out within a sweep
    while True:
        rc, out, err = hsm_cli(hsm_server, cid, anchor, "user", "change-password",
                               "--username", "kmsuser", "--role", "crypto-user",
                               "--password", "kmsuser-pass-3", env=ADMIN)  # fmt: skip
        if rc == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert rc == 0, (out, err)
    as_kmsuser = {"CLOUDHSM_ROLE": "crypto-user", "CLOUDHSM_PIN": "kmsuser:kmsuser-pass-3"}
    rc, out, err = hsm_cli(hsm_server, cid, anchor, "key", "list", "--filter",
                           f"attr.label={key}", env=as_kmsuser)  # fmt: skip
    assert rc == 0, (out, err)
    assert out[0]["data"]["total_key_count"] == 0


def _exists(kms: Any, key: str) -> bool:
    try:
        kms.describe_key(KeyId=key)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NotFoundException"
        return False
    return True
