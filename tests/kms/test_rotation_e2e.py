"""Key rotation through boto3 against a real server whose domain clock the test moves."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, error_code, running_server

DAY = 86_400


@pytest.fixture(scope="module")
def clocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    base = tmp_path_factory.mktemp("rotation")
    offset = base / "clock-offset"
    offset.write_text("0")
    args = ("--scheduler-interval", "0.2", "--clock-offset-file", str(offset))
    with running_server(base / "data", *args) as srv:
        yield srv, offset


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_scheduled_rotations_keep_old_ciphertexts(clocked: tuple[Server, Path]) -> None:
    server, offset = clocked
    kms = server.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=90)
    status = kms.get_key_rotation_status(KeyId=key)
    assert status["KeyRotationEnabled"] and status["RotationPeriodInDays"] == 90
    first_next = status["NextRotationDate"]
    blobs = [kms.encrypt(KeyId=key, Plaintext=b"v1")["CiphertextBlob"]]
    material_ids = {kms.describe_key(KeyId=key)["KeyMetadata"]["CurrentKeyMaterialId"]}
    for n in range(1, 4):
        offset.write_text(str(n * 91 * DAY))

        def rotated(n: int = n) -> bool:
            return len(kms.list_key_rotations(KeyId=key)["Rotations"]) == n

        _wait(rotated)
        blobs.append(kms.encrypt(KeyId=key, Plaintext=f"v{n + 1}".encode())["CiphertextBlob"])
        material_ids.add(kms.describe_key(KeyId=key)["KeyMetadata"]["CurrentKeyMaterialId"])
    assert len(material_ids) == 4
    for i, blob in enumerate(blobs):
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == f"v{i + 1}".encode()
    rotations = kms.list_key_rotations(KeyId=key)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["AUTOMATIC"] * 3
    assert [r["KeyMaterialState"] for r in rotations] == ["NON_CURRENT"] * 2 + ["CURRENT"]
    everything = kms.list_key_rotations(KeyId=key, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert len(everything["Rotations"]) == 4
    assert kms.get_key_rotation_status(KeyId=key)["NextRotationDate"] > first_next
    # ReEncrypt moves an old ciphertext to the newest material.
    moved = kms.re_encrypt(CiphertextBlob=blobs[0], DestinationKeyId=key)
    assert moved["DestinationKeyMaterialId"] == rotations[-1]["KeyMaterialId"]
    assert kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])["Plaintext"] == b"v1"
    page = kms.list_key_rotations(KeyId=key, Limit=2)
    assert page["Truncated"] and len(page["Rotations"]) == 2
    rest = kms.list_key_rotations(KeyId=key, Marker=page["NextMarker"])
    assert len(rest["Rotations"]) == 1 and not rest["Truncated"]
    kms.disable_key_rotation(KeyId=key)
    status = kms.get_key_rotation_status(KeyId=key)
    assert status["KeyRotationEnabled"] is False and "NextRotationDate" not in status


def test_on_demand_rotation(clocked: tuple[Server, Path]) -> None:
    server, _ = clocked
    kms = server.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"before")["CiphertextBlob"]
    kms.rotate_key_on_demand(KeyId=key)
    _wait(lambda: len(kms.list_key_rotations(KeyId=key)["Rotations"]) == 1)
    assert "OnDemandRotationStartDate" not in kms.get_key_rotation_status(KeyId=key)
    rotation = kms.list_key_rotations(KeyId=key)["Rotations"][0]
    assert rotation["RotationType"] == "ON_DEMAND"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before"
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is False


def test_on_demand_conflict_and_state(kms: Any) -> None:
    """On the shared server (scheduler every 0.5 s) a second request in the same instant
    conflicts; a disabled key refuses."""
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.rotate_key_on_demand(KeyId=key)
    codes = set()
    for _ in range(3):
        try:
            kms.rotate_key_on_demand(KeyId=key)
        except ClientError as conflict:
            codes.add(conflict.response["Error"]["Code"])
            break
    assert codes <= {"ConflictException"}
    kms.disable_key(KeyId=key)
    with pytest.raises(ClientError) as exc:
        kms.rotate_key_on_demand(KeyId=key)
    assert error_code(exc) == "DisabledException"


@pytest.mark.parametrize(
    ("spec", "usage"),
    [("RSA_2048", "SIGN_VERIFY"), ("HMAC_256", "GENERATE_VERIFY_MAC"),
     ("ECC_NIST_P256", "KEY_AGREEMENT")],
)  # fmt: skip
def test_keys_that_do_not_rotate(kms: Any, spec: str, usage: str) -> None:
    key = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]
    calls: list[Callable[[], Any]] = [
        lambda: kms.enable_key_rotation(KeyId=key),
        lambda: kms.rotate_key_on_demand(KeyId=key),
        lambda: kms.get_key_rotation_status(KeyId=key),
        lambda: kms.list_key_rotations(KeyId=key),
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == "UnsupportedOperationException"
    ext = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as exc:
        kms.enable_key_rotation(KeyId=ext)
    assert error_code(exc) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as exc:
        kms.get_key_rotation_status(KeyId="alias/aws/nothing")
    assert error_code(exc) == "NotFoundException"
