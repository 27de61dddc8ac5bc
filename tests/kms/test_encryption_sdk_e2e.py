"""The AWS Encryption SDK for Python, pointed at Strongroom, encrypts and decrypts."""

from __future__ import annotations

from typing import Any

import aws_encryption_sdk
import botocore.session
import pytest
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.key_providers.kms import StrictAwsKmsMasterKeyProvider

from tests.conftest import REGION, Server


def _provider(server: Server, key_arns: list[str]) -> StrictAwsKmsMasterKeyProvider:
    akid, secret = server.credentials()
    session = botocore.session.Session()
    session.set_credentials(akid, secret)
    session.set_config_variable("region", REGION)
    return StrictAwsKmsMasterKeyProvider(key_ids=key_arns, botocore_session=session)


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
