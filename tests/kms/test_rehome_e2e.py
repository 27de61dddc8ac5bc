"""Deleting the region a multi-Region key was created in (which holds its shared material)
after its primary moved away: the key lives on in its other regions, with their own tags and
aliases, and every old ciphertext still decrypts. Through boto3, with a moved clock."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, error_code

DAY = 86_400
WEST = "eu-west-1"


def _state(client: Any, key: str) -> str:
    try:
        return str(client.describe_key(KeyId=key)["KeyMetadata"]["KeyState"])
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])


@pytest.mark.parametrize("spec", ["SYMMETRIC_DEFAULT", "HMAC_256"])
def test_the_home_region_goes_and_the_key_stays(clocked: tuple[Server, Path], spec: str) -> None:
    server, offset = clocked
    east, west = server.client(), server.client(region=WEST)
    usage = "GENERATE_VERIFY_MAC" if spec.startswith("HMAC") else "ENCRYPT_DECRYPT"
    tags = [{"TagKey": "r", "TagValue": "east"}]
    created = east.create_key(MultiRegion=True, KeySpec=spec, KeyUsage=usage, Tags=tags)
    key = created["KeyMetadata"]["KeyId"]
    east.create_alias(AliasName="alias/east-name", TargetKeyId=key)
    east.replicate_key(KeyId=key, ReplicaRegion=WEST, Tags=[{"TagKey": "r", "TagValue": "west"}])
    west.create_alias(AliasName="alias/west-name", TargetKeyId=key)
    if spec == "SYMMETRIC_DEFAULT":
        old = east.encrypt(KeyId=key, Plaintext=b"made in the east")["CiphertextBlob"]
    else:
        mac = east.generate_mac(KeyId=key, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]

    east.update_primary_region(KeyId=key, PrimaryRegion=WEST)
    out = east.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingDeletion"
    assert _state(west, key) == "Enabled"
    offset.write_text(str(8 * DAY))
    deadline = time.monotonic() + 10
    while _state(east, key) != "NotFoundException":
        assert time.monotonic() < deadline, "the home region was not deleted"
        time.sleep(0.1)

    meta = west.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and meta["KeySpec"] == spec
    config = meta["MultiRegionConfiguration"]
    assert config["MultiRegionKeyType"] == "PRIMARY"
    assert config["PrimaryKey"]["Region"] == WEST and config["ReplicaKeys"] == []
    if spec == "SYMMETRIC_DEFAULT":
        assert west.decrypt(CiphertextBlob=old)["Plaintext"] == b"made in the east"
        new = west.encrypt(KeyId="alias/west-name", Plaintext=b"west")["CiphertextBlob"]
        assert west.decrypt(CiphertextBlob=new)["Plaintext"] == b"west"
    else:
        assert west.verify_mac(KeyId=key, Message=b"m", MacAlgorithm="HMAC_SHA_256",
                               Mac=mac)["MacValid"]  # fmt: skip
    assert west.list_resource_tags(KeyId=key)["Tags"] == [{"TagKey": "r", "TagValue": "west"}]
    assert key not in [k["KeyId"] for k in east.list_keys()["Keys"]]
    with pytest.raises(ClientError) as exc:
        east.describe_key(KeyId="alias/east-name")
    assert error_code(exc) == "NotFoundException"

    # the key can come back to the east as a replica of its new home
    west.replicate_key(KeyId=key, ReplicaRegion="us-east-1")
    assert _state(east, key) == "Enabled"
    if spec == "SYMMETRIC_DEFAULT":
        assert east.decrypt(CiphertextBlob=old)["Plaintext"] == b"made in the east"
