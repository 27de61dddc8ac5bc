"""Durability, tamper evidence and scheduled deletion against real server processes."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import STRONGROOM, Server, error_code, free_port, running_server


def test_sigkill_restart_keeps_every_acknowledged_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data, free_port()).start()
    kms = server.client()
    made: list[tuple[str, bytes]] = []
    for i in range(25):
        key = kms.create_key(Description=f"k{i}")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=f"alias/d{i}", TargetKeyId=key)
        made.append((key, kms.encrypt(KeyId=key, Plaintext=f"p{i}".encode())["CiphertextBlob"]))
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    with running_server(data) as again:
        kms2 = again.client()
        for i, (key, blob) in enumerate(made):
            assert kms2.describe_key(KeyId=f"alias/d{i}")["KeyMetadata"]["KeyId"] == key
            assert kms2.decrypt(CiphertextBlob=blob)["Plaintext"] == f"p{i}".encode()


def test_clean_shutdown_on_sigterm_and_sigint(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for sig in (signal.SIGTERM, signal.SIGINT):
        server = Server(data, free_port()).start()
        key = server.client().create_key()["KeyMetadata"]["KeyId"]
        assert server.stop(sig) == 0
        with running_server(data) as again:
            assert again.client().describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"


def test_second_serve_on_same_data_dir_refuses(server: Server) -> None:
    proc = subprocess.run(
        [STRONGROOM, "serve", "--port", str(free_port()), "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "another strongroom serve" in proc.stderr
    assert server.client().list_keys()["Keys"] is not None  # the first one is unharmed


def test_first_start_files(server: Server) -> None:
    assert (server.data_dir / "root.key").stat().st_mode & 0o777 == 0o600
    assert (server.data_dir / "credentials").stat().st_mode & 0o777 == 0o600
    assert "[profile strongroom]" in (server.data_dir / "config").read_text()
    assert "region = us-east-1" in (server.data_dir / "config").read_text()


def test_key_material_is_not_stored_in_plaintext(tmp_path: Path) -> None:
    """Generated data keys and plaintexts never appear in the data directory's files."""
    data = tmp_path / "data"
    with running_server(data) as srv:
        kms = srv.client()
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        canary = b"CANARY-PLAINTEXT-7f3a9"
        kms.encrypt(KeyId=key, Plaintext=canary)
        data_key = kms.generate_data_key(KeyId=key, KeySpec="AES_256")["Plaintext"]
        log = srv.log().encode()
    blobs = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file()) + log
    assert canary not in blobs
    assert data_key not in blobs


def _flips(blob: bytes) -> list[bytes]:
    out = []
    for i in range(len(blob)):
        for bit in range(8):
            b = bytearray(blob)
            b[i] ^= 1 << bit
            out.append(bytes(b))
    return out


def test_every_single_bit_flip_is_invalid_ciphertext(kms: Any, key_id: str) -> None:
    blobs = [
        kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"],
        kms.encrypt(KeyId=key_id, Plaintext=b"y" * 64, EncryptionContext={"a": "b"})[
            "CiphertextBlob"
        ],
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")["CiphertextBlob"],
    ]
    contexts: list[dict[str, str]] = [{}, {"a": "b"}, {}]
    checked = 0
    for blob, ctx in zip(blobs, contexts, strict=True):
        for flipped in _flips(blob):
            with pytest.raises(ClientError) as exc:
                kms.decrypt(CiphertextBlob=flipped, EncryptionContext=ctx)
            assert error_code(exc) == "InvalidCiphertextException"
            checked += 1
    assert checked == 8 * sum(len(b) for b in blobs)
    # Truncations too.
    for n in range(1, len(blobs[0])):
        with pytest.raises(ClientError) as exc:
            kms.decrypt(CiphertextBlob=blobs[0][:n])
        assert error_code(exc) == "InvalidCiphertextException"


def test_scheduled_deletion_destroys_the_key(tmp_path: Path) -> None:
    offset = tmp_path / "clock-offset"
    offset.write_text("0")
    args = ("--scheduler-interval", "0.2", "--clock-offset-file", str(offset))
    with running_server(tmp_path / "data", *args) as srv:
        kms = srv.client()
        doomed = kms.create_key()["KeyMetadata"]["KeyId"]
        kept = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/doomed", TargetKeyId=doomed)
        blob = kms.encrypt(KeyId=doomed, Plaintext=b"gone")["CiphertextBlob"]
        out = kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
        assert out["DeletionDate"].timestamp() == pytest.approx(time.time() + 7 * 86400, abs=60)
        kms.schedule_key_deletion(KeyId=kept, PendingWindowInDays=30)
        offset.write_text(str(6 * 86400))
        time.sleep(1.0)
        assert kms.describe_key(KeyId=doomed)["KeyMetadata"]["KeyState"] == "PendingDeletion"
        offset.write_text(str(7 * 86400 + 5))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                kms.describe_key(KeyId=doomed)
            except ClientError as gone:
                assert gone.response["Error"]["Code"] == "NotFoundException"
                break
            time.sleep(0.1)
        else:
            pytest.fail("the scheduler did not delete the key")
        calls: list[Callable[[], Any]] = [
            lambda: kms.encrypt(KeyId=doomed, Plaintext=b"p"),
            lambda: kms.enable_key(KeyId=doomed),
            lambda: kms.cancel_key_deletion(KeyId=doomed),
            lambda: kms.describe_key(KeyId="alias/doomed"),
        ]
        for call in calls:
            with pytest.raises(ClientError) as exc:
                call()
            assert error_code(exc) == "NotFoundException"
        with pytest.raises(ClientError) as exc:
            kms.decrypt(CiphertextBlob=blob)
        assert error_code(exc) == "InvalidCiphertextException"
        assert kms.describe_key(KeyId=kept)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    # The material is gone from the database: a restart cannot bring it back.
    with running_server(tmp_path / "data") as again, pytest.raises(ClientError) as exc:
        again.client().describe_key(KeyId=doomed)
    assert error_code(exc) == "NotFoundException"


def test_workers_share_state_coherently(tmp_path: Path) -> None:
    """With two worker processes, a change made through one is seen by the next request,
    whichever worker answers it (caches follow SQLite's data_version)."""
    with running_server(tmp_path / "data", "--workers", "2") as srv:
        clients = [srv.client(), srv.client()]
        for i in range(20):
            a, b = clients[i % 2], clients[(i + 1) % 2]
            key = a.create_key()["KeyMetadata"]["KeyId"]
            blob = b.encrypt(KeyId=key, Plaintext=b"p")["CiphertextBlob"]
            a.disable_key(KeyId=key)
            with pytest.raises(ClientError) as exc:
                b.decrypt(CiphertextBlob=blob)
            assert error_code(exc) == "DisabledException"
            b.enable_key(KeyId=key)
            assert a.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p"
        assert len(clients[0].list_keys(Limit=1000)["Keys"]) == 20
