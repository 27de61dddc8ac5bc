"""Resource-level permissions on the cloudhsmv2 control plane, end to end through boto3:
statements naming cluster and backup ARNs, ``aws:ResourceTag``, ``aws:RequestTag`` and
``aws:TagKeys`` (src/strongroom/cloudhsm/access.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ACCOUNT, REGION
from tests.kms.access_support import (
    Env,
    access_env,
    hsm_denied,
    identity,
    identity_statement,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with access_env(tmp_path_factory.mktemp("hsm-access")) as environment:
        yield environment


@pytest.fixture(scope="module")
def clusters(env: Env) -> dict[str, str]:
    """Two clusters made by the admin: one tagged team=blue, one team=red."""
    hsm = env.server.client("cloudhsmv2")
    out = {}
    for team in ("blue", "red"):
        made = hsm.create_cluster(
            HsmType="hsm2m.medium",
            SubnetIds=["subnet-0000000a"],
            TagList=[{"Key": "team", "Value": team}],
        )
        out[team] = made["Cluster"]["ClusterId"]
    return out


def _arn(cluster_id: str) -> str:
    return f"arn:aws:cloudhsm:{REGION}:{ACCOUNT}:cluster/{cluster_id}"


def _allow(
    action: str | list[str], resource: str = "*", condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    return identity_statement("Allow", action, resource, condition)


def test_statement_naming_one_cluster(env: Env, clusters: dict[str, str]) -> None:
    user = env.user("hsm-one", identity(_allow("cloudhsm:ListTags", _arn(clusters["blue"]))))
    hsm = user.client("cloudhsmv2")
    assert hsm.list_tags(ResourceId=clusters["blue"])["TagList"] == [
        {"Key": "team", "Value": "blue"}
    ]
    message = hsm_denied(lambda: hsm.list_tags(ResourceId=clusters["red"]))
    assert message == (
        f"User: {user.arn} is not authorized to perform: cloudhsm:ListTags on resource: "
        f"{_arn(clusters['red'])} because no identity-based policy allows the cloudhsm:ListTags "
        "action"
    )
    # a wildcard in the ARN, and "*", match every cluster
    star = env.user("hsm-star", identity(_allow("cloudhsm:ListTags", _arn("cluster-*"))))
    assert star.client("cloudhsmv2").list_tags(ResourceId=clusters["red"])["TagList"]
    # actions on no one resource (DescribeClusters) need "*"
    hsm_denied(hsm.describe_clusters)


def test_resource_tag(env: Env, clusters: dict[str, str]) -> None:
    blue = env.user(
        "hsm-blue",
        identity(
            _allow(
                ["cloudhsm:ListTags", "cloudhsm:DeleteCluster"],
                condition={"StringEquals": {"aws:ResourceTag/team": "blue"}},
            )
        ),
    )
    hsm = blue.client("cloudhsmv2")
    assert hsm.list_tags(ResourceId=clusters["blue"])["TagList"]
    hsm_denied(lambda: hsm.list_tags(ResourceId=clusters["red"]))
    # a cluster that does not exist has no tags: denied, not "not found"
    hsm_denied(lambda: hsm.list_tags(ResourceId="cluster-abcdefghijk"))


def test_request_tag_and_tag_keys(env: Env, clusters: dict[str, str]) -> None:
    tagger = env.user(
        "hsm-tagger",
        identity(
            _allow(
                ["cloudhsm:TagResource", "cloudhsm:UntagResource"],
                condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["cost-center"]}},
            ),
            _allow(
                "cloudhsm:CreateCluster",
                condition={"StringEquals": {"aws:RequestTag/team": "green"}},
            ),
        ),
    )
    hsm = tagger.client("cloudhsmv2")
    cluster = clusters["red"]
    hsm.tag_resource(ResourceId=cluster, TagList=[{"Key": "cost-center", "Value": "42"}])
    hsm_denied(
        lambda: hsm.tag_resource(ResourceId=cluster, TagList=[{"Key": "team", "Value": "x"}])
    )
    hsm.untag_resource(ResourceId=cluster, TagKeyList=["cost-center"])
    hsm_denied(lambda: hsm.untag_resource(ResourceId=cluster, TagKeyList=["team"]))
    tags = env.server.client("cloudhsmv2").list_tags(ResourceId=cluster)["TagList"]
    assert tags == [{"Key": "team", "Value": "red"}]
    made = hsm.create_cluster(
        HsmType="hsm2m.medium",
        SubnetIds=["subnet-0000000a"],
        TagList=[{"Key": "team", "Value": "green"}],
    )
    assert made["Cluster"]["ClusterId"].startswith("cluster-")
    hsm_denied(
        lambda: hsm.create_cluster(
            HsmType="hsm2m.medium",
            SubnetIds=["subnet-0000000a"],
            TagList=[{"Key": "team", "Value": "blue"}],
        )
    )
    hsm_denied(lambda: hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=["subnet-0000000a"]))
