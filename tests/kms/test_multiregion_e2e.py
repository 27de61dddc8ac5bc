"""Multi-Region keys through boto3: replicate, decrypt across regions, move the primary."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import REGION, Server, error_code

WEST = "eu-west-1"
NORTH = "eu-north-1"


def test_replica_decrypts_primary_ciphertext_and_back(server: Server, kms: Any) -> None:
    west = server.client(region=WEST)
    meta = kms.create_key(MultiRegion=True, Description="mrk")["KeyMetadata"]
    key = meta["KeyId"]
    assert key.startswith("mrk-") and len(key) == 36 and meta["MultiRegion"] is True
    assert meta["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"
    with pytest.raises(ClientError) as exc:
        west.describe_key(KeyId=key)
    assert error_code(exc) == "NotFoundException"
    out = kms.replicate_key(KeyId=key, ReplicaRegion=WEST, Description="west replica")
    replica = out["ReplicaKeyMetadata"]
    assert replica["Arn"] == meta["Arn"].replace(REGION, WEST)
    assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert replica["Description"] == "west replica" and replica["KeyState"] == "Enabled"
    east_blob = kms.encrypt(KeyId=key, Plaintext=b"from east", EncryptionContext={"a": "b"})
    back = west.decrypt(CiphertextBlob=east_blob["CiphertextBlob"], EncryptionContext={"a": "b"})
    assert back["Plaintext"] == b"from east" and back["KeyId"] == replica["Arn"]
    west_blob = west.encrypt(KeyId=key, Plaintext=b"from west")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=west_blob, KeyId=key)["Plaintext"] == b"from west"
    described = kms.describe_key(KeyId=key)["KeyMetadata"]["MultiRegionConfiguration"]
    assert [r["Region"] for r in described["ReplicaKeys"]] == [WEST]
    # Replicas have their own state.
    west.disable_key(KeyId=key)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    with pytest.raises(ClientError) as exc:
        west.encrypt(KeyId=key, Plaintext=b"x")
    assert error_code(exc) == "DisabledException"
    west.enable_key(KeyId=key)
    # Rotation is set on the primary; a replica refuses, and shares the primary's rotations.
    with pytest.raises(ClientError) as exc:
        west.enable_key_rotation(KeyId=key)
    assert error_code(exc) == "UnsupportedOperationException"
    kms.enable_key_rotation(KeyId=key)
    assert west.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is True
    # Errors: a second replica in the same region, replicating from a replica.
    with pytest.raises(ClientError) as exc:
        kms.replicate_key(KeyId=key, ReplicaRegion=WEST)
    assert error_code(exc) == "AlreadyExistsException"
    with pytest.raises(ClientError) as exc:
        west.replicate_key(KeyId=key, ReplicaRegion=NORTH)
    assert error_code(exc) == "UnsupportedOperationException"


def test_update_primary_region(server: Server, kms: Any) -> None:
    west = server.client(region=WEST)
    key = kms.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    kms.replicate_key(KeyId=key, ReplicaRegion=WEST)
    with pytest.raises(ClientError) as exc:
        kms.update_primary_region(KeyId=key, PrimaryRegion=NORTH)
    assert error_code(exc) == "NotFoundException"
    kms.update_primary_region(KeyId=key, PrimaryRegion=WEST)
    west_conf = west.describe_key(KeyId=key)["KeyMetadata"]["MultiRegionConfiguration"]
    assert west_conf["MultiRegionKeyType"] == "PRIMARY"
    assert [r["Region"] for r in west_conf["ReplicaKeys"]] == [REGION]
    east_conf = kms.describe_key(KeyId=key)["KeyMetadata"]["MultiRegionConfiguration"]
    assert east_conf["MultiRegionKeyType"] == "REPLICA"
    west.replicate_key(KeyId=key, ReplicaRegion=NORTH)
    north = server.client(region=NORTH)
    blob = kms.encrypt(KeyId=key, Plaintext=b"everywhere")["CiphertextBlob"]
    assert north.decrypt(CiphertextBlob=blob)["Plaintext"] == b"everywhere"
    # Now a replica, the region the key was created in is scheduled for deletion like any
    # replica (what happens when its waiting period ends: test_rehome_e2e.py).
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    north.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert north.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert west.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"


def test_single_region_key_does_not_replicate(kms: Any, key_id: str) -> None:
    with pytest.raises(ClientError) as exc:
        kms.replicate_key(KeyId=key_id, ReplicaRegion=WEST)
    assert error_code(exc) == "UnsupportedOperationException"
