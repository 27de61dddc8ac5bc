"""The custom key store through boto3: a KMS key whose material lives in the CloudHSM cluster."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cloudhsm.conftest import (
    ADMIN_PW,
    activate,
    connect_store,
    hsm_cli,
    initialize,
    new_cluster,
    wait_cluster,
)
from tests.conftest import Server


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_custom_key_store_end_to_end(hsm: Any, hsm_server: Server, tmp_path: Path) -> None:
    kms = hsm_server.client("kms")
    cid = new_cluster(hsm, ("a", "b"))
    ca = initialize(hsm, cid, 2, tmp_path)
    anchor = tmp_path / "customerCA.crt"
    activate(hsm_server, cid, anchor, {"kmsuser": "kmsuser-pass-1"})
    wait_cluster(hsm, cid, "ACTIVE", 2)
    with pytest.raises(ClientError) as exc:
        kms.create_custom_key_store(
            CustomKeyStoreName="wrong-anchor",
            CloudHsmClusterId=cid,
            TrustAnchorCertificate=hsm_server.data_dir.joinpath("credentials").read_text()[:50],
            KeyStorePassword="kmsuser-pass-1",
        )
    assert code(exc) == "IncorrectTrustAnchorException"
    with pytest.raises(ClientError) as exc:
        kms.create_custom_key_store(
            CustomKeyStoreName="x",
            CloudHsmClusterId="cluster-aaaaaaaaaaa",
            TrustAnchorCertificate=ca.certificate_pem,
            KeyStorePassword="kmsuser-pass-1",
        )
    assert code(exc) == "CloudHsmClusterNotFoundException"
    store = kms.create_custom_key_store(
        CustomKeyStoreName="store-1",
        CloudHsmClusterId=cid,
        TrustAnchorCertificate=ca.certificate_pem,
        KeyStorePassword="kmsuser-pass-1",
    )["CustomKeyStoreId"]
    with pytest.raises(ClientError) as exc:
        kms.create_custom_key_store(
            CustomKeyStoreName="store-2",
            CloudHsmClusterId=cid,
            TrustAnchorCertificate=ca.certificate_pem,
            KeyStorePassword="kmsuser-pass-1",
        )
    assert code(exc) == "CloudHsmClusterInUseException"
    (entry,) = kms.describe_custom_key_stores(CustomKeyStoreId=store)["CustomKeyStores"]
    assert entry["ConnectionState"] == "DISCONNECTED" and entry["CloudHsmClusterId"] == cid
    with pytest.raises(ClientError) as exc:
        kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store)
    assert code(exc) == "CustomKeyStoreInvalidStateException"
    assert connect_store(kms, store)["ConnectionState"] == "CONNECTED"
    (entry,) = kms.describe_custom_key_stores(CustomKeyStoreName="store-1")["CustomKeyStores"]
    assert entry["ConnectionState"] == "CONNECTED", entry
    # the password was rotated: kmsuser's old password no longer works in the CLI
    old = {"CLOUDHSM_ROLE": "crypto-user", "CLOUDHSM_PIN": "kmsuser:kmsuser-pass-1"}
    rc, _, _ = hsm_cli(hsm_server, cid, anchor, "key", "list", env=old)
    assert rc != 0
    meta = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store)["KeyMetadata"]
    assert meta["Origin"] == "AWS_CLOUDHSM" and meta["CustomKeyStoreId"] == store
    key = meta["Arn"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"secret", EncryptionContext={"a": "b"})
    out = kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext={"a": "b"})
    assert out["Plaintext"] == b"secret" and out["KeyId"] == key
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext={"a": "c"})
    assert code(exc) == "InvalidCiphertextException"
    data_key = kms.generate_data_key(KeyId=key, KeySpec="AES_256")
    assert (
        kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]
    )
    default = kms.create_key()["KeyMetadata"]["KeyId"]
    moved = kms.re_encrypt(CiphertextBlob=data_key["CiphertextBlob"], DestinationKeyId=default)
    assert kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]
    assert len(kms.generate_random(NumberOfBytes=16, CustomKeyStoreId=store)["Plaintext"]) == 16
    with pytest.raises(ClientError) as exc:
        kms.create_key(
            Origin="AWS_CLOUDHSM",
            CustomKeyStoreId=store,
            KeySpec="RSA_2048",
            KeyUsage="ENCRYPT_DECRYPT",
        )
    assert code(exc) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as exc:
        kms.delete_custom_key_store(CustomKeyStoreId=store)
    assert code(exc) == "CustomKeyStoreInvalidStateException"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=key, Plaintext=b"x")
    assert code(exc) == "KMSInvalidStateException"
    with pytest.raises(ClientError) as exc:
        kms.delete_custom_key_store(CustomKeyStoreId=store)
    assert code(exc) == "CustomKeyStoreHasCMKsException"
    assert connect_store(kms, store)["ConnectionState"] == "CONNECTED"
    assert (
        kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext={"a": "b"})[
            "Plaintext"
        ]
        == b"secret"
    )


def test_no_hsm_password_is_on_disk_or_in_a_log(hsm_server: Server) -> None:
    """After the custom key store's life above (and the module's clusters): the passwords
    given to the HSMs and to KMS (the admin's, kmsuser's) are nowhere in the data directory
    (databases, WAL, the HSM nodes' stores, logs and audit logs) or serve's log, as text,
    base64 or hex (reliability figure S9)."""
    passwords = [ADMIN_PW, "kmsuser-pass-1"]
    forms = [
        form
        for password in passwords
        for form in (
            password.encode(),
            base64.b64encode(password.encode()),
            password.encode().hex().encode(),
        )
    ]
    files = [p for p in hsm_server.data_dir.rglob("*") if p.is_file()]
    assert len(files) > 10  # the HSM nodes' files are there
    if hsm_server.log_path is not None:
        files.append(hsm_server.log_path)
    found = []
    for path in files:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # a journal segment recycled meanwhile
            continue
        found += [
            (str(path.relative_to(hsm_server.data_dir.parent)), f) for f in forms if f in data
        ]
    assert found == []
