"""Cluster backups through boto3: taken by the service, described, deleted and restored,
copied, retained; a new cluster from a backup decrypts a custom-key-store key's ciphertexts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cloudhsm.conftest import (
    activate,
    connect_store,
    describe,
    initialize,
    new_cluster,
    set_clock_offset,
    wait_cluster,
    wait_for,
)
from tests.conftest import Server

DAY = 86400


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def backups(hsm: Any, cid: str, **extra: Any) -> list[dict[str, Any]]:
    return list(hsm.describe_backups(Filters={"clusterIds": [cid]}, **extra)["Backups"])


def test_backup_and_restore_into_a_new_cluster(
    hsm: Any, hsm_server: Server, tmp_path: Path
) -> None:
    kms = hsm_server.client("kms")
    cid = new_cluster(hsm, ("a", "b"))
    ca = initialize(hsm, cid, 2, tmp_path)
    anchor = tmp_path / "customerCA.crt"
    activate(hsm_server, cid, anchor, {"kmsuser": "kmsuser-pass-1"})
    wait_cluster(hsm, cid, "ACTIVE", 2)
    first = wait_for(lambda: backups(hsm, cid), lambda x: len(x) >= 1)[0]  # at activation
    assert first["BackupState"] == "READY" and first["ClusterId"] == cid
    store = kms.create_custom_key_store(
        CustomKeyStoreName="backed-up",
        CloudHsmClusterId=cid,
        TrustAnchorCertificate=ca.certificate_pem,
        KeyStorePassword="kmsuser-pass-1",
    )["CustomKeyStoreId"]
    assert connect_store(kms, store)["ConnectionState"] == "CONNECTED"
    key = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store)["KeyMetadata"]["Arn"]
    samples = {
        f"sample-{i}".encode(): kms.encrypt(KeyId=key, Plaintext=f"sample-{i}".encode())[
            "CiphertextBlob"
        ]
        for i in range(5)
    }
    count = len(backups(hsm, cid))
    hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1c")  # adding an HSM: a backup
    newest = wait_for(lambda: backups(hsm, cid), lambda x: len(x) > count)[0]
    # pagination and order
    page = hsm.describe_backups(Filters={"clusterIds": [cid]}, MaxResults=1, SortAscending=True)
    assert page["Backups"][0]["BackupId"] == first["BackupId"] and page["NextToken"]
    rest = hsm.describe_backups(
        Filters={"clusterIds": [cid]}, MaxResults=50, SortAscending=True,
        NextToken=page["NextToken"],
    )["Backups"]  # fmt: skip
    assert rest[-1]["BackupId"] == newest["BackupId"]
    # a new cluster from the newest backup: ACTIVE, its first HSM restored from the backup
    restored = hsm.create_cluster(
        HsmType="hsm2m.medium",
        SubnetIds=["subnet-0000000a", "subnet-0000000b"],
        SourceBackupId=newest["BackupId"],
    )["Cluster"]["ClusterId"]
    wait_cluster(hsm, restored, "ACTIVE")
    for zone in ("a", "b"):
        hsm.create_hsm(ClusterId=restored, AvailabilityZone=f"us-east-1{zone}")
    cluster = wait_cluster(hsm, restored, "ACTIVE", 2)
    assert cluster["SourceBackupId"] == newest["BackupId"]
    # the key store moves to the clone (same backup lineage) and decrypts the old ciphertexts
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    kms.update_custom_key_store(CustomKeyStoreId=store, CloudHsmClusterId=restored)
    assert connect_store(kms, store)["ConnectionState"] == "CONNECTED"
    for plaintext, blob in samples.items():
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
    # the source cluster keeps working after the move back
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)


def test_backup_lifecycle_copy_and_retention(hsm: Any, hsm_server: Server, tmp_path: Path) -> None:
    cid = new_cluster(hsm, ("a",))
    initialize(hsm, cid, 1, tmp_path)
    activate(hsm_server, cid, tmp_path / "customerCA.crt", {})
    wait_cluster(hsm, cid, "ACTIVE", 1)
    (backup,) = wait_for(lambda: backups(hsm, cid), lambda x: len(x) == 1)
    bid = backup["BackupId"]
    with pytest.raises(ClientError) as exc:
        hsm.restore_backup(BackupId=bid)
    assert code(exc) == "CloudHsmInvalidRequestException"
    gone = hsm.delete_backup(BackupId=bid)["Backup"]
    assert gone["BackupState"] == "PENDING_DELETION"
    assert gone["DeleteTimestamp"].timestamp() == pytest.approx(
        gone["CreateTimestamp"].timestamp() + 7 * DAY, abs=60
    )
    # deleting the only backup does not make the daily one due: it counts from the newest
    # backup taken (the control loop passes every 0.2 s while the cluster exists)
    time.sleep(1.0)
    assert [(b["BackupId"], b["BackupState"]) for b in backups(hsm, cid)] == [
        (bid, "PENDING_DELETION")
    ]
    assert hsm.restore_backup(BackupId=bid)["Backup"]["BackupState"] == "READY"
    kept = hsm.modify_backup_attributes(BackupId=bid, NeverExpires=True)["Backup"]
    assert kept["NeverExpires"] is True
    assert [b["BackupId"] for b in backups(hsm, cid)] == [bid]
    assert hsm.describe_backups(Filters={"neverExpires": ["true"], "clusterIds": [cid]})["Backups"]
    for name, args in (
        ("delete_backup", {"BackupId": "backup-aaaaaaaaaaa"}),
        ("modify_backup_attributes", {"BackupId": "backup-aaaaaaaaaaa", "NeverExpires": True}),
        ("describe_backups", {"Filters": {"color": ["red"]}}),
    ):
        with pytest.raises(ClientError) as exc:
            getattr(hsm, name)(**args)
        assert code(exc) in ("CloudHsmResourceNotFoundException", "CloudHsmInvalidRequestException")
    hsm.tag_resource(ResourceId=bid, TagList=[{"Key": "k", "Value": "v"}])
    assert hsm.list_tags(ResourceId=bid)["TagList"] == [{"Key": "k", "Value": "v"}]
    copied = hsm.copy_backup_to_region(DestinationRegion="us-west-2", BackupId=bid)
    assert copied["DestinationBackup"]["SourceBackup"] == bid
    west = hsm_server.client("cloudhsmv2", region="us-west-2")
    (copy,) = wait_for(lambda: west.describe_backups()["Backups"],
                       lambda x: len(x) == 1 and x[0]["BackupState"] == "READY")  # fmt: skip
    assert copy["SourceRegion"] == "us-east-1" and "ClusterId" not in copy
    assert copy["TagList"] == [{"Key": "k", "Value": "v"}]
    # retention: 7 days; ten days later a daily backup is taken and older ones are purged,
    # except the NeverExpires one and the newest
    hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1b")
    wait_for(lambda: backups(hsm, cid), lambda x: len(x) >= 2)
    hsm.modify_cluster(ClusterId=cid, BackupRetentionPolicy={"Type": "DAYS", "Value": "7"})
    set_clock_offset(hsm_server, 10 * DAY)
    try:
        states = wait_for(
            lambda: {b["BackupId"]: b["BackupState"] for b in backups(hsm, cid)},
            lambda s: len(s) >= 3 and "PENDING_DELETION" in s.values(),
        )
        listed = backups(hsm, cid)  # newest first
        assert listed[0]["BackupState"] == "READY" and states[bid] == "READY"
        assert all(
            b["BackupState"] == "PENDING_DELETION" for b in listed[1:] if b["BackupId"] != bid
        )
        purged = {b["BackupId"] for b in listed if b["BackupState"] == "PENDING_DELETION"}
        set_clock_offset(hsm_server, 18 * DAY)  # past the 7-day restore window: DELETED
        wait_for(lambda: {b["BackupId"] for b in backups(hsm, cid)}, lambda x: not x & purged)
        deleted = hsm.describe_backups(Filters={"clusterIds": [cid], "states": ["DELETED"]})
        assert purged <= {b["BackupId"] for b in deleted["Backups"]}
    finally:
        set_clock_offset(hsm_server, 0)
    assert describe(hsm, cid)["BackupRetentionPolicy"] == {"Type": "DAYS", "Value": "7"}
