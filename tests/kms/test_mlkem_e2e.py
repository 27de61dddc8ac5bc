"""ML-KEM keys (FIPS 203) through boto3 against a real server: CreateKey, DescribeKey,
GetPublicKey, Encapsulate and Decapsulate (implicit rejection), ML-KEM data key pairs, grants and
key policies, the trail, multi-Region replicas and the aws CLI; interoperability with
``cryptography``. ML_KEM_512 is refused (the installed ``cryptography`` has no ML-KEM-512)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import botocore
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem

from tests.audit.conftest import ingest_journal
from tests.conftest import AWS_CLI, REGION, Server, error_code
from tests.kms.access_support import (
    ACCOUNT_B,
    ALLOW_ALL,
    ROOT_STATEMENT,
    Env,
    access_env,
    allow,
    denied,
)

USAGE = "ENCAPSULATE_DECAPSULATE"
ML_KEM = {"EncapsulationAlgorithm": "ML_KEM"}
#: key spec -> (public key class, private key class, ciphertext length)
KINDS: dict[str, tuple[type[Any], type[Any], int]] = {
    "ML_KEM_768": (mlkem.MLKEM768PublicKey, mlkem.MLKEM768PrivateKey, 1088),
    "ML_KEM_1024": (mlkem.MLKEM1024PublicKey, mlkem.MLKEM1024PrivateKey, 1568),
}
OTHER_LISTS = {
    "EncryptionAlgorithms",
    "SigningAlgorithms",
    "KeyAgreementAlgorithms",
    "MacAlgorithms",
}
NOT_OFFERED = "the installed cryptography library offers ML-KEM-768 and ML-KEM-1024 only"


def _code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as exc:
        call()
    return error_code(exc)


def _create(kms: Any, spec: str, **extra: Any) -> dict[str, Any]:
    return dict(kms.create_key(KeySpec=spec, KeyUsage=USAGE, **extra)["KeyMetadata"])


def _decap(kms: Any, key: str, blob: bytes) -> bytes:
    out = kms.decapsulate(KeyId=key, SharedSecretCiphertextBlob=blob, **ML_KEM)
    assert out["EncapsulationAlgorithm"] == "ML_KEM"
    return bytes(out["SharedSecret"])


@pytest.fixture(scope="module")
def keys(kms: Any) -> dict[str, dict[str, Any]]:
    return {spec: _create(kms, spec, Description=f"kem {spec}") for spec in KINDS}


@pytest.mark.parametrize("spec", KINDS)
def test_create_and_describe(kms: Any, keys: dict[str, dict[str, Any]], spec: str) -> None:
    created = keys[spec]
    meta = kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]
    assert created["EncapsulationAlgorithms"] == meta["EncapsulationAlgorithms"] == ["ML_KEM"]
    assert meta["KeySpec"] == meta["CustomerMasterKeySpec"] == spec
    assert meta["KeyUsage"] == USAGE and meta["KeyState"] == "Enabled"
    assert not OTHER_LISTS & meta.keys()
    assert _code(lambda: kms.enable_key_rotation(KeyId=meta["KeyId"])) == (
        "UnsupportedOperationException"
    )


@pytest.mark.parametrize("spec", KINDS)
def test_public_key_encapsulates_outside(
    kms: Any, keys: dict[str, dict[str, Any]], spec: str
) -> None:
    public_class, _, _ = KINDS[spec]
    out = kms.get_public_key(KeyId=keys[spec]["KeyId"])
    assert out["EncapsulationAlgorithms"] == ["ML_KEM"] and out["KeyUsage"] == USAGE
    assert out["KeySpec"] == spec and not OTHER_LISTS & out.keys()
    public = serialization.load_der_public_key(out["PublicKey"])
    assert isinstance(public, public_class)
    secret, blob = public.encapsulate()
    assert _decap(kms, keys[spec]["Arn"], blob) == secret


@pytest.mark.parametrize("spec", KINDS)
def test_encapsulate_then_decapsulate(kms: Any, keys: dict[str, dict[str, Any]], spec: str) -> None:
    _, _, length = KINDS[spec]
    key = keys[spec]
    alias = f"alias/kem-{spec.lower().replace('_', '-')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    out = kms.encapsulate(KeyId=alias, **ML_KEM)
    assert out["KeyId"] == key["Arn"] and out["EncapsulationAlgorithm"] == "ML_KEM"
    secret, blob = out["SharedSecret"], out["SharedSecretCiphertextBlob"]
    assert len(secret) == 32 and len(blob) == length
    back = kms.decapsulate(KeyId=key["KeyId"], SharedSecretCiphertextBlob=blob, **ML_KEM)
    assert back["SharedSecret"] == secret and back["KeyId"] == key["Arn"]
    again = kms.encapsulate(KeyId=key["KeyId"], **ML_KEM)
    assert again["SharedSecret"] != secret and again["SharedSecretCiphertextBlob"] != blob


@pytest.mark.parametrize("spec", KINDS)
def test_implicit_rejection_and_wrong_lengths(
    kms: Any, keys: dict[str, dict[str, Any]], spec: str
) -> None:
    _, private_class, length = KINDS[spec]
    key = keys[spec]["KeyId"]
    out = kms.encapsulate(KeyId=key, **ML_KEM)
    secret, blob = out["SharedSecret"], out["SharedSecretCiphertextBlob"]
    altered = blob[:100] + bytes([blob[100] ^ 1]) + blob[101:]
    rejected = _decap(kms, key, altered)
    assert len(rejected) == 32 and rejected != secret
    assert _decap(kms, key, altered) == rejected  # implicit rejection is deterministic
    stranger = private_class.generate().public_key()  # another key of the same spec
    theirs, foreign = stranger.encapsulate()
    mine = _decap(kms, key, foreign)
    assert len(mine) == 32 and mine != theirs
    other_length = KINDS["ML_KEM_1024" if spec == "ML_KEM_768" else "ML_KEM_768"][2]
    for size in (other_length, length - 1, length + 1, 768, 1):
        bad = (blob * 2)[:size]
        assert _code(partial(_decap, kms, key, bad)) == "InvalidCiphertextException"


def test_validation_and_key_usage_errors(kms: Any, keys: dict[str, dict[str, Any]]) -> None:
    key = keys["ML_KEM_768"]["KeyId"]
    blob = kms.encapsulate(KeyId=key, **ML_KEM)["SharedSecretCiphertextBlob"]
    wrong: list[Callable[[], Any]] = [
        lambda: kms.encapsulate(KeyId=key, EncapsulationAlgorithm="RSAES_OAEP_SHA_256"),
        lambda: kms.decapsulate(
            KeyId=key, SharedSecretCiphertextBlob=blob, EncapsulationAlgorithm="ML_DSA"
        ),
    ]
    for call in wrong:
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == "ValidationException"
        message = exc.value.response["Error"]["Message"]
        assert "at 'encapsulationAlgorithm'" in message
        assert "Member must satisfy enum value set: [ML_KEM]" in message
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    ecc = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    for other in (symmetric, rsa, ecc["KeyId"]):
        assert _code(partial(kms.encapsulate, KeyId=other, **ML_KEM)) == (
            "InvalidKeyUsageException"
        )
        assert _code(partial(_decap, kms, other, blob)) == "InvalidKeyUsageException"
    peer = kms.get_public_key(KeyId=ecc["KeyId"])["PublicKey"]
    for call in (
        lambda: kms.sign(KeyId=key, Message=b"m", SigningAlgorithm="ML_DSA_SHAKE_256"),
        lambda: kms.encrypt(KeyId=key, Plaintext=b"p"),
        lambda: kms.derive_shared_secret(KeyId=key, KeyAgreementAlgorithm="ECDH", PublicKey=peer),
        lambda: kms.generate_mac(KeyId=key, Message=b"m", MacAlgorithm="HMAC_SHA_256"),
        lambda: kms.generate_data_key_pair(KeyId=key, KeyPairSpec="ML_KEM_768"),
    ):
        assert _code(call) == "InvalidKeyUsageException"


def test_create_key_refusals(kms: Any) -> None:
    with pytest.raises(ClientError) as exc:
        _create(kms, "ML_KEM_512")
    assert error_code(exc) == "UnsupportedOperationException"
    assert NOT_OFFERED in exc.value.response["Error"]["Message"]
    for usage in ("SIGN_VERIFY", "ENCRYPT_DECRYPT", "KEY_AGREEMENT"):
        with pytest.raises(ClientError) as exc:
            kms.create_key(KeySpec="ML_KEM_768", KeyUsage=usage)
        assert error_code(exc) == "ValidationException"
    assert _code(lambda: kms.create_key(KeySpec="ML_KEM_1024")) == "ValidationException"
    assert _code(lambda: kms.create_key(KeySpec="RSA_2048", KeyUsage=USAGE)) == (
        "ValidationException"
    )
    assert _code(lambda: _create(kms, "ML_KEM_768", Origin="EXTERNAL")) == (
        "UnsupportedOperationException"
    )


def test_key_states_and_dry_run(kms: Any) -> None:
    key = _create(kms, "ML_KEM_768")["KeyId"]
    blob = kms.encapsulate(KeyId=key, **ML_KEM)["SharedSecretCiphertextBlob"]
    for call in (
        lambda: kms.encapsulate(KeyId=key, DryRun=True, **ML_KEM),
        lambda: kms.decapsulate(KeyId=key, SharedSecretCiphertextBlob=blob, DryRun=True, **ML_KEM),
    ):
        assert _code(call) == "DryRunOperationException"
    kms.disable_key(KeyId=key)
    assert _code(lambda: kms.encapsulate(KeyId=key, **ML_KEM)) == "DisabledException"
    assert _code(lambda: _decap(kms, key, blob)) == "DisabledException"
    kms.enable_key(KeyId=key)
    assert len(_decap(kms, key, blob)) == 32
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert _code(lambda: kms.encapsulate(KeyId=key, **ML_KEM)) == "KMSInvalidStateException"
    assert _code(lambda: _decap(kms, key, blob)) == "KMSInvalidStateException"


@pytest.mark.parametrize("spec", KINDS)
def test_data_key_pair(kms: Any, key_id: str, spec: str) -> None:
    public_class, private_class, length = KINDS[spec]
    out = kms.generate_data_key_pair(KeyId=key_id, KeyPairSpec=spec)
    assert out["KeyPairSpec"] == spec
    private = serialization.load_der_private_key(out["PrivateKeyPlaintext"], password=None)
    assert isinstance(private, private_class)
    assert len(out["PrivateKeyPlaintext"]) == 86  # PKCS#8 in seed form, as AWS documents
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert private.public_key().public_bytes(*spki) == out["PublicKey"]
    public = serialization.load_der_public_key(out["PublicKey"])
    assert isinstance(public, public_class)
    secret, blob = public.encapsulate()
    assert len(blob) == length and private.decapsulate(blob) == secret
    opened = kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"])["Plaintext"]
    assert opened == out["PrivateKeyPlaintext"]
    bare = kms.generate_data_key_pair_without_plaintext(KeyId=key_id, KeyPairSpec=spec)
    assert "PrivateKeyPlaintext" not in bare
    second = kms.decrypt(CiphertextBlob=bare["PrivateKeyCiphertextBlob"])["Plaintext"]
    second_key = serialization.load_der_private_key(second, password=None)
    assert second_key.public_key().public_bytes(*spki) == bare["PublicKey"] != out["PublicKey"]


def test_data_key_pair_ml_kem_512_refused(kms: Any, key_id: str) -> None:
    for call in (kms.generate_data_key_pair, kms.generate_data_key_pair_without_plaintext):
        with pytest.raises(ClientError) as exc:
            call(KeyId=key_id, KeyPairSpec="ML_KEM_512")
        assert error_code(exc) == "UnsupportedOperationException"
        assert NOT_OFFERED in exc.value.response["Error"]["Message"]


def test_multi_region_replica(server: Server, kms: Any) -> None:
    west = server.client(region="eu-west-1")
    primary = _create(kms, "ML_KEM_1024", MultiRegion=True)
    key = primary["KeyId"]
    replica = kms.replicate_key(KeyId=key, ReplicaRegion="eu-west-1")["ReplicaKeyMetadata"]
    assert replica["EncapsulationAlgorithms"] == ["ML_KEM"] and replica["KeySpec"] == "ML_KEM_1024"
    public = kms.get_public_key(KeyId=key)["PublicKey"]
    assert west.get_public_key(KeyId=key)["PublicKey"] == public
    east_out = kms.encapsulate(KeyId=key, **ML_KEM)
    west_out = west.encapsulate(KeyId=key, **ML_KEM)
    assert west_out["KeyId"] == replica["Arn"] != primary["Arn"]
    assert _decap(west, key, east_out["SharedSecretCiphertextBlob"]) == east_out["SharedSecret"]
    assert _decap(kms, key, west_out["SharedSecretCiphertextBlob"]) == west_out["SharedSecret"]


# --- access control and the trail, on a server of their own ------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with access_env(tmp_path_factory.mktemp("mlkem-access")) as environment:
        yield environment


def test_grant_for_encapsulate_only(env: Env) -> None:
    key = _create(env.admin, "ML_KEM_768")
    arn = key["Arn"]
    jay = env.user("kem-jay")
    kms = jay.client()
    denied(lambda: kms.encapsulate(KeyId=arn, **ML_KEM))
    env.admin.create_grant(KeyId=arn, GranteePrincipal=jay.arn, Operations=["Encapsulate"])
    out = kms.encapsulate(KeyId=arn, **ML_KEM)
    blob = out["SharedSecretCiphertextBlob"]
    assert _decap(env.admin, arn, blob) == out["SharedSecret"]
    message = denied(lambda: _decap(kms, arn, blob))
    assert message.startswith(f"User: {jay.arn} is not authorized to perform: kms:Decapsulate")
    denied(lambda: kms.get_public_key(KeyId=arn))
    env.admin.create_grant(
        KeyId=arn, GranteePrincipal=jay.arn, Operations=["Decapsulate", "GetPublicKey"]
    )
    assert _decap(kms, arn, blob) == out["SharedSecret"]
    for operations in (["Sign"], ["Encrypt"], ["Encapsulate", "DeriveSharedSecret"]):
        with pytest.raises(ClientError) as exc:
            env.admin.create_grant(KeyId=arn, GranteePrincipal=jay.arn, Operations=operations)
        assert error_code(exc) == "ValidationException"
    symmetric = env.admin.create_key()["KeyMetadata"]["Arn"]
    with pytest.raises(ClientError) as exc:
        env.admin.create_grant(
            KeyId=symmetric, GranteePrincipal=jay.arn, Operations=["Encapsulate"]
        )
    assert error_code(exc) == "ValidationException"


def test_cross_account_key_policy(env: Env) -> None:
    b_root = f"arn:aws:iam::{ACCOUNT_B}:root"
    statements = [ROOT_STATEMENT, allow(b_root, "kms:Encapsulate")]
    policy = {"Version": "2012-10-17", "Statement": statements}
    key = env.admin.create_key(KeySpec="ML_KEM_768", KeyUsage=USAGE, Policy=json.dumps(policy))
    arn = key["KeyMetadata"]["Arn"]
    kms = env.user("kem-b", ALLOW_ALL, account=ACCOUNT_B).client()
    out = kms.encapsulate(KeyId=arn, **ML_KEM)
    assert out["KeyId"] == arn
    assert _decap(env.admin, arn, out["SharedSecretCiphertextBlob"]) == out["SharedSecret"]
    message = denied(lambda: _decap(kms, arn, out["SharedSecretCiphertextBlob"]))
    assert "kms:Decapsulate" in message


def _trail(env: Env) -> list[dict[str, Any]]:
    ingest_journal(env.server.data_dir)
    with sqlite3.connect(env.server.data_dir / "audit.db") as conn:
        rows = conn.execute("SELECT body FROM audit_events WHERE kind='event' ORDER BY seq")
        return [json.loads(body) for (body,) in rows]


def test_trail_keeps_no_secret(env: Env) -> None:
    kms = env.admin
    key = _create(kms, "ML_KEM_1024")["KeyId"]
    out = kms.encapsulate(KeyId=key, **ML_KEM)
    blob = out["SharedSecretCiphertextBlob"]
    back = kms.decapsulate(KeyId=key, SharedSecretCiphertextBlob=blob, **ML_KEM)
    ids = {
        out["ResponseMetadata"]["RequestId"]: "Encapsulate",
        back["ResponseMetadata"]["RequestId"]: "Decapsulate",
    }
    events = [e for e in _trail(env) if e["requestID"] in ids]
    assert sorted(e["eventName"] for e in events) == ["Decapsulate", "Encapsulate"]
    for event in events:
        assert event["eventName"] == ids[event["requestID"]] and "errorCode" not in event
        assert event["requestParameters"] == {"keyId": key, "encapsulationAlgorithm": "ML_KEM"}
        assert event["responseElements"] is None and event["readOnly"] is True
        assert event["resources"][0]["ARN"].endswith(key)
    raw = b"".join(p.read_bytes() for p in env.server.data_dir.rglob("*") if p.is_file())
    for secret in (out["SharedSecret"], blob[:48], blob[-48:]):
        for form in (secret, base64.b64encode(secret), secret.hex().encode()):
            assert form not in raw


# --- the aws CLI -------------------------------------------------------------------------------


def _cli_env(server: Server, work: Path) -> dict[str, str]:
    """The CLI's environment; when the CLI's own botocore predates ML-KEM, the installed
    botocore's KMS model (the one boto3 uses) is put on its AWS_DATA_PATH."""
    env = server.cli_env()
    probe = [AWS_CLI, "kms", "encapsulate", "help"]
    known = subprocess.run(probe, env=env, capture_output=True, timeout=60, check=False)
    if known.returncode != 0:
        model = Path(botocore.__file__).parent / "data" / "kms" / "2014-11-01"
        target = work / "models" / "kms" / "2014-11-01"
        target.mkdir(parents=True)
        for name in os.listdir(model):
            shutil.copy(model / name, target / name)
        env["AWS_DATA_PATH"] = str(work / "models")
    return env


def test_aws_cli_round_trip(server: Server, tmp_path: Path) -> None:
    env = _cli_env(server, tmp_path)

    def aws(*args: str) -> Any:
        cmd = [AWS_CLI, "kms", *args, "--endpoint-url", server.endpoint, "--output", "json"]
        proc = subprocess.run(
            cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    meta = aws("create-key", "--key-spec", "ML_KEM_768", "--key-usage", USAGE)["KeyMetadata"]
    key = meta["KeyId"]
    assert meta["EncapsulationAlgorithms"] == ["ML_KEM"]
    out = aws("encapsulate", "--key-id", key, "--encapsulation-algorithm", "ML_KEM")
    secret = base64.b64decode(out["SharedSecret"])
    (tmp_path / "ct.bin").write_bytes(base64.b64decode(out["SharedSecretCiphertextBlob"]))
    back = aws(
        "decapsulate", "--key-id", key, "--encapsulation-algorithm", "ML_KEM",
        "--shared-secret-ciphertext-blob", "fileb://ct.bin",
    )  # fmt: skip
    assert base64.b64decode(back["SharedSecret"]) == secret and len(secret) == 32
    public_der = base64.b64decode(aws("get-public-key", "--key-id", key)["PublicKey"])
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, mlkem.MLKEM768PublicKey)
    theirs, blob = public.encapsulate()
    (tmp_path / "outside.bin").write_bytes(blob)
    mine = aws(
        "decapsulate", "--key-id", f"arn:aws:kms:{REGION}:{meta['AWSAccountId']}:key/{key}",
        "--encapsulation-algorithm", "ML_KEM",
        "--shared-secret-ciphertext-blob", "fileb://outside.bin",
    )  # fmt: skip
    assert base64.b64decode(mine["SharedSecret"]) == theirs
