"""The cloudhsmv2 control plane through boto3 against a real server with real node processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from strongroom.crypto.x509 import CustomerCa
from tests.cloudhsm.conftest import (
    activate,
    describe,
    hsm_cli,
    initialize,
    new_cluster,
    on_node,
    wait_cluster,
    wait_for,
)
from tests.conftest import Server


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_create_cluster_maps_subnets_to_zones(hsm: Any) -> None:
    out = hsm.create_cluster(
        HsmType="hsm2m.medium", SubnetIds=["subnet-0000000a", "subnet-0000000c"]
    )
    cluster = out["Cluster"]
    assert cluster["State"] == "CREATE_IN_PROGRESS"
    assert cluster["ClusterId"].startswith("cluster-")
    assert cluster["SubnetMapping"] == {
        "us-east-1a": "subnet-0000000a",
        "us-east-1c": "subnet-0000000c",
    }
    ready = wait_cluster(hsm, cluster["ClusterId"], "UNINITIALIZED")
    assert ready["Hsms"] == [] and "ClusterCsr" not in ready["Certificates"]
    hsm.delete_cluster(ClusterId=cluster["ClusterId"])


def test_bad_input_is_refused_as_aws_does(hsm: Any) -> None:
    with pytest.raises(ClientError) as exc:
        hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=["subnet-0000000f"])
    assert code(exc) == "CloudHsmInvalidRequestException"
    with pytest.raises(ClientError) as exc:
        hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=["not-a-subnet"])
    assert code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        hsm.describe_clusters(Filters={"clusterIds": ["cluster-aaaaaaaaaaa"]}, MaxResults=99)
    assert code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        hsm.create_hsm(ClusterId="cluster-aaaaaaaaaaa", AvailabilityZone="us-east-1a")
    assert code(exc) == "CloudHsmResourceNotFoundException"
    cid = hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=["subnet-0000000a"])["Cluster"][
        "ClusterId"
    ]
    with pytest.raises(ClientError) as exc:
        hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1b")
    assert code(exc) == "CloudHsmInvalidRequestException"
    with pytest.raises(ClientError) as exc:
        hsm.modify_cluster(ClusterId=cid, BackupRetentionPolicy={"Type": "DAYS", "Value": "400"})
    assert code(exc) == "CloudHsmInvalidRequestException"
    with pytest.raises(ClientError) as exc:
        hsm.initialize_cluster(ClusterId=cid, SignedCert="x", TrustAnchor="y")
    assert code(exc) == "CloudHsmInvalidRequestException"
    hsm.delete_cluster(ClusterId=cid)


def test_tags_pagination_and_modify(hsm: Any) -> None:
    ids = [
        hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=["subnet-0000000b"])["Cluster"][
            "ClusterId"
        ]
        for _ in range(3)
    ]
    pages = hsm.get_paginator("describe_clusters").paginate(
        Filters={"clusterIds": ids}, PaginationConfig={"PageSize": 2}
    )
    seen = [c["ClusterId"] for page in pages for c in page["Clusters"]]
    assert sorted(seen) == sorted(ids)
    hsm.tag_resource(ResourceId=ids[0], TagList=[{"Key": "team", "Value": "a"}])
    hsm.tag_resource(ResourceId=ids[0], TagList=[{"Key": "env", "Value": "prod"}])
    hsm.untag_resource(ResourceId=ids[0], TagKeyList=["team"])
    assert hsm.list_tags(ResourceId=ids[0])["TagList"] == [{"Key": "env", "Value": "prod"}]
    out = hsm.modify_cluster(
        ClusterId=ids[0], BackupRetentionPolicy={"Type": "DAYS", "Value": "30"}
    )
    assert out["Cluster"]["BackupRetentionPolicy"] == {"Type": "DAYS", "Value": "30"}
    for cid in ids:
        hsm.delete_cluster(ClusterId=cid)
    gone = hsm.describe_clusters(Filters={"clusterIds": ids, "states": ["DELETED"]})
    wait_for(
        lambda: hsm.describe_clusters(Filters={"clusterIds": ids, "states": ["DELETED"]}),
        lambda o: len(o["Clusters"]) == 3,
    )
    assert gone is not None
    with pytest.raises(ClientError) as exc:
        hsm.describe_backups()["Backups"] and None
        hsm.delete_backup(BackupId="backup-aaaaaaaaaaa")
    assert code(exc) == "CloudHsmResourceNotFoundException"


def test_initialize_checks_the_certificates(hsm: Any, tmp_path: Path) -> None:
    cid = new_cluster(hsm, ("a",))
    cluster = wait_cluster(hsm, cid, "UNINITIALIZED", 1)
    csr = wait_for(lambda: describe(hsm, cid)["Certificates"].get("ClusterCsr"), bool)
    ca, other = CustomerCa(), CustomerCa()
    signed = ca.sign_csr(csr)
    for cert, anchor in ((signed, other.certificate_pem), (signed, signed)):
        with pytest.raises(ClientError) as exc:
            hsm.initialize_cluster(ClusterId=cid, SignedCert=cert, TrustAnchor=anchor)
        assert code(exc) == "CloudHsmInvalidRequestException"
    hsm.delete_hsm(ClusterId=cid, HsmId=cluster["Hsms"][0]["HsmId"])
    with pytest.raises(ClientError) as exc:
        hsm.delete_cluster(ClusterId=cid)
    assert code(exc) == "CloudHsmInvalidRequestException"
    wait_for(lambda: describe(hsm, cid)["Hsms"], lambda h: h == [])
    hsm.delete_cluster(ClusterId=cid)


def test_initialize_activate_replicate_and_replace(
    hsm: Any, hsm_server: Server, tmp_path: Path
) -> None:
    cid = new_cluster(hsm, ("a", "b"))
    initialize(hsm, cid, 2, tmp_path)
    cluster = describe(hsm, cid)
    assert "ClusterCsr" not in cluster["Certificates"]
    assert cluster["Certificates"]["ClusterCertificate"]
    anchor = tmp_path / "customerCA.crt"
    activate(hsm_server, cid, anchor, {"alice": "alice-pass"})
    wait_cluster(hsm, cid, "ACTIVE", 2)
    alice = {"CLOUDHSM_ROLE": "crypto-user", "CLOUDHSM_PIN": "alice:alice-pass"}
    rc, out, err = hsm_cli(
        hsm_server,
        cid,
        anchor,
        "key",
        "generate-symmetric",
        "aes",
        "--label",
        "k1",
        "--key-length-bytes",
        "32",
        env=alice,
    )
    assert rc == 0, (out, err)
    # the key is on both nodes: list it through each node alone
    for h in describe(hsm, cid)["Hsms"]:
        rc, out, err = on_node(
            hsm_server, h["EniIp"], anchor, alice, "key", "list", "--filter", "attr.label=k1"
        )
        assert rc == 0 and len(out[-1]["data"]["matched_keys"]) == 1, (out, err)
    # kill one node: the control plane replaces it with a new HSM in the same AZ, cloned
    victim = describe(hsm, cid)["Hsms"][0]
    pid = int((hsm_server.data_dir / "hsms" / victim["HsmId"] / "node.pid").read_text())
    os.kill(pid, signal.SIGKILL)

    def replaced(c: dict[str, Any]) -> bool:
        ids = {h["HsmId"] for h in c["Hsms"] if h["State"] == "ACTIVE"}
        return victim["HsmId"] not in ids and len(ids) == 2

    after = wait_for(lambda: describe(hsm, cid), replaced)
    new = next(h for h in after["Hsms"] if h["AvailabilityZone"] == victim["AvailabilityZone"])
    rc, out, err = on_node(
        hsm_server, new["EniIp"], anchor, alice, "key", "list", "--filter", "attr.label=k1"
    )
    assert rc == 0 and len(out[-1]["data"]["matched_keys"]) == 1, (out, err)
