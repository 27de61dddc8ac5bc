"""The AWS Encryption SDK for Python, pointed at Strongroom, encrypts and decrypts."""

from __future__ import annotations

from typing import Any

import aws_encryption_sdk
import aws_encryption_sdk.exceptions
import botocore.session
import pytest
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.key_providers.kms import (
    DiscoveryAwsKmsMasterKeyProvider,
    DiscoveryFilter,
    MRKAwareDiscoveryAwsKmsMasterKeyProvider,
    MRKAwareStrictAwsKmsMasterKeyProvider,
    StrictAwsKmsMasterKeyProvider,
)

from tests.conftest import ACCOUNT, REGION, Server


def _session(server: Server) -> botocore.session.Session:
    akid, secret = server.credentials()
    session = botocore.session.Session()
    session.set_credentials(akid, secret)
    session.set_config_variable("region", REGION)
    return session


def _provider(server: Server, key_arns: list[str]) -> StrictAwsKmsMasterKeyProvider:
    return StrictAwsKmsMasterKeyProvider(key_ids=key_arns, botocore_session=_session(server))


@pytest.fixture(autouse=True)
def _endpoint(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK builds its own KMS clients: point them at Strongroom the way a user would."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)


def test_master_key_provider_round_trip(server: Server, kms: Any) -> None:
    arn = kms.create_key(Description="esdk")["KeyMetadata"]["Arn"]
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    provider = _provider(server, [arn])
    message = b"envelope-encrypted payload " * 1000
    ciphertext, header = client.encrypt(
        source=message, key_provider=provider, encryption_context={"tenant": "t1"}
    )
    assert message not in ciphertext
    assert header.encryption_context["tenant"] == "t1"
    assert [k.key_provider.key_info.decode() for k in header.encrypted_data_keys] == [arn]
    plaintext, dec_header = client.decrypt(source=ciphertext, key_provider=provider)
    assert plaintext == message
    assert dec_header.encryption_context["tenant"] == "t1"


def test_two_keys_either_decrypts(server: Server, kms: Any) -> None:
    a = kms.create_key()["KeyMetadata"]["Arn"]
    b = kms.create_key()["KeyMetadata"]["Arn"]
    client = aws_encryption_sdk.EncryptionSDKClient()
    ciphertext, header = client.encrypt(source=b"two keys", key_provider=_provider(server, [a, b]))
    assert len(header.encrypted_data_keys) == 2
    kms.disable_key(KeyId=a)
    plaintext, _ = client.decrypt(source=ciphertext, key_provider=_provider(server, [a, b]))
    assert plaintext == b"two keys"


def test_multi_region_key_replica_decrypts_with_mrk_aware_provider(
    server: Server, kms: Any
) -> None:
    """Issue 4's multi-Region keys as the SDK uses them: encrypted under the primary in one
    region, decrypted through the replica in another (the MRK-aware providers match the two
    ARNs by their mrk- id and call KMS in the replica's region)."""
    primary = kms.create_key(MultiRegion=True, Description="esdk mrk")["KeyMetadata"]
    replica = kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion="eu-west-1")[
        "ReplicaKeyMetadata"
    ]
    assert replica["Arn"] == primary["Arn"].replace(REGION, "eu-west-1")
    client = aws_encryption_sdk.EncryptionSDKClient()
    message = b"written in us-east-1, read in eu-west-1"
    ciphertext, _ = client.encrypt(
        source=message,
        key_provider=MRKAwareStrictAwsKmsMasterKeyProvider(
            key_ids=[primary["Arn"]], botocore_session=_session(server)
        ),
    )
    west = MRKAwareStrictAwsKmsMasterKeyProvider(
        key_ids=[replica["Arn"]], botocore_session=_session(server)
    )
    plaintext, header = client.decrypt(source=ciphertext, key_provider=west)
    assert plaintext == message
    # what the SDK recorded is the primary's ARN; the replica answered for it
    assert [k.key_provider.key_info.decode() for k in header.encrypted_data_keys] == [
        primary["Arn"]
    ]
    # the plain strict provider does not treat the replica as the same key
    with pytest.raises(aws_encryption_sdk.exceptions.DecryptKeyError):
        client.decrypt(source=ciphertext, key_provider=_provider(server, [replica["Arn"]]))
    discovery = MRKAwareDiscoveryAwsKmsMasterKeyProvider(
        discovery_region="eu-west-1",
        discovery_filter=DiscoveryFilter(account_ids=[ACCOUNT], partition="aws"),
        botocore_session=_session(server),
    )
    assert client.decrypt(source=ciphertext, key_provider=discovery)[0] == message


def test_discovery_provider_filters_by_account(server: Server, kms: Any) -> None:
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    client = aws_encryption_sdk.EncryptionSDKClient()
    ciphertext, _ = client.encrypt(source=b"discovered", key_provider=_provider(server, [arn]))
    mine = DiscoveryAwsKmsMasterKeyProvider(
        discovery_filter=DiscoveryFilter(account_ids=[ACCOUNT], partition="aws"),
        botocore_session=_session(server),
    )
    assert client.decrypt(source=ciphertext, key_provider=mine)[0] == b"discovered"
    others = DiscoveryAwsKmsMasterKeyProvider(
        discovery_filter=DiscoveryFilter(account_ids=["444455556666"], partition="aws"),
        botocore_session=_session(server),
    )
    with pytest.raises(aws_encryption_sdk.exceptions.MasterKeyProviderError):
        client.decrypt(source=ciphertext, key_provider=others)
