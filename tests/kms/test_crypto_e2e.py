"""Encrypt, Decrypt, ReEncrypt, GenerateDataKey(*) and GenerateRandom against a real server."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION, Server, error_code


def test_encrypt_decrypt_round_trip_with_every_key_form(kms: Any, key_id: str) -> None:
    arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"
    kms.create_alias(AliasName=f"alias/rt-{key_id[:8]}", TargetKeyId=key_id)
    forms = [
        key_id,
        arn,
        f"alias/rt-{key_id[:8]}",
        f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/rt-{key_id[:8]}",
    ]
    for form in forms:
        out = kms.encrypt(KeyId=form, Plaintext=b"secret data")
        assert out["KeyId"] == arn
        assert out["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
        back = kms.decrypt(CiphertextBlob=out["CiphertextBlob"])
        assert back["Plaintext"] == b"secret data"
        assert back["KeyId"] == arn
        assert len(back["KeyMaterialId"]) == 64
        assert (
            kms.decrypt(CiphertextBlob=out["CiphertextBlob"], KeyId=form)["Plaintext"]
            == b"secret data"
        )


def test_plaintext_limits(kms: Any, key_id: str) -> None:
    assert (
        kms.decrypt(
            CiphertextBlob=kms.encrypt(KeyId=key_id, Plaintext=b"x" * 4096)["CiphertextBlob"]
        )["Plaintext"]
        == b"x" * 4096
    )
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=key_id, Plaintext=b"x" * 4097)
    assert error_code(exc) == "ValidationException"
    assert exc.value.response["Error"]["Message"] == (
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length less than or equal to 4096"
    )


def test_encryption_context_is_bound(kms: Any, key_id: str) -> None:
    ctx = {"purpose": "test", "ünïcode": "välue"}
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"p", EncryptionContext=ctx)["CiphertextBlob"]
    assert (
        kms.decrypt(CiphertextBlob=blob, EncryptionContext=dict(reversed(ctx.items())))["Plaintext"]
        == b"p"
    )
    for wrong in (
        {},
        {"purpose": "test"},
        {**ctx, "extra": "x"},
        {"purpose": "Test", "ünïcode": "välue"},
    ):
        with pytest.raises(ClientError) as exc:
            kms.decrypt(CiphertextBlob=blob, EncryptionContext=wrong)
        assert error_code(exc) == "InvalidCiphertextException"
    # No concatenation ambiguity: {"ab": "c"} is not {"a": "bc"}.
    blob2 = kms.encrypt(KeyId=key_id, Plaintext=b"p", EncryptionContext={"ab": "c"})[
        "CiphertextBlob"
    ]
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=blob2, EncryptionContext={"a": "bc"})
    assert error_code(exc) == "InvalidCiphertextException"


def test_decrypt_with_other_key_id_is_incorrect_key(kms: Any, key_id: str) -> None:
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"p")["CiphertextBlob"]
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=blob, KeyId=other)
    assert error_code(exc) == "IncorrectKeyException"


@pytest.mark.parametrize(
    "blob", [b"\x00", b"garbage-ciphertext", b"\x01\x01\x05abcde" + b"\x00" * 60]
)
def test_foreign_blobs_are_invalid_ciphertext(kms: Any, blob: bytes) -> None:
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=blob)
    assert error_code(exc) == "InvalidCiphertextException"


def test_disabled_and_pending_deletion_keys_refuse_crypto(kms: Any, key_id: str) -> None:
    arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"p")["CiphertextBlob"]
    kms.disable_key(KeyId=key_id)
    calls: list[Callable[[], Any]] = [
        lambda: kms.encrypt(KeyId=key_id, Plaintext=b"p"),
        lambda: kms.decrypt(CiphertextBlob=blob),
        lambda: kms.generate_data_key(KeyId=key_id, KeySpec="AES_256"),
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == "DisabledException"
        assert exc.value.response["Error"]["Message"] == f"{arn} is disabled."
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=blob)
    assert error_code(exc) == "KMSInvalidStateException"
    assert exc.value.response["Error"]["Message"] == f"{arn} is pending deletion."
    kms.cancel_key_deletion(KeyId=key_id)
    kms.enable_key(KeyId=key_id)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p"


def test_generate_data_key_variants(kms: Any, key_id: str) -> None:
    for spec, size in (("AES_256", 32), ("AES_128", 16)):
        out = kms.generate_data_key(KeyId=key_id, KeySpec=spec, EncryptionContext={"k": "v"})
        assert len(out["Plaintext"]) == size
        back = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"k": "v"})
        assert back["Plaintext"] == out["Plaintext"]
    for count in (1, 64, 1024):
        out = kms.generate_data_key(KeyId=key_id, NumberOfBytes=count)
        assert len(out["Plaintext"]) == count
    out = kms.generate_data_key_without_plaintext(KeyId=key_id, KeySpec="AES_256")
    assert "Plaintext" not in out
    assert len(kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"]) == 32


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "Please specify either number of bytes or key spec."),
        (
            {"KeySpec": "AES_256", "NumberOfBytes": 32},
            "Please specify either number of bytes or key spec.",
        ),
        (
            {"NumberOfBytes": 1025},
            "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy "
            "constraint: Member must have value less than or equal to 1024",
        ),
        (
            {"KeySpec": "AES_512"},
            "1 validation error detected: Value 'AES_512' at 'keySpec' failed to satisfy "
            "constraint: Member must satisfy enum value set: [AES_256, AES_128]",
        ),
    ],
)
def test_generate_data_key_validation(
    kms: Any, key_id: str, args: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError) as exc:
        kms.generate_data_key(KeyId=key_id, **args)
    assert error_code(exc) == "ValidationException"
    assert exc.value.response["Error"]["Message"] == message


def test_re_encrypt_moves_between_keys_and_contexts(kms: Any, key_id: str) -> None:
    dest = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"move me", EncryptionContext={"a": "1"})[
        "CiphertextBlob"
    ]
    out = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"a": "1"},
        DestinationKeyId=dest,
        DestinationEncryptionContext={"b": "2"},
    )
    assert out["SourceKeyId"].endswith(key_id)
    assert out["KeyId"].endswith(dest)
    assert (
        kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"b": "2"})["Plaintext"]
        == b"move me"
    )
    with pytest.raises(ClientError) as exc:
        kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=dest)  # source context missing
    assert error_code(exc) == "InvalidCiphertextException"
    with pytest.raises(ClientError) as exc:
        kms.re_encrypt(
            CiphertextBlob=blob,
            SourceKeyId=dest,
            DestinationKeyId=dest,
            SourceEncryptionContext={"a": "1"},
        )
    assert error_code(exc) == "IncorrectKeyException"


def test_generate_random(kms: Any) -> None:
    a = kms.generate_random(NumberOfBytes=1024)["Plaintext"]
    b = kms.generate_random(NumberOfBytes=1024)["Plaintext"]
    assert len(a) == 1024 and a != b
    assert len(kms.generate_random(NumberOfBytes=1)["Plaintext"]) == 1
    with pytest.raises(ClientError) as exc:
        kms.generate_random(NumberOfBytes=1025)
    assert error_code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        kms.generate_random()
    assert error_code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        kms.generate_random(NumberOfBytes=8, CustomKeyStoreId="cks-1234567890abcdef0")
    assert error_code(exc) == "CustomKeyStoreNotFoundException"


def test_dry_run(kms: Any, key_id: str) -> None:
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=key_id, Plaintext=b"p", DryRun=True)
    assert error_code(exc) == "DryRunOperationException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    kms.disable_key(KeyId=key_id)
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=key_id, Plaintext=b"p", DryRun=True)
    assert error_code(exc) == "DisabledException"


def test_regional_namespace(server: Server, key_id: str) -> None:
    west = server.client(region="eu-west-1")
    with pytest.raises(ClientError) as exc:
        west.encrypt(KeyId=key_id, Plaintext=b"p")
    assert error_code(exc) == "NotFoundException"
    east_blob = server.client().encrypt(KeyId=key_id, Plaintext=b"p")["CiphertextBlob"]
    with pytest.raises(ClientError) as exc:
        west.decrypt(CiphertextBlob=east_blob)
    assert error_code(exc) == "InvalidCiphertextException"
    west_key = west.create_key()["KeyMetadata"]
    assert west_key["Arn"].startswith("arn:aws:kms:eu-west-1:")
    assert (
        west.decrypt(
            CiphertextBlob=west.encrypt(KeyId=west_key["KeyId"], Plaintext=b"w")["CiphertextBlob"]
        )["Plaintext"]
        == b"w"
    )


def test_blob_is_versioned_and_self_describing(kms: Any, key_id: str) -> None:
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"p")["CiphertextBlob"]
    assert blob[0] == 1  # format version
    assert key_id.encode() in blob  # names its key: Decrypt needs no KeyId
    assert base64.b64encode(blob)
