"""Server-side key synchronisation: a token key that only one HSM of a cluster holds (made by a
client that knew that HSM alone) reaches every ACTIVE HSM through the control plane, as masked
objects copied by the appliance user; session keys never do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cloudhsm.conftest import (
    ADMIN_PW,
    activate,
    describe,
    initialize,
    new_cluster,
    on_node,
    wait_cluster,
    wait_for,
)
from tests.conftest import Server

ALICE = {"CLOUDHSM_ROLE": "crypto-user", "CLOUDHSM_PIN": "alice:alice-pass"}
ADMIN = {"CLOUDHSM_ROLE": "admin", "CLOUDHSM_PIN": f"admin:{ADMIN_PW}"}


def _labels(server: Server, ip: str, anchor: Path, label: str) -> int:
    rc, out, err = on_node(
        server, ip, anchor, ALICE, "key", "list", "--filter", f"attr.label={label}"
    )
    assert rc == 0, (out, err)
    return len(out[-1]["data"]["matched_keys"])


def test_a_key_on_one_hsm_reaches_the_others(hsm: Any, hsm_server: Server, tmp_path: Path) -> None:
    cid = new_cluster(hsm, ("a", "b"))
    initialize(hsm, cid, 2, tmp_path)
    anchor = tmp_path / "customerCA.crt"
    activate(hsm_server, cid, anchor, {"alice": "alice-pass"})
    first, second = (h["EniIp"] for h in wait_cluster(hsm, cid, "ACTIVE", 2)["Hsms"])
    # a client that knows one HSM only: no client-side replication
    for args in (
        ("--label", "lonely", "--attributes", "encrypt=true"),
        ("--label", "fleeting", "--session"),
    ):
        rc, out, err = on_node(
            hsm_server, first, anchor, ALICE,
            "key", "generate-symmetric", "aes", "--key-length-bytes", "32", *args,
        )  # fmt: skip
        assert rc == 0, (out, err)
    # within a few control-plane passes the other HSM holds it too (a copy the control plane
    # made: the audit check below), and the key works there
    wait_for(lambda: _labels(hsm_server, second, anchor, "lonely"), lambda n: n == 1)
    assert _labels(hsm_server, first, anchor, "lonely") == 1
    assert _labels(hsm_server, second, anchor, "fleeting") == 0  # session keys stay where made
    rc, out, err = on_node(
        hsm_server, second, anchor, ALICE,
        "crypto", "encrypt", "aes-gcm", "--key-filter", "attr.label=lonely",
        "--data", "aGVsbG8=",
    )  # fmt: skip
    assert rc == 0, (out, err)
    # the copy is in the receiving HSM's audit log, made by the appliance user
    rc, out, err = on_node(hsm_server, second, anchor, ADMIN, "audit", "--limit", "10000")
    assert rc == 0, (out, err)
    records = out[-1]["data"]["records"]
    inserts = [r for r in records if "CN_INSERT_MASKED_OBJECT_USER" in str(r.get("opcode", ""))]
    assert any(r.get("user") == "app_user" for r in inserts), inserts[-3:]
    assert describe(hsm, cid)["State"] == "ACTIVE"
