"""Non-extractability: a canary key imported as non-extractable never shows up again — not in
the node's files, not in any CLI output, not in the audit log — and cannot be wrapped."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from strongroom.crypto.asymmetric import load_public
from strongroom.crypto.hsm_symmetric import AesGcmKey
from tests.memscan import forms

from .conftest import NodeProc, admin_env, cu_env, run_cli


def _pem_der(pem: str) -> bytes:
    return base64.b64decode("".join(x for x in pem.splitlines() if "-----" not in x))


def test_canary_key_never_leaves(node: NodeProc, tmp_path: Path) -> None:
    canary = os.urandom(32)
    env = cu_env("alice", "alice-pass")
    outputs: list[str] = []

    def cli(*args: str, who: dict[str, str] = env) -> Any:
        res = run_cli(node, *args, env=who)
        outputs.append(res.stdout + res.stderr)
        return res

    gen = cli(
        "key",
        "generate-asymmetric-pair",
        "rsa",
        "--public-label",
        "imp-pub",
        "--private-label",
        "imp-priv",
        "--modulus-size-bits",
        "2048",
        "--public-exponent",
        "65537",
        "--public-attributes",
        "encrypt=true",
        "--private-attributes",
        "unwrap=true",
    )
    assert gen.code == 0, gen.stdout
    pem_path = tmp_path / "imp.pem"
    assert (
        cli(
            "key",
            "generate-file",
            "--encoding",
            "pem",
            "--path",
            str(pem_path),
            "--filter",
            "attr.label=imp-pub",
        ).code
        == 0
    )
    wrapped = load_public(_pem_der(pem_path.read_text())).encrypt_oaep("sha256", canary)
    res = cli(
        "key",
        "unwrap",
        "rsa-oaep",
        "--filter",
        "attr.label=imp-priv",
        "--key-type-class",
        "aes",
        "--label",
        "canary",
        "--data",
        base64.b64encode(wrapped).decode(),
        "--attributes",
        "extractable=false",
        "encrypt=true",
        "decrypt=true",
    )
    assert res.code == 0, res.stdout
    assert res.data["key"]["attributes"]["extractable"] is False
    enc = cli(
        "crypto",
        "encrypt",
        "aes-gcm",
        "--key-filter",
        "attr.label=canary",
        "--data",
        base64.b64encode(b"hello canary").decode(),
    )
    ct = base64.b64decode(enc.data["ciphertext"])
    assert AesGcmKey(canary).decrypt(ct) == b"hello canary"  # it really is the canary
    cli("key", "list", "--verbose")
    cli(
        "key",
        "generate-symmetric",
        "aes",
        "--label",
        "kek",
        "--key-length-bytes",
        "32",
        "--attributes",
        "wrap=true",
    )
    for mech in ("aes-key-wrap-pad", "aes-gcm"):
        refused = cli(
            "key",
            "wrap",
            mech,
            "--payload-filter",
            "attr.label=canary",
            "--wrapping-filter",
            "attr.label=kek",
        )
        assert refused.code == 1 and "not extractable" in refused.data
    refused = cli(
        "key",
        "set-attribute",
        "--filter",
        "attr.label=canary",
        "--name",
        "extractable",
        "--value",
        "true",
    )
    assert refused.code == 1
    refused = cli(
        "key",
        "generate-file",
        "--encoding",
        "pem",
        "--path",
        str(tmp_path / "x.pem"),
        "--filter",
        "attr.label=canary",
    )
    assert refused.code == 1
    audit = cli("audit", "--limit", "100000", who=admin_env())
    assert audit.code == 0 and len(audit.data["records"]) > 10
    node.restart()
    node.stop()
    blobs = [p.read_bytes() for p in node.data_dir.rglob("*") if p.is_file()]
    haystacks = [*blobs, *(o.encode() for o in outputs)]
    for form in forms(canary).values():
        for hay in haystacks:
            assert form not in hay
