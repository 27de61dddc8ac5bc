"""The HSM's crypto recipes against Wycheproof vectors (valid and must-fail cases)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.crypto.asymmetric import load_private, load_public
from strongroom.crypto.hsm_symmetric import (
    GCM_IV_BYTES,
    GCM_TAG_BYTES,
    AesGcmKey,
    CryptoFailure,
    aes_unwrap_pad,
    hmac_verify,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "wycheproof"  # tests/vectors


def _tests(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    data = json.loads((VECTORS / name).read_text())
    return [(g, t) for g in data["testGroups"] for t in g["tests"]]


def test_aes_gcm() -> None:
    checked = 0
    for group, t in _tests("aes_gcm_test.json"):
        if group["ivSize"] != GCM_IV_BYTES * 8 or group["tagSize"] != GCM_TAG_BYTES * 8:
            continue
        if group["keySize"] not in (128, 192, 256):
            continue
        blob = bytes.fromhex(t["iv"] + t["ct"] + t["tag"])
        key = AesGcmKey(bytes.fromhex(t["key"]))
        aad = bytes.fromhex(t["aad"])
        if t["result"] == "invalid":
            with pytest.raises(CryptoFailure):
                key.decrypt(blob, aad)
        else:
            assert key.decrypt(blob, aad) == bytes.fromhex(t["msg"])
        checked += 1
    assert checked > 50


def test_aes_kwp() -> None:
    for group, t in _tests("aes_kwp_test.json"):
        if group["keySize"] not in (128, 192, 256):
            continue
        kek, ct = bytes.fromhex(t["key"]), bytes.fromhex(t["ct"])
        if t["result"] == "valid":
            assert aes_unwrap_pad(kek, ct) == bytes.fromhex(t["msg"])
        elif t["result"] == "invalid":
            with pytest.raises(CryptoFailure):
                aes_unwrap_pad(kek, ct)


@pytest.mark.parametrize("name", ["hmac_sha256_test.json", "hmac_sha512_test.json"])
def test_hmac(name: str) -> None:
    hash_name = "sha" + name.split("_")[1].removeprefix("sha")
    for group, t in _tests(name):
        if group["tagSize"] != {"sha256": 256, "sha512": 512}[hash_name]:
            continue
        ok = hmac_verify(
            bytes.fromhex(t["key"]), hash_name, bytes.fromhex(t["msg"]), bytes.fromhex(t["tag"])
        )
        assert ok == (t["result"] == "valid"), t["tcId"]


def test_rsa_oaep_decrypt() -> None:
    for group, t in _tests("rsa_oaep_2048_sha256_mgf1sha256_test.json"):
        key = load_private(bytes.fromhex(group["privateKeyPkcs8"]))
        if t["label"]:
            continue
        ct = bytes.fromhex(t["ct"])
        if t["result"] == "valid":
            assert key.decrypt_oaep("sha256", ct) == bytes.fromhex(t["msg"])
        elif t["result"] == "invalid":
            with pytest.raises(CryptoFailure):
                key.decrypt_oaep("sha256", ct)


def test_ecdsa_p256_verify() -> None:
    for group, t in _tests("ecdsa_secp256r1_sha256_test.json"):
        key = load_public(
            bytes.fromhex(group["publicKeyDer"] if "publicKeyDer" in group else group["keyDer"])
        )
        valid = key.verify("ecdsa", "sha256", bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"]))
        if t["result"] == "valid":
            assert valid, t["tcId"]
        elif t["result"] == "invalid":
            assert not valid, t["tcId"]
