"""S7: where KMS key material and the root key may be found, down to process memory.

A KMS key in a custom key store, used for Encrypt, Decrypt, GenerateDataKey and ReEncrypt,
has its material in the HSM nodes alone: the nodes' memory holds it (the control that the scan
finds material where it lives), and neither ``serve``'s memory nor the trail writer's nor any
file, log, metric or audit record does, in any encoding. The root key lives in ``serve``
(the embedded key store's holder) and ``root.key`` only. Imported material (a canary chosen by
the test) is in no file, log, metric or record, nor in the writer or the nodes.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from strongroom.hsm.store import SealedStore
from tests.cloudhsm.conftest import connected_store
from tests.conftest import STRONGROOM, Server
from tests.kms.test_import_e2e import _import
from tests.memscan import descendants, forms, found_in_memory, found_in_text

CONTEXT = {"purpose": "canary"}


def _use(kms: Any, key: str, other: str) -> None:
    for _ in range(10):
        blob = kms.encrypt(KeyId=key, Plaintext=b"canary run", EncryptionContext=CONTEXT)
        out = kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext=CONTEXT)
        assert out["Plaintext"] == b"canary run"
        data_key = kms.generate_data_key(KeyId=key, KeySpec="AES_256")
        moved = kms.re_encrypt(CiphertextBlob=data_key["CiphertextBlob"], DestinationKeyId=other)
        back = kms.re_encrypt(CiphertextBlob=moved["CiphertextBlob"], DestinationKeyId=key)
        again = kms.decrypt(CiphertextBlob=back["CiphertextBlob"])["Plaintext"]
        assert again == data_key["Plaintext"]


def _nodes(server: Server) -> dict[int, Path]:
    """The living HSM node processes under ``server`` and their data directories."""
    found = {}
    for pid_file in server.data_dir.rglob("node.pid"):
        pid = int(pid_file.read_text())
        if Path(f"/proc/{pid}").exists():
            found[pid] = pid_file.parent
    return found


def _material_in_nodes(directories: list[Path], label: str) -> bytes:
    """The material of the key labelled ``label``, read from each node's sealed store."""
    materials = set()
    for directory in directories:
        _, objects = SealedStore(directory).read()
        (key,) = [o for o in objects if o.attrs.get("label") == label]
        assert key.attrs.get("extractable") is False
        materials.add(key.material)
    (material,) = materials  # the same key on every node
    assert len(material) == 32
    return material


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return bytes(resp.read())


def _node_metrics(pid: int) -> bytes:
    args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    host, port = args[args.index("--host") + 1], args[args.index("--metrics-port") + 1]
    return _get(f"http://{host}:{port}/metrics")


def _outside_memory(server: Server, nodes: dict[int, Path]) -> dict[str, bytes]:
    """Every file of the data directory but ``root.key``, an SQL dump of each database, the
    serve log, the metrics of serve and of every node, and the trail's export."""
    hay: dict[str, bytes] = {}
    root = server.data_dir / "root.key"
    for path in sorted(server.data_dir.rglob("*")):
        if path.is_file() and path != root:
            hay[str(path.relative_to(server.data_dir))] = path.read_bytes()
        if path.is_file() and path.read_bytes()[:16] == b"SQLite format 3\x00":
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                dump = "\n".join(db.iterdump()).encode()
            assert dump, path
            hay[f"SQL dump of {path.name}"] = dump
    assert any(name.startswith("SQL dump") for name in hay)
    assert server.log_path is not None
    hay["serve log"] = server.log_path.read_bytes()
    hay["serve /metrics"] = _get(f"{server.endpoint}/metrics")
    for pid in nodes:
        hay[f"node {pid} /metrics"] = _node_metrics(pid)
    args = ["audit", "export", "--since", "2000-01-01", "--data-dir", str(server.data_dir)]
    export = subprocess.run([STRONGROOM, *args], check=True, capture_output=True, timeout=60)
    assert b"ReEncrypt" in export.stdout
    hay["audit export"] = export.stdout
    return hay


def test_key_material_and_root_key_stay_where_they_belong(
    hsm_server: Server, hsm: Any, tmp_path: Path
) -> None:
    kms = hsm_server.client("kms")
    _, hsm_ids, store = connected_store(hsm_server, hsm, tmp_path, "canary-store")
    in_hsm = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store)["KeyMetadata"]["Arn"]
    imported = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["Arn"]
    canary = os.urandom(32)
    _import(kms, imported, canary, "RSAES_OAEP_SHA_256")
    _use(kms, in_hsm, imported)
    _use(kms, imported, in_hsm)

    nodes = _nodes(hsm_server)
    assert len(nodes) == len(hsm_ids) == 2
    hsm_material = _material_in_nodes(list(nodes.values()), in_hsm)
    root_key = (hsm_server.data_dir / "root.key").read_bytes()
    secrets = {"HSM key material": hsm_material, "imported material": canary, "root key": root_key}
    every_form = {
        f"{name} ({form})": value
        for name, secret in secrets.items()
        for form, value in forms(secret).items()
    }

    # files, dumps, logs, metrics, the trail: none of the three in any form
    assert found_in_text(_outside_memory(hsm_server, nodes), every_form) == []

    # memory. The controls: the nodes hold the HSM key's material, serve holds the root key.
    raw = dict(secrets)
    for pid in nodes:
        counts = found_in_memory(pid, raw)
        assert counts["HSM key material"] >= 1, counts
        assert counts["root key"] == counts["imported material"] == 0, counts
    assert hsm_server.proc is not None
    serve = hsm_server.proc.pid
    counts = found_in_memory(serve, raw)
    assert counts["root key"] >= 1, counts
    writers = [pid for pid in descendants(serve) if pid not in nodes]
    assert writers, "serve runs its trail writer as a child process"
    for pid in writers:
        assert found_in_memory(pid, raw) == dict.fromkeys(raw, 0), pid
    hsm_forms = {k: v for k, v in every_form.items() if k.startswith("HSM")}
    for pid in [serve, *writers]:
        assert found_in_memory(pid, hsm_forms) == dict.fromkeys(hsm_forms, 0), pid
