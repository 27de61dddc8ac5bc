"""Several imported materials in one symmetric key, wrapped with ``cryptography`` as a user would:
import tokens, ImportType, KeyMaterialId / KeyMaterialDescription, RotateKeyOnDemand to material
imported as PENDING_ROTATION, ListKeyRotations, and every material version decrypting."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import error_code
from tests.kms.test_import_e2e import _wrap

NEVER = {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}
ALGORITHM = "RSA_AES_KEY_WRAP_SHA_256"


def _params(kms: Any, key: str) -> Any:
    return kms.get_parameters_for_import(
        KeyId=key, WrappingAlgorithm=ALGORITHM, WrappingKeySpec="RSA_2048"
    )


def _import(kms: Any, key: str, material: bytes, **extra: Any) -> str:
    params = _params(kms, key)
    out = kms.import_key_material(
        KeyId=key,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=_wrap(params["PublicKey"], ALGORITHM, material),
        **NEVER,
        **extra,
    )
    return str(out["KeyMaterialId"])


def _fails(code: str, call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    assert error_code(exc) == code, exc.value.response["Error"]


def _materials(kms: Any, key: str) -> list[dict[str, Any]]:
    out = kms.list_key_rotations(KeyId=key, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    return list(out["Rotations"])


def _rotate(kms: Any, key: str, expected: int) -> None:
    kms.rotate_key_on_demand(KeyId=key)
    deadline = time.monotonic() + 10
    while len(kms.list_key_rotations(KeyId=key)["Rotations"]) < expected:
        assert time.monotonic() < deadline, "rotation did not complete"
        time.sleep(0.1)


def test_an_older_import_token_is_invalid(kms: Any) -> None:
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    old, new = _params(kms, key), _params(kms, key)
    material = os.urandom(32)
    _fails(
        "InvalidImportTokenException", kms.import_key_material, KeyId=key,
        ImportToken=old["ImportToken"],
        EncryptedKeyMaterial=_wrap(old["PublicKey"], ALGORITHM, material), **NEVER,
    )  # fmt: skip
    kms.import_key_material(
        KeyId=key, ImportToken=new["ImportToken"],
        EncryptedKeyMaterial=_wrap(new["PublicKey"], ALGORITHM, material), **NEVER,
    )  # fmt: skip
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"


def test_rotate_to_new_imported_materials(kms: Any) -> None:
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    m1, m2, m3 = os.urandom(32), os.urandom(32), os.urandom(32)
    id1 = _import(kms, key, m1, KeyMaterialDescription="first")
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["CurrentKeyMaterialId"] == id1
    blobs = [kms.encrypt(KeyId=key, Plaintext=b"v1")["CiphertextBlob"]]
    _fails("KMSInvalidStateException", kms.rotate_key_on_demand, KeyId=key)
    _fails("ValidationException", _import, kms, key, m2, ImportType="NEW_KEY_MATERIAL",
           KeyMaterialId=id1)  # fmt: skip
    _fails("IncorrectKeyMaterialException", _import, kms, key, m1, ImportType="NEW_KEY_MATERIAL")
    id2 = _import(kms, key, m2, ImportType="NEW_KEY_MATERIAL", KeyMaterialDescription="second")
    assert id2 != id1
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and meta["CurrentKeyMaterialId"] == id1
    listed = _materials(kms, key)
    assert [(e["KeyMaterialId"], e["KeyMaterialState"]) for e in listed] == [
        (id1, "CURRENT"), (id2, "PENDING_ROTATION"),
    ]  # fmt: skip
    assert [e.get("KeyMaterialDescription") for e in listed] == ["first", "second"]
    assert {e["ImportState"] for e in listed} == {"IMPORTED"}
    assert "RotationDate" not in listed[1] and kms.list_key_rotations(KeyId=key)["Rotations"] == []
    _fails("KMSInvalidStateException", _import, kms, key, m3, ImportType="NEW_KEY_MATERIAL")
    _rotate(kms, key, 1)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["CurrentKeyMaterialId"] == id2
    blobs.append(kms.encrypt(KeyId=key, Plaintext=b"v2")["CiphertextBlob"])
    id3 = _import(kms, key, m3, ImportType="NEW_KEY_MATERIAL")
    _rotate(kms, key, 2)
    blobs.append(kms.encrypt(KeyId=key, Plaintext=b"v3")["CiphertextBlob"])
    rotations = kms.list_key_rotations(KeyId=key)["Rotations"]
    assert [(r["KeyMaterialId"], r["KeyMaterialState"], r["RotationType"]) for r in rotations] == [
        (id2, "NON_CURRENT", "ON_DEMAND"), (id3, "CURRENT", "ON_DEMAND"),
    ]  # fmt: skip
    for i, blob in enumerate(blobs):
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == f"v{i + 1}".encode()
    # Reimport rules: KeyMaterialId must name the material brought; descriptions can change.
    _fails("IncorrectKeyMaterialException", _import, kms, key, m2, KeyMaterialId=id1)
    _fails("IncorrectKeyMaterialException", _import, kms, key, os.urandom(32))
    assert _import(kms, key, m1, KeyMaterialId=id1, KeyMaterialDescription="renamed") == id1
    assert _materials(kms, key)[0]["KeyMaterialDescription"] == "renamed"
    # Deleting an old material makes the key PendingImport until it is imported again.
    deleted = kms.delete_imported_key_material(KeyId=key, KeyMaterialId=id1)
    assert deleted["KeyMaterialId"] == id1
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"
    assert _materials(kms, key)[0]["ImportState"] == "PENDING_IMPORT"
    _fails("KMSInvalidStateException", kms.decrypt, CiphertextBlob=blobs[0])
    _fails("NotFoundException", kms.delete_imported_key_material, KeyId=key,
           KeyMaterialId="0" * 64)  # fmt: skip
    assert _import(kms, key, m1) == id1
    assert kms.decrypt(CiphertextBlob=blobs[0])["Plaintext"] == b"v1"


def test_pending_material_can_be_deleted_and_replaced(kms: Any) -> None:
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    _import(kms, key, os.urandom(32))
    pending = _import(kms, key, os.urandom(32), ImportType="NEW_KEY_MATERIAL")
    kms.delete_imported_key_material(KeyId=key, KeyMaterialId=pending)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    assert len(_materials(kms, key)) == 1
    other = _import(kms, key, os.urandom(32), ImportType="NEW_KEY_MATERIAL")
    assert _materials(kms, key)[-1]["KeyMaterialId"] == other


def test_material_options_are_for_symmetric_keys_only(kms: Any) -> None:
    key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC", Origin="EXTERNAL")
    key_id = key["KeyMetadata"]["KeyId"]
    _fails("ValidationException", _import, kms, key_id, os.urandom(32),
           ImportType="NEW_KEY_MATERIAL")  # fmt: skip
    _fails("ValidationException", _import, kms, key_id, os.urandom(32),
           KeyMaterialDescription="x")  # fmt: skip
    symmetric = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    _fails("ValidationException", _import, kms, symmetric, os.urandom(32), ImportType="BOGUS")
    _fails("IncorrectKeyMaterialException", _import, kms, symmetric, os.urandom(32),
           ImportType="EXISTING_KEY_MATERIAL")  # fmt: skip
    _fails("UnsupportedOperationException", kms.enable_key_rotation, KeyId=symmetric)
