"""Faults in running processes (reliability figures C5 and C6), end to end.

* A repeated block from the random source while ``serve`` runs (the testing-only trigger file
  of :data:`strongroom.crypto.rng.REPEAT_FILE_ENV`) latches the generator: every call that
  needs random bytes then fails with an AWS-shaped 500, and keeps failing after the source is
  sound again, while calls that draw nothing (Decrypt, VerifyMac, DescribeKey, ListKeys) go on.
* A key pair that fails its conditional pairwise test (:mod:`strongroom.crypto.pairwise`,
  injected by naming the test in ``STRONGROOM_SELF_TEST_FAULT``) is an error, never a key: in
  ``serve`` (CreateKey, GenerateDataKeyPair) and in an HSM node (generate-asymmetric-pair).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from strongroom.crypto import pairwise, rng
from strongroom.crypto.self_test import FAULT_ENV
from strongroom.hsm.client import HsmClientError
from strongroom.hsm.errors import ErrorCode
from tests.conftest import ACCOUNT, Server, running_server
from tests.hsm.conftest import NodeProc, activate, free_port
from tests.signing import post, sign

INTERNAL = {"__type": "KMSInternalException", "message": "An internal error occurred."}


def _internal_error(call: Callable[[], Any]) -> None:
    with pytest.raises(ClientError) as exc:
        call()
    response = exc.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["Error"] == {"Code": INTERNAL["__type"], "Message": INTERNAL["message"]}


def _raw_encrypt(server: Server, key_id: str) -> tuple[int, bytes]:
    akid, secret = server.credentials()
    body = json.dumps({"KeyId": key_id, "Plaintext": "AAAA"}).encode()
    headers = sign(body, "TrentService.Encrypt", akid, secret, host=f"127.0.0.1:{server.port}")
    status, _, answer = post(server.port, body, headers)
    return status, answer


def test_a_repeat_in_a_running_serve_latches_the_generator(tmp_path: Path) -> None:
    trigger = tmp_path / "repeat-now"
    plaintext = b"canary plaintext 7f3a9c"
    with running_server(tmp_path / "data", env={rng.REPEAT_FILE_ENV: str(trigger)}) as server:
        kms = server.client()
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key, Plaintext=plaintext)["CiphertextBlob"]
        mac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
        mac_id = mac_key["KeyMetadata"]["KeyId"]
        mac = kms.generate_mac(KeyId=mac_id, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
        keys_before = len(kms.list_keys()["Keys"])

        trigger.touch()  # the source now repeats its last block
        draws: list[Callable[[], Any]] = [
            lambda: kms.encrypt(KeyId=key, Plaintext=plaintext),
            lambda: kms.generate_random(NumberOfBytes=32),
            lambda: kms.generate_data_key(KeyId=key, KeySpec="AES_256"),
            kms.create_key,
            lambda: kms.create_grant(
                KeyId=key,
                GranteePrincipal=f"arn:aws:iam::{ACCOUNT}:root",
                Operations=["Decrypt"],
            ),
        ]
        for call in draws:
            _internal_error(call)
        status, answer = _raw_encrypt(server, key)
        assert status == 500 and json.loads(answer) == INTERNAL  # no traceback, no detail

        trigger.unlink()  # the source is sound again: the generator stays latched
        _internal_error(lambda: kms.encrypt(KeyId=key, Plaintext=plaintext))
        _internal_error(lambda: kms.generate_random(NumberOfBytes=16))

        # calls that draw nothing go on
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
        verified = kms.verify_mac(KeyId=mac_id, Message=b"m", MacAlgorithm="HMAC_SHA_256", Mac=mac)
        assert verified["MacValid"]
        assert kms.describe_key(KeyId=key)["KeyMetadata"]["Enabled"]
        assert len(kms.list_keys()["Keys"]) == keys_before  # the failed CreateKey made nothing
    log = server.log()
    assert "the random generator repeated a draw: it is latched" in log
    assert plaintext.decode() not in log


def test_a_key_that_fails_its_pairwise_test_in_serve_is_never_stored(tmp_path: Path) -> None:
    name = pairwise.test_name("ECDSA P-384")
    with running_server(tmp_path / "data", env={FAULT_ENV: name}) as server:
        kms = server.client()
        keys_before = len(kms.list_keys()["Keys"])
        _internal_error(lambda: kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY"))
        assert len(kms.list_keys()["Keys"]) == keys_before
        other = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")  # other curves
        wrapping = kms.create_key()["KeyMetadata"]["KeyId"]
        _internal_error(
            lambda: kms.generate_data_key_pair(KeyId=wrapping, KeyPairSpec="ECC_NIST_P384")
        )
        pair = kms.generate_data_key_pair(KeyId=wrapping, KeyPairSpec="ECC_NIST_P521")
        assert pair["KeyPairSpec"] == "ECC_NIST_P521"
        assert len(kms.list_keys()["Keys"]) == keys_before + 2
        assert other["KeyMetadata"]["KeySpec"] == "ECC_NIST_P256"
    assert f"{name} failed: the new key was discarded" in server.log()


def test_a_key_that_fails_its_pairwise_test_in_an_hsm_is_never_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = pairwise.test_name("ECDSA P-384")
    monkeypatch.setenv(FAULT_ENV, name)  # the node process inherits it
    node = NodeProc(tmp_path / "node", free_port())
    node.start()
    try:
        activate(node, {"alice": "alice-pass"})
        with node.client() as client:
            client.login("alice", "alice-pass")
            with pytest.raises(HsmClientError) as exc:
                client.generate_key_pair("ec", "pub384", "priv384", curve="secp384r1")
            assert exc.value.code == ErrorCode.CRYPTO_FAILED
            assert exc.value.message == f"{name} failed: the new key was discarded"
            assert client.find_keys() == []
            client.generate_key_pair("ec", "pub256", "priv256", curve="secp256r1")
            labels = sorted(k.label for k in client.find_keys())
            assert labels == ["priv256", "pub256"]
    finally:
        node.stop()
