"""Multi-Region keys with imported material, through boto3 (AWS's documented rules): a replica
starts in PendingImport and takes only its primary's material, imported into it on its own; each
region has its own expiration and key state; the shared material outlives one region's delete."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, error_code
from tests.kms.test_import_e2e import _import, _wrap

WEST = "eu-west-1"
DAY = 86_400


def _state(client: Any, key: str) -> str:
    return str(client.describe_key(KeyId=key)["KeyMetadata"]["KeyState"])


def _fails(call: Any, code: str) -> None:
    with pytest.raises(ClientError) as exc:
        call()
    assert error_code(exc) == code


def _wait_state(client: Any, key: str, state: str) -> None:
    deadline = time.monotonic() + 10
    while _state(client, key) != state:
        assert time.monotonic() < deadline, f"{key} never reached {state}"
        time.sleep(0.1)


def test_replica_of_imported_key(clocked: tuple[Server, Path]) -> None:
    server, offset = clocked
    kms, west = server.client(), server.client(region=WEST)
    key = kms.create_key(Origin="EXTERNAL", MultiRegion=True)["KeyMetadata"]["KeyId"]
    material = os.urandom(32)
    _import(kms, key, material, "RSAES_OAEP_SHA_256")
    blob = kms.encrypt(KeyId=key, Plaintext=b"from the primary")["CiphertextBlob"]

    replica = kms.replicate_key(KeyId=key, ReplicaRegion=WEST)["ReplicaKeyMetadata"]
    assert replica["KeyState"] == "PendingImport" and replica["Origin"] == "EXTERNAL"
    assert _state(west, key) == "PendingImport" and _state(kms, key) == "Enabled"
    _fails(lambda: west.decrypt(CiphertextBlob=blob), "KMSInvalidStateException")

    # only the primary's material, and no new material, goes into a replica
    _fails(lambda: _import(west, key, os.urandom(32), "RSAES_OAEP_SHA_1"),
           "IncorrectKeyMaterialException")  # fmt: skip
    _fails(lambda: _import(west, key, material, "RSAES_OAEP_SHA_1",
                           ImportType="NEW_KEY_MATERIAL",
                           ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE"),
           "UnsupportedOperationException")  # fmt: skip
    assert _state(west, key) == "PendingImport"

    valid_to = time.time() + 10 * DAY
    _import(west, key, material, "RSA_AES_KEY_WRAP_SHA_256",
            ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)  # fmt: skip
    assert _state(west, key) == "Enabled"
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from the primary"
    back = west.encrypt(KeyId=key, Plaintext=b"from the replica")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=back)["Plaintext"] == b"from the replica"
    # each region's own expiration
    west_meta = west.describe_key(KeyId=key)["KeyMetadata"]
    assert west_meta["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert west_meta["ValidTo"].timestamp() == pytest.approx(valid_to, abs=1)
    home_meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert home_meta["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert "ValidTo" not in home_meta

    # deleting in the primary leaves the replica usable (independent key states)
    kms.delete_imported_key_material(KeyId=key)
    assert _state(kms, key) == "PendingImport" and _state(west, key) == "Enabled"
    _fails(lambda: kms.decrypt(CiphertextBlob=blob), "KMSInvalidStateException")
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from the primary"
    _import(kms, key, material, "RSAES_OAEP_SHA_1")
    assert kms.decrypt(CiphertextBlob=back)["Plaintext"] == b"from the replica"

    # the replica's material expires on its own; the primary is unaffected
    offset.write_text(str(11 * DAY))
    _wait_state(west, key, "PendingImport")
    assert _state(kms, key) == "Enabled"
    _fails(lambda: west.decrypt(CiphertextBlob=blob), "KMSInvalidStateException")
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from the primary"

    # with the material deleted everywhere, a reimport into the replica restores it there
    kms.delete_imported_key_material(KeyId=key)
    _fails(lambda: kms.decrypt(CiphertextBlob=blob), "KMSInvalidStateException")
    _import(west, key, material, "RSAES_OAEP_SHA_256")
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from the primary"
    assert _state(kms, key) == "PendingImport"
    west.delete_imported_key_material(KeyId=key)
    assert _state(west, key) == "PendingImport"
    _fails(lambda: west.decrypt(CiphertextBlob=back), "KMSInvalidStateException")


def test_a_primary_without_material_does_not_replicate(server: Server) -> None:
    kms, west = server.client(), server.client(region=WEST)
    key = kms.create_key(Origin="EXTERNAL", MultiRegion=True)["KeyMetadata"]["KeyId"]
    assert _state(kms, key) == "PendingImport"
    # AWS's key-state table: ReplicateKey fails on a PendingImport key
    _fails(lambda: kms.replicate_key(KeyId=key, ReplicaRegion=WEST), "KMSInvalidStateException")
    material = os.urandom(32)
    _import(kms, key, material, "RSAES_OAEP_SHA_256")
    kms.disable_key(KeyId=key)  # nor does a Disabled one (AWS's key-state table, too)
    _fails(lambda: kms.replicate_key(KeyId=key, ReplicaRegion=WEST), "DisabledException")
    kms.enable_key(KeyId=key)
    assert kms.replicate_key(KeyId=key, ReplicaRegion=WEST)["ReplicaKeyMetadata"]["KeyState"] == (
        "PendingImport"
    )
    _import(west, key, material, "RSAES_OAEP_SHA_256")
    kms.disable_key(KeyId=key)  # key states are independent across regions
    assert _state(west, key) == "Enabled" and _state(kms, key) == "Disabled"
    blob = west.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    _fails(lambda: kms.decrypt(CiphertextBlob=blob), "DisabledException")
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_each_region_has_its_own_import_parameters(clocked: tuple[Server, Path]) -> None:
    server, _ = clocked
    kms, west = server.client(), server.client(region=WEST)
    key = kms.create_key(Origin="EXTERNAL", MultiRegion=True)["KeyMetadata"]["KeyId"]
    material = os.urandom(32)
    _import(kms, key, material, "RSAES_OAEP_SHA_256")
    kms.replicate_key(KeyId=key, ReplicaRegion=WEST)
    algorithm = "RSAES_OAEP_SHA_256"

    def params(client: Any) -> Any:
        return client.get_parameters_for_import(
            KeyId=key, WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_2048"
        )

    def with_token(client: Any, got: Any) -> Any:
        return client.import_key_material(
            KeyId=key, ImportToken=got["ImportToken"],
            EncryptedKeyMaterial=_wrap(got["PublicKey"], algorithm, material),
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )  # fmt: skip

    east_params = params(kms)
    west_params = params(west)  # does not void the primary's outstanding token
    with_token(west, west_params)
    assert _state(west, key) == "Enabled"
    # a region's token is not another region's
    _fails(lambda: with_token(kms, west_params), "InvalidImportTokenException")
    with_token(kms, east_params)  # reimport of the same material with the earlier token
    _fails(lambda: with_token(kms, params(kms) and east_params), "InvalidImportTokenException")
    assert _state(kms, key) == "Enabled"
