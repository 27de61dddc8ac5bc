"""``strongroom backup`` while ``serve`` answers calls, and ``strongroom restore`` into a new
data directory (reliability figure D6): every ciphertext made before the backup decrypts
after the restore, the keys, aliases, policies, grants, tags and rotation settings are the
same, what changed after the backup is not there, and the restored trail verifies."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import STRONGROOM, Server, free_port, running_server

CIPHERTEXTS = 10_000


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STRONGROOM, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _dump(kms: Any) -> dict[str, Any]:
    """The state a restore must give back, in a canonical form."""
    keys: dict[str, Any] = {}
    for entry in kms.get_paginator("list_keys").paginate().build_full_result()["Keys"]:
        key = entry["KeyId"]
        meta = kms.describe_key(KeyId=key)["KeyMetadata"]
        keys[key] = {
            "meta": meta,
            "policy": json.loads(kms.get_key_policy(KeyId=key)["Policy"]),
            "tags": kms.list_resource_tags(KeyId=key)["Tags"],
            "grants": sorted(
                kms.list_grants(KeyId=key)["Grants"], key=lambda grant: grant["GrantId"]
            ),
        }
        if meta["KeySpec"] == "SYMMETRIC_DEFAULT":
            status = kms.get_key_rotation_status(KeyId=key)
            keys[key]["rotation"] = [status["KeyRotationEnabled"], status.get("NextRotationDate")]
    aliases = kms.list_aliases()["Aliases"]
    return {
        "keys": keys,
        "aliases": sorted((a["AliasName"], a.get("TargetKeyId")) for a in aliases),
    }


def _identities(data_dir: Path) -> tuple[str, ...]:
    data = str(data_dir)
    reads = (
        ("iam", "list-users", "--data-dir", data),
        ("iam", "list-access-keys", "--data-dir", data),
        ("iam", "get-user-policy", "bob", "decrypt", "--data-dir", data),
    )
    return tuple(_cli(*read).stdout for read in reads)


def _make_state(kms: Any) -> tuple[str, str]:
    key = kms.create_key(Description="kept", Tags=[{"TagKey": "team", "TagValue": "a"}])
    key_id = key["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/kept", TargetKeyId=key_id)
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    account = key["KeyMetadata"]["AWSAccountId"]
    kms.create_grant(
        KeyId=key_id,
        GranteePrincipal=f"arn:aws:iam::{account}:root",
        Operations=["Decrypt"],
        Constraints={"EncryptionContextSubset": {"app": "kept"}},
        Name="kept-grant",
    )
    signer = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.disable_key(KeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    return key_id, signer["KeyId"]


def test_backup_under_load_restores_every_key_and_ciphertext(tmp_path: Path) -> None:
    out = tmp_path / "backup"
    with running_server(tmp_path / "a", "--workers", "2") as first:
        kms = first.client()
        data = str(first.data_dir)
        assert _cli("iam", "create-user", "bob", "--data-dir", data).returncode == 0
        assert _cli("iam", "create-access-key", "bob", "--data-dir", data).returncode == 0
        policy = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}],
            }
        )
        put = _cli(
            "iam",
            "put-user-policy",
            "bob",
            "decrypt",
            "--policy-document",
            policy,
            "--data-dir",
            data,
        )
        assert put.returncode == 0, put.stderr
        key_id, signer = _make_state(kms)

        def encrypt(n: int) -> tuple[bytes, bytes]:
            plain = f"secret {n}".encode()
            blob = kms.encrypt(KeyId=key_id, Plaintext=plain, EncryptionContext={"app": "kept"})
            return plain, blob["CiphertextBlob"]

        with ThreadPoolExecutor(8) as pool:
            made = list(pool.map(encrypt, range(CIPHERTEXTS)))
        signature = kms.sign(KeyId=signer, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
        before = _dump(kms)
        identities = _identities(first.data_dir)
        assert "bob" in identities[0]

        # the backup is taken while calls keep coming (Encrypt changes no state)
        stop = threading.Event()
        during: list[int] = []

        def load() -> None:
            busy = first.client()
            while not stop.is_set() and len(during) < 20000:
                busy.encrypt(KeyId=key_id, Plaintext=b"x")
                during.append(1)

        loader = threading.Thread(target=load)
        loader.start()
        try:
            kms.generate_random(NumberOfBytes=8)  # answered just before: in the backup's trail
            done = _cli("backup", "--data-dir", str(first.data_dir), str(out))
        finally:
            stop.set()
            loader.join(timeout=60)
        assert done.returncode == 0, done.stderr
        assert during, "no call was answered while the backup ran"
        manifest = json.loads((out / "backup.json").read_text())
        assert {"strongroom.db", "audit.db", "root.key", "audit-signing.key"} <= set(
            manifest["files"]
        )
        assert os.stat(out / "root.key").st_mode & 0o777 == 0o600
        assert os.stat(out).st_mode & 0o777 == 0o700
        # a second backup into the same directory is refused
        again = _cli("backup", "--data-dir", str(first.data_dir), str(out))
        assert again.returncode != 0 and "not empty" in again.stderr
        # changes after the backup are not in it
        after = kms.create_key(Description="after")["KeyMetadata"]["KeyId"]
        kms.delete_alias(AliasName="alias/kept")

    restored = tmp_path / "b"
    done = _cli("restore", "--data-dir", str(restored), str(out))
    assert done.returncode == 0, done.stderr
    assert _identities(restored) == identities  # users, access keys, identity policies
    second = Server(restored, free_port()).start()
    try:
        kms = second.client()  # the restored credentials
        assert _dump(kms) == before
        with pytest.raises(ClientError):
            kms.describe_key(KeyId=after)

        def decrypt(pair: tuple[bytes, bytes]) -> bool:
            answer = kms.decrypt(CiphertextBlob=pair[1], EncryptionContext={"app": "kept"})
            return bool(answer["Plaintext"] == pair[0])

        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(decrypt, made))
        assert kms.verify(
            KeyId=signer,
            Message=b"m",
            Signature=signature["Signature"],
            SigningAlgorithm="ECDSA_SHA_256",
        )["SignatureValid"]
        kms.encrypt(KeyId=key_id, Plaintext=b"new")  # and it goes on
        trail = second.client("cloudtrail")
        found = trail.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateAlias"}]
        )["Events"]
        assert [e["EventName"] for e in found] == ["CreateAlias"]
        found = trail.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "GenerateRandom"}]
        )["Events"]
        assert len(found) == 1
    finally:
        second.stop()
    verified = _cli("audit", "verify", "--data-dir", str(restored))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_restore_refuses_a_damaged_backup_and_a_used_directory(tmp_path: Path) -> None:
    out = tmp_path / "backup"
    with running_server(tmp_path / "a") as first:
        first.client().create_key()
        assert _cli("backup", "--data-dir", str(first.data_dir), str(out)).returncode == 0
        used = _cli("restore", "--data-dir", str(first.data_dir), str(out))
        assert used.returncode != 0 and "not empty" in used.stderr
    root = out / "root.key"
    original = root.read_bytes()
    root.write_bytes(bytes([original[0] ^ 1]) + original[1:])
    damaged = _cli("restore", "--data-dir", str(tmp_path / "b"), str(out))
    assert damaged.returncode != 0 and "root.key does not match" in damaged.stderr
    assert not (tmp_path / "b").exists()  # nothing written
    root.write_bytes(original)
    (out / "strongroom.db").unlink()
    missing = _cli("restore", "--data-dir", str(tmp_path / "b"), str(out))
    assert missing.returncode != 0 and "strongroom.db is missing" in missing.stderr
    not_a_backup = _cli("restore", "--data-dir", str(tmp_path / "b"), str(tmp_path))
    assert not_a_backup.returncode != 0 and "not a Strongroom backup" in not_a_backup.stderr
    # an HSM store whose copy never verifies: the backup fails and leaves nothing behind
    with running_server(tmp_path / "d") as third:
        node = third.data_dir / "hsms" / "hsm-broken00000"
        (node / "store" / "objects").mkdir(parents=True)
        (node / "node.key").write_bytes(bytes(32))
        (node / "store" / "index.sealed").write_bytes(b"not a sealed index")
        broken = _cli("backup", "--data-dir", str(third.data_dir), str(tmp_path / "e"))
    assert broken.returncode != 0 and "hsm-broken00000" in broken.stderr, broken.stderr
    assert list((tmp_path / "e").iterdir()) == []
    postgres = _cli("backup", "--database-url", "postgresql://127.0.0.1/x", str(tmp_path / "c"))
    assert postgres.returncode != 0 and "pg_dump" in postgres.stderr
