"""Multi-Region keys through boto3: a primary waits for its replicas (PendingReplicaDeletion),
replicas have their own tags, and ReplicateKey needs kms:CreateKey in the replica region."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import error_code, running_server
from tests.kms.access_support import Env, identity

DAY = 86_400
WEST = "eu-west-1"
NORTH = "eu-north-1"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("replicas")
    offset = base / "clock-offset"
    offset.write_text("0")
    args = ("--scheduler-interval", "0.2", "--clock-offset-file", str(offset))
    with running_server(base / "data", *args) as server:
        environment = Env(server, offset)
        try:
            yield environment
        finally:
            environment.engine.dispose()


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def _state(client: Any, key: str) -> str:
    try:
        return str(client.describe_key(KeyId=key)["KeyMetadata"]["KeyState"])
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])


def test_primary_waits_for_its_replicas(env: Env) -> None:
    kms, server = env.admin, env.server
    west, north = server.client(region=WEST), server.client(region=NORTH)
    key = kms.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    kms.replicate_key(KeyId=key, ReplicaRegion=WEST)
    kms.replicate_key(KeyId=key, ReplicaRegion=NORTH)
    blob = kms.encrypt(KeyId=key, Plaintext=b"kept")["CiphertextBlob"]
    out = kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingReplicaDeletion" and out["PendingWindowInDays"] == 7
    assert "DeletionDate" not in out
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "PendingReplicaDeletion" and meta["Enabled"] is False
    assert meta["PendingDeletionWindowInDays"] == 7 and "DeletionDate" not in meta
    # The key-state table's PendingReplicaDeletion column.
    calls: list[tuple[Callable[[], Any], str]] = [
        (lambda: kms.encrypt(KeyId=key, Plaintext=b"x"), "KMSInvalidStateException"),
        (lambda: kms.enable_key(KeyId=key), "KMSInvalidStateException"),
        (lambda: kms.tag_resource(KeyId=key, Tags=[{"TagKey": "a", "TagValue": "b"}]),
         "KMSInvalidStateException"),
        (lambda: kms.schedule_key_deletion(KeyId=key), "KMSInvalidStateException"),
        (lambda: kms.replicate_key(KeyId=key, ReplicaRegion="ap-south-1"),
         "KMSInvalidStateException"),
    ]  # fmt: skip
    for call, code in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == code
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is False
    # Cancel: back to Disabled; schedule again.
    assert kms.cancel_key_deletion(KeyId=key)["KeyId"].endswith(key)
    assert _state(kms, key) == "Disabled"
    kms.enable_key(KeyId=key)
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    # The replicas still decrypt; delete them one by one.
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"
    west.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    env.set_clock_offset(8 * DAY)
    _wait(lambda: _state(west, key) == "NotFoundException")
    time.sleep(0.5)
    assert _state(kms, key) == "PendingReplicaDeletion"  # NORTH remains
    north.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    env.set_clock_offset(16 * DAY)
    _wait(lambda: _state(kms, key) == "PendingDeletion")
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["DeletionDate"].timestamp() == pytest.approx(time.time() + 23 * DAY, abs=60)
    assert meta["MultiRegionConfiguration"]["ReplicaKeys"] == []
    env.set_clock_offset(24 * DAY)
    _wait(lambda: _state(kms, key) == "NotFoundException")


def test_replicas_have_their_own_tags(env: Env) -> None:
    kms = env.admin
    west = env.server.client(region=WEST)
    tags = [{"TagKey": "team", "TagValue": "east"}]
    key = kms.create_key(MultiRegion=True, Tags=tags)["KeyMetadata"]["KeyId"]
    west_tags = [{"TagKey": "team", "TagValue": "west"}, {"TagKey": "dr", "TagValue": "yes"}]
    out = kms.replicate_key(KeyId=key, ReplicaRegion=WEST, Tags=west_tags)
    assert out["ReplicaTags"] == sorted(west_tags, key=lambda t: t["TagKey"])
    assert west.list_resource_tags(KeyId=key)["Tags"] == out["ReplicaTags"]
    west.tag_resource(KeyId=key, Tags=[{"TagKey": "env", "TagValue": "prod"}])
    west.untag_resource(KeyId=key, TagKeys=["dr"])
    assert [t["TagKey"] for t in west.list_resource_tags(KeyId=key)["Tags"]] == ["env", "team"]
    assert kms.list_resource_tags(KeyId=key)["Tags"] == tags
    kms.tag_resource(KeyId=key, Tags=[{"TagKey": "only", "TagValue": "primary"}])
    assert "only" not in [t["TagKey"] for t in west.list_resource_tags(KeyId=key)["Tags"]]
    too_many = [{"TagKey": f"k{i}", "TagValue": "v"} for i in range(51)]
    with pytest.raises(ClientError) as exc:
        kms.replicate_key(KeyId=key, ReplicaRegion=NORTH, Tags=too_many)
    assert error_code(exc) == "TagException"


def _allow(actions: list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": "*"}


def test_replicate_key_needs_create_key_in_the_replica_region(env: Env) -> None:
    key = env.admin.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    base = ["kms:ReplicateKey", "kms:DescribeKey"]
    only_replicate = env.user("replicator", identity(_allow(base)))
    with pytest.raises(ClientError) as exc:
        only_replicate.client().replicate_key(KeyId=key, ReplicaRegion=WEST)
    assert error_code(exc) == "AccessDeniedException"
    assert "kms:CreateKey" in exc.value.response["Error"]["Message"]
    both = env.user("creator", identity(_allow([*base, "kms:CreateKey"])))
    out = both.client().replicate_key(KeyId=key, ReplicaRegion=WEST)
    assert out["ReplicaKeyMetadata"]["KeyState"] == "Enabled"
