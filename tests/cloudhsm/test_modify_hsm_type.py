"""ModifyCluster(HsmType): hsm1.medium → hsm2m.medium and back, keys and users surviving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cloudhsm.conftest import (
    activate,
    connect_store,
    describe,
    hsm_cli,
    initialize,
    on_node,
    set_clock_offset,
    wait_cluster,
    wait_for,
)
from tests.conftest import Server
from tests.monitoring.conftest import scrape

ALICE = {"CLOUDHSM_ROLE": "crypto-user", "CLOUDHSM_PIN": "alice:alice-pass"}
DAY = 86400.0


def refused(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return str(exc.value.response["Error"]["Code"])


def users_max(cluster: dict[str, Any]) -> set[float]:
    """HsmUsersMax of each HSM's node: the user limit of the type it was started as."""
    return {
        scrape(f"http://{h['EniIp']}:2224/metrics")["HsmUsersMax"][0][1] for h in cluster["Hsms"]
    }


def alice_on(server: Server, ip: str, anchor: Path, *args: str) -> list[dict[str, Any]]:
    """hsm-cli against one node alone, as alice."""
    rc, out, err = on_node(server, ip, anchor, ALICE, *args)
    assert rc == 0, (out, err)
    return out


def migrated(hsm: Any, cid: str, state: str, hsm_type: str, before: set[str]) -> dict[str, Any]:
    """Wait for the change to finish: every HSM new, of the new type, ACTIVE."""

    def done(c: dict[str, Any]) -> bool:
        hsms = c["Hsms"]
        return (
            c["State"] == "ACTIVE"
            and len(hsms) == len(before)
            and all(h["State"] == "ACTIVE" and h["HsmType"] == hsm_type for h in hsms)
            and not {h["HsmId"] for h in hsms} & before
        )

    seen = describe(hsm, cid)
    assert seen["State"] in (state, "ACTIVE") and seen["HsmType"] == hsm_type
    return dict(wait_for(lambda: describe(hsm, cid), done))


def test_hsm_type_change_and_rollback(hsm: Any, hsm_server: Server, tmp_path: Path) -> None:
    kms = hsm_server.client("kms")
    cid = hsm.create_cluster(
        HsmType="hsm1.medium", SubnetIds=["subnet-0000000a", "subnet-0000000b"]
    )["Cluster"]["ClusterId"]
    wait_cluster(hsm, cid, "UNINITIALIZED")
    # only an ACTIVE cluster changes type
    assert refused(hsm.modify_cluster, ClusterId=cid, HsmType="hsm2m.medium") == (
        "CloudHsmInvalidRequestException"
    )
    for zone in ("a", "b"):
        hsm.create_hsm(ClusterId=cid, AvailabilityZone=f"us-east-1{zone}")
    ca = initialize(hsm, cid, 2, tmp_path)
    anchor = tmp_path / "customerCA.crt"
    activate(hsm_server, cid, anchor, {"alice": "alice-pass", "kmsuser": "kmsuser-pass-1"})
    cluster = wait_cluster(hsm, cid, "ACTIVE", 2)
    assert "HsmTypeRollbackExpiration" not in cluster
    assert users_max(cluster) == {250.0}  # the nodes run as hsm1.medium HSMs
    rc, made, err = hsm_cli(hsm_server, cid, anchor, "key", "generate-symmetric", "aes",
                            "--label", "k1", "--key-length-bytes", "32", env=ALICE)  # fmt: skip
    assert rc == 0, (made, err)
    store = kms.create_custom_key_store(
        CustomKeyStoreName="migrating",
        CloudHsmClusterId=cid,
        TrustAnchorCertificate=ca.certificate_pem,
        KeyStorePassword="kmsuser-pass-1",
    )["CustomKeyStoreId"]
    assert connect_store(kms, store)["ConnectionState"] == "CONNECTED"
    key = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store)["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"before")["CiphertextBlob"]
    # hsm1 → hsm2m: a backup, then each HSM replaced (new id, same AZ), then ACTIVE again
    backups = len(hsm.describe_backups(Filters={"clusterIds": [cid]})["Backups"])
    before = {h["HsmId"]: h["AvailabilityZone"] for h in cluster["Hsms"]}
    out = hsm.modify_cluster(ClusterId=cid, HsmType="hsm2m.medium")["Cluster"]
    assert out["State"] == "MODIFY_IN_PROGRESS" and out["HsmType"] == "hsm2m.medium"
    assert out["HsmTypeRollbackExpiration"]
    # not ACTIVE while migrating; other types are refused
    assert refused(hsm.modify_cluster, ClusterId=cid, HsmType="hsm1.medium") == (
        "CloudHsmInvalidRequestException"
    )
    after = migrated(hsm, cid, "MODIFY_IN_PROGRESS", "hsm2m.medium", set(before))
    assert sorted(h["AvailabilityZone"] for h in after["Hsms"]) == sorted(before.values())
    assert users_max(after) == {1024.0}
    assert after["HsmTypeRollbackExpiration"] == out["HsmTypeRollbackExpiration"]
    assert len(hsm.describe_backups(Filters={"clusterIds": [cid]})["Backups"]) > backups
    for h in after["Hsms"]:  # users and keys were cloned onto every new HSM
        listed = alice_on(
            hsm_server, h["EniIp"], anchor, "key", "list", "--filter", "attr.label=k1"
        )
        assert len(listed[-1]["data"]["matched_keys"]) == 1, listed
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before"
    blob = kms.encrypt(KeyId=key, Plaintext=b"after")["CiphertextBlob"]
    assert refused(hsm.modify_cluster, ClusterId=cid, HsmType="hsm9.large") == (
        "CloudHsmInvalidRequestException"
    )
    # rollback before HsmTypeRollbackExpiration
    out = hsm.modify_cluster(ClusterId=cid, HsmType="hsm1.medium")["Cluster"]
    assert out["State"] == "ROLLBACK_IN_PROGRESS"
    back = migrated(hsm, cid, "ROLLBACK_IN_PROGRESS", "hsm1.medium",
                    {h["HsmId"] for h in after["Hsms"]})  # fmt: skip
    assert "HsmTypeRollbackExpiration" not in back
    assert users_max(back) == {250.0}
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"after"
    # migrate again; past the expiration there is no way back
    hsm.modify_cluster(ClusterId=cid, HsmType="hsm2m.medium")
    migrated(hsm, cid, "MODIFY_IN_PROGRESS", "hsm2m.medium", {h["HsmId"] for h in back["Hsms"]})
    set_clock_offset(hsm_server, 8 * DAY)
    try:
        assert refused(hsm.modify_cluster, ClusterId=cid, HsmType="hsm1.medium") == (
            "CloudHsmInvalidRequestException"
        )
    finally:
        set_clock_offset(hsm_server, 0)
    assert describe(hsm, cid)["HsmType"] == "hsm2m.medium"
