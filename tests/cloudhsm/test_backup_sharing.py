"""Sharing a cluster backup with another account through its resource policy
(PutResourcePolicy), and that account restoring a cluster from it by the backup's full ARN."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cloudhsm.conftest import activate, initialize, new_cluster, wait_cluster, wait_for
from tests.conftest import Server
from tests.kms.access_support import ACCOUNT_B, Env, identity, identity_statement

SUBNETS = ["subnet-0000000a", "subnet-0000000b"]


@pytest.fixture(scope="module")
def env(hsm_server: Server) -> Iterator[Env]:
    environment = Env(hsm_server, hsm_server.data_dir.parent / "clock-offset")
    try:
        yield environment
    finally:
        environment.engine.dispose()


def _error(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call()
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def _share(account: str, backup_arn: str, effect: str = "Allow") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": effect,
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": ["cloudhsm:CreateCluster", "cloudhsm:DescribeBackups"],
                    "Resource": backup_arn,
                }
            ],
        }
    )


def test_a_shared_backup_restores_into_the_other_account(
    env: Env, hsm: Any, hsm_server: Server, tmp_path: Path
) -> None:
    cid = new_cluster(hsm, ("a",))
    initialize(hsm, cid, 1, tmp_path)
    activate(hsm_server, cid, tmp_path / "customerCA.crt", {})
    wait_cluster(hsm, cid, "ACTIVE", 1)
    backup = wait_for(
        lambda: hsm.describe_backups(Filters={"clusterIds": [cid]})["Backups"],
        lambda x: len(x) >= 1 and x[0]["BackupState"] == "READY",
    )[0]
    arn, bid = backup["BackupArn"], backup["BackupId"]
    other = env.user(
        "restorer", identity(identity_statement("Allow", "cloudhsm:*")), account=ACCOUNT_B
    ).client("cloudhsmv2")

    def restore(source: str) -> Any:
        return other.create_cluster(
            HsmType="hsm2m.medium", SubnetIds=SUBNETS, SourceBackupId=source
        )

    # not shared: the bare ID names nothing in B, the ARN is found but not shared
    assert _error(lambda: restore(bid))[0] == "CloudHsmResourceNotFoundException"
    assert _error(lambda: restore(arn))[0] == "CloudHsmResourceNotFoundException"
    assert hsm.get_resource_policy(ResourceArn=arn).get("Policy") is None

    # a malformed policy, and a policy on another account's behalf, are refused
    code, message = _error(lambda: hsm.put_resource_policy(ResourceArn=arn, Policy="{not json"))
    assert code == "CloudHsmInvalidRequestException" and "not valid" in message
    bad = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe"}]})
    assert _error(lambda: hsm.put_resource_policy(ResourceArn=arn, Policy=bad))[0] == (
        "CloudHsmInvalidRequestException"
    )
    assert (
        _error(lambda: other.put_resource_policy(ResourceArn=arn, Policy=_share(ACCOUNT_B, arn)))[0]
        == "CloudHsmResourceNotFoundException"
    )

    # shared with a third account only: B is denied on the backup's ARN
    hsm.put_resource_policy(ResourceArn=arn, Policy=_share("555566667777", arn))
    code, message = _error(lambda: restore(arn))
    assert code == "CloudHsmAccessDeniedException"
    assert f"cloudhsm:CreateCluster on resource: {arn} because no resource-based policy" in message

    # shared with B: B restores a cluster of its own from A's backup
    put = hsm.put_resource_policy(ResourceArn=arn, Policy=_share(ACCOUNT_B, arn))
    assert put["ResourceArn"] == arn
    assert json.loads(hsm.get_resource_policy(ResourceArn=arn)["Policy"]) == json.loads(
        _share(ACCOUNT_B, arn)
    )
    restored = restore(arn)["Cluster"]
    assert restored["SourceBackupId"] == bid
    wait_cluster(other, restored["ClusterId"], "ACTIVE")
    assert [c["ClusterId"] for c in other.describe_clusters()["Clusters"]] == [
        restored["ClusterId"]
    ]
    assert restored["ClusterId"] not in [
        c["ClusterId"] for c in hsm.describe_clusters()["Clusters"]
    ]
    # B's own identity policy still has its say
    env.put_user_policy(
        "restorer",
        "p1",
        identity(identity_statement("Deny", "cloudhsm:CreateCluster", arn)),
        ACCOUNT_B,
    )
    code, message = _error(lambda: restore(arn))
    assert code == "CloudHsmAccessDeniedException" and "explicit deny in an identity" in message
    harmless = identity(identity_statement("Allow", "cloudhsm:DescribeClusters"))
    env.put_user_policy("restorer", "p1", harmless, ACCOUNT_B)

    # an explicit Deny in the owner's policy wins; deleting the policy ends the sharing
    hsm.put_resource_policy(ResourceArn=arn, Policy=_share(ACCOUNT_B, arn, "Deny"))
    code, message = _error(lambda: restore(arn))
    assert code == "CloudHsmAccessDeniedException" and "explicit deny in a resource" in message
    removed = hsm.delete_resource_policy(ResourceArn=arn)
    assert removed["ResourceArn"] == arn and "Deny" in removed["Policy"]
    assert _error(lambda: restore(arn))[0] == "CloudHsmResourceNotFoundException"

    # the trail records who shared what with whom
    events = hsm_server.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "PutResourcePolicy"}]
    )["Events"]
    record = json.loads(events[0]["CloudTrailEvent"])
    assert record["requestParameters"]["resourceArn"] == arn
    assert "Deny" in record["requestParameters"]["policy"]
