"""Restarts keep users, keys and the audit log; the audit sequence is gapless across restarts;
tampered store files are detected and not used."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any

from strongroom.hsm.client import HsmClient, HsmClientError

from .conftest import ADMIN_PW, NodeProc, activate


def _audit(node: NodeProc) -> list[Any]:
    with node.client() as c:
        c.login("admin", ADMIN_PW, "admin")
        records = c.audit(0, 100000)
        c.logout()
    return records


def test_restart_durability_and_gapless_audit(node_factory: Any) -> None:
    node: NodeProc = node_factory()
    activate(node, {"alice": "alice-pass"})
    with node.client() as c:
        c.login("alice", "alice-pass")
        ref = c.generate_aes_key("durable").ref
        ct = c.encrypt(ref, b"kept", b"aad")
        c.logout()
    for _ in range(3):
        node.restart()
        with node.client() as c:
            c.login("alice", "alice-pass")
            assert c.decrypt(c.find_key_by_label("durable").ref, ct, b"aad") == b"kept"
            c.logout()
    records = _audit(node)
    assert [r.seq for r in records] == list(range(len(records)))
    assert sorted({r.reboot for r in records}) == [1, 2, 3, 4]
    boots = [r for r in records if r.opcode.startswith("CN_INIT_DONE")]
    assert [r.reboot for r in boots] == [1, 2, 3, 4]
    ops = {r.opcode.split()[0] for r in records}
    assert {
        "CN_LOGIN",
        "CN_LOGOUT",
        "CN_GENERATE_KEY",
        "CN_ENCRYPT",
        "CN_DECRYPT",
        "CN_CREATE_USER",
        "CN_CHANGE_PSWD",
    } <= ops
    gen = next(r for r in records if r.opcode.startswith("CN_GENERATE_KEY"))
    assert gen.keys == [ref] and gen.user == "alice" and gen.response.endswith("SUCCESS")


def test_refused_operations_are_audited(node: NodeProc) -> None:
    with node.client() as c:
        c.login("alice", "alice-pass")
        with contextlib.suppress(HsmClientError):
            c.create_user("eve", "crypto-user", "eve-pass-1")
        c.logout()
    refused = [
        r for r in _audit(node) if r.opcode.startswith("CN_CREATE_USER") and r.user == "alice"
    ]
    assert refused and refused[-1].response == "5:HSM Error: PERMISSION_DENIED"


def _start_fails(node: NodeProc) -> str:
    proc = node.start(expect_ok=False)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 3, err
    node.proc = None
    return err.decode()


def _flip(path: Path, offset: int = -5) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _setup_with_key(node_factory: Any) -> tuple[NodeProc, Path]:
    node: NodeProc = node_factory()
    activate(node, {"alice": "alice-pass"})
    with node.client() as c:
        c.login("alice", "alice-pass")
        c.generate_aes_key("t1")
        c.logout()
    node.stop()
    objects = sorted((node.data_dir / "store" / "objects").glob("*.sealed"))
    assert len(objects) == 1
    return node, objects[0]


def test_tampered_object_file_detected(node_factory: Any) -> None:
    node, obj = _setup_with_key(node_factory)
    original = obj.read_bytes()
    _flip(obj)
    assert "integrity" in _start_fails(node)
    obj.write_bytes(original)
    node.start()


def test_deleted_or_swapped_object_detected(node_factory: Any) -> None:
    node, obj = _setup_with_key(node_factory)
    saved = obj.read_bytes()
    obj.unlink()
    assert "missing" in _start_fails(node)
    obj.write_bytes(saved)
    node.start()
    with node.client() as c:
        c.login("alice", "alice-pass")
        c.generate_aes_key("t2")
        c.logout()
    node.stop()
    first, second = sorted((node.data_dir / "store" / "objects").glob("*.sealed"))
    first.write_bytes(second.read_bytes())
    _start_fails(node)


def test_tampered_index_and_audit_detected(node_factory: Any) -> None:
    node, _ = _setup_with_key(node_factory)
    index = node.data_dir / "store" / "index.sealed"
    saved = index.read_bytes()
    _flip(index, 20)
    _start_fails(node)
    index.write_bytes(saved)
    audit = node.data_dir / "audit.log"
    saved_audit = audit.read_bytes()
    _flip(audit, 40)
    _start_fails(node)
    audit.write_bytes(saved_audit)
    node.start()


def test_node_key_file_mode(node_factory: Any) -> None:
    node: NodeProc = node_factory()
    for name in ("node.key", "tls-key.pem", "appliance-user.pin", "audit.log"):
        assert (node.data_dir / name).stat().st_mode & 0o077 == 0, name


def test_client_reconnects_after_node_restart(node: NodeProc) -> None:
    c: HsmClient
    with node.client() as c:
        assert c.hsm_info()["activated"] is True
        node.restart()
        assert c.hsm_info()["reboot-counter"] == 2


def test_hsm_node_help() -> None:
    from .conftest import STRONGROOM

    out = subprocess.run(
        [*STRONGROOM, "hsm-node", "--help"], check=False, capture_output=True, text=True
    )
    assert "--session-timeout" in out.stdout
