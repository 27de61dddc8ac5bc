"""``strongroom backup`` of a data directory with an active HSM cluster behind a custom key
store, and ``strongroom restore``: the HSMs come back from their copied sealed stores, the key
store connects as ``kmsuser`` again, and a ciphertext of a key that lives only in the HSMs
decrypts; a key made after the backup does not exist there."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.cloudhsm.conftest import (
    NODE_ARGS,
    connect_store,
    connected_store,
    store_state,
    wait_cluster,
    wait_for,
)
from tests.conftest import STRONGROOM, Server, free_port, running_server

ARGS = ("--scheduler-interval", "0.5")
ENV = {"STRONGROOM_HSM_NODE_ARGS": NODE_ARGS}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STRONGROOM, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_a_custom_key_store_comes_back_from_a_backup(tmp_path: Path) -> None:
    out = tmp_path / "backup"
    with running_server(tmp_path / "a", *ARGS, env=ENV) as first:
        hsm, kms = first.client("cloudhsmv2"), first.client()
        cid, hsm_ids, store = connected_store(first, hsm, tmp_path, "kept")
        key = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store)["KeyMetadata"]["Arn"]
        blob = kms.encrypt(KeyId=key, Plaintext=b"kept in the HSMs")["CiphertextBlob"]
        done = _cli("backup", "--data-dir", str(first.data_dir), str(out))
        assert done.returncode == 0, done.stderr
        for hsm_id in hsm_ids:  # each node's sealed store and audit log, verified as copied
            assert (out / "hsms" / hsm_id / "store" / "index.sealed").is_file()
            assert (out / "hsms" / hsm_id / "audit.log").stat().st_size > 0
        assert (out / "hsms" / "backup.key").is_file()
        after = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store)["KeyMetadata"]
    assert _cli("restore", "--data-dir", str(tmp_path / "b"), str(out)).returncode == 0
    second = Server(tmp_path / "b", free_port(), list(ARGS), ENV).start()
    try:
        hsm, kms = second.client("cloudhsmv2"), second.client()
        cluster = wait_cluster(hsm, cid, "ACTIVE", 2)
        assert sorted(h["HsmId"] for h in cluster["Hsms"]) == hsm_ids  # the same HSMs
        state = wait_for(
            lambda: store_state(kms, store)["ConnectionState"],
            lambda s: s in ("CONNECTED", "DISCONNECTED", "FAILED"),
        )
        if state != "CONNECTED":
            assert connect_store(kms, store)["ConnectionState"] == "CONNECTED"
        answer = kms.decrypt(CiphertextBlob=blob)
        assert answer["Plaintext"] == b"kept in the HSMs" and answer["KeyId"] == key
        with pytest.raises(ClientError):
            kms.describe_key(KeyId=after["KeyId"])
        kms.encrypt(KeyId=key, Plaintext=b"and on")
    finally:
        second.stop()
