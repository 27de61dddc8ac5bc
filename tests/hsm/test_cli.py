"""The CLI end to end, as a subprocess, in single-command and interactive modes."""

from __future__ import annotations

import base64
from typing import Any

from .conftest import ADMIN_PW, NodeProc, admin_env, cu_env, run_cli


def test_single_command_mode(node_factory: Any, tmp_path: Any) -> None:
    node: NodeProc = node_factory()
    assert run_cli(node, "cluster", "hsm-info").data["hsms"][0]["activated"] is False
    res = run_cli(node, "cluster", "activate", "--password", ADMIN_PW)
    assert (res.code, res.outputs) == (
        0,
        [{"error_code": 0, "data": "Cluster activation successful"}],
    )
    again = run_cli(node, "cluster", "activate", "--password", ADMIN_PW)
    assert again.code == 1 and again.outputs[0]["error_code"] == 1
    made = run_cli(
        node,
        "user",
        "create",
        "--username",
        "Alice",
        "--role",
        "crypto-user",
        "--password",
        "alice-pass",
        env=admin_env(),
    )
    assert made.data == {"username": "alice", "role": "crypto-user"}
    users = run_cli(node, "user", "list").data["users"]
    assert {u["username"] for u in users} == {"admin", "app_user", "alice"}
    env = cu_env("alice", "alice-pass")
    gen = run_cli(
        node,
        "key",
        "generate-symmetric",
        "aes",
        "--label",
        "k1",
        "--key-length-bytes",
        "32",
        "--attributes",
        "encrypt=true",
        "decrypt=true",
        env=env,
    )
    assert gen.code == 0 and gen.data["key"]["attributes"]["label"] == "k1"
    data = base64.b64encode(b"plain").decode()
    aad = base64.b64encode(b"ctx").decode()
    enc = run_cli(
        node,
        "crypto",
        "encrypt",
        "aes-gcm",
        "--key-filter",
        "attr.label=k1",
        "--data",
        data,
        "--aad",
        aad,
        env=env,
    )
    dec = run_cli(
        node,
        "crypto",
        "decrypt",
        "aes-gcm",
        "--key-filter",
        "attr.label=k1",
        "--data",
        enc.data["ciphertext"],
        "--aad",
        aad,
        env=env,
    )
    assert base64.b64decode(dec.data["plaintext"]) == b"plain"
    listed = run_cli(node, "key", "list", env=env).data
    assert listed["total_key_count"] == 1
    assert listed["matched_keys"][0]["attributes"] == {"label": "k1"}
    rnd = run_cli(node, "random", "--length", "16", env=env)
    assert len(base64.b64decode(rnd.data["random_data"])) == 16
    denied = run_cli(
        node,
        "user",
        "create",
        "--username",
        "x",
        "--role",
        "admin",
        "--password",
        "xxxx-xxxx",
        env=env,
    )
    assert denied.code != 0 and denied.outputs == [{"error_code": 1, "data": denied.data}]
    bad_login = run_cli(node, "key", "list", env=cu_env("alice", "wrong-pass"))
    assert bad_login.code == 1 and bad_login.data == "login failed"
    no_login = run_cli(node, "key", "list")
    assert no_login.code == 1
    usage = run_cli(node, "key", "generate-symmetric", "aes", env=env)
    assert usage.code == 1 and "key-length-bytes" in usage.data
    deleted = run_cli(node, "key", "delete", "--filter", "attr.label=k1", env=env)
    assert deleted.code == 0
    # Sessions opened by single commands are closed afterwards.
    assert run_cli(node, "cluster", "hsm-info").data["hsms"][0]["session-count"] == 0


def test_interactive_mode(node: NodeProc) -> None:
    data = base64.b64encode(b"to sign").decode()
    script = (
        "\n".join(
            [
                "cluster hsm-info",
                "key list",
                "login --username bob --role crypto-user --password bob-pass-1",
                "key generate-asymmetric-pair ec --public-label ep --private-label es"
                " --curve secp256r1 --public-attributes verify=true --private-attributes sign=true",
                "crypto sign ecdsa --key-filter attr.label=es --hash-function sha256"
                f" --data {data}",
                "key generate-symmetric generic-secret --label mac --key-length-bytes 32"
                " --attributes sign=true verify=true --share-crypto-users alice",
                f"crypto mac hmac --key-filter attr.label=mac --data {data}",
                "key share --filter attr.label=es --username carol --role crypto-user",
                "key set-attribute --filter attr.label=mac --name label --value mac2",
                "key list --filter attr.label=mac2 --verbose",
                "user list",
                "logout",
                "key list",
                "login --username admin --role admin",
                ADMIN_PW,
                "user create --username dave --role crypto-user --password dave-pass",
                "user delete --username dave --role crypto-user",
                "audit --limit 5",
                "logout",
                "quit",
            ]
        )
        + "\n"
    )
    res = run_cli(node, "interactive", stdin=script)
    codes = [o["error_code"] for o in res.outputs]
    assert codes == [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0], res.stdout
    sig = res.outputs[4]["data"]["signature"]
    verify = run_cli(
        node,
        "crypto",
        "verify",
        "ecdsa",
        "--key-filter",
        "attr.label=ep",
        "--data",
        data,
        "--signature",
        sig,
        env=cu_env("bob", "bob-pass-1"),
    )
    assert verify.code == 0 and verify.data == "Signature verified successfully"
    bad = run_cli(
        node,
        "crypto",
        "verify",
        "ecdsa",
        "--key-filter",
        "attr.label=ep",
        "--data",
        base64.b64encode(b"other").decode(),
        "--signature",
        sig,
        env=cu_env("bob", "bob-pass-1"),
    )
    assert bad.code == 1
    shared = res.outputs[9]["data"]["matched_keys"][0]["key-info"]["shared-users"]
    assert [u["username"] for u in shared] == ["alice"]
    assert len(res.outputs[16]["data"]["records"]) == 5
    assert ADMIN_PW not in res.stdout + res.stderr


def test_wrap_and_unwrap_via_cli(node: NodeProc, tmp_path: Any) -> None:
    env = cu_env("alice", "alice-pass")
    run_cli(
        node,
        "key",
        "generate-symmetric",
        "aes",
        "--label",
        "kek",
        "--key-length-bytes",
        "32",
        "--attributes",
        "wrap=true",
        "unwrap=true",
        env=env,
    )
    run_cli(
        node,
        "key",
        "generate-symmetric",
        "aes",
        "--label",
        "dk",
        "--key-length-bytes",
        "16",
        env=env,
    )
    path = tmp_path / "wrapped.bin"
    wrapped = run_cli(
        node,
        "key",
        "wrap",
        "aes-gcm",
        "--payload-filter",
        "attr.label=dk",
        "--wrapping-filter",
        "attr.label=kek",
        "--path",
        str(path),
        env=env,
    )
    assert wrapped.code == 0 and path.stat().st_size == 12 + 16 + 16
    back = run_cli(
        node,
        "key",
        "unwrap",
        "aes-gcm",
        "--filter",
        "attr.label=kek",
        "--key-type-class",
        "aes",
        "--label",
        "dk-copy",
        "--data-path",
        str(path),
        env=env,
    )
    assert back.code == 0 and back.data["key"]["attributes"]["key-length-bytes"] == 16


def test_connection_errors_are_json(node: NodeProc) -> None:
    res = run_cli(node, "cluster", "hsm-info", conn=["--node", node.address])
    assert res.code == 1 and "--node-cert" in res.data
    res = run_cli(
        node, "cluster", "hsm-info", conn=["--node", "127.0.0.1:1", "--node-cert", str(node.cert)]
    )
    assert res.code == 1 and "cannot connect" in res.data
