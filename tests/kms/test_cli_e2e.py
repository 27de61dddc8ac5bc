"""End to end: the aws CLI (v1, as a subprocess) against a real ``strongroom serve``.

The server runs with its data directory named ``.strongroom`` in a scratch working directory, so
the quickstart command of issue 2 / the README runs exactly as written there.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_support import Cli
from tests.conftest import ACCOUNT, REGION, VENV_BIN, running_server

QUICKSTART = (
    "AWS_SHARED_CREDENTIALS_FILE=.strongroom/credentials AWS_CONFIG_FILE=.strongroom/config "
    "AWS_PROFILE=strongroom aws kms create-key --endpoint-url http://127.0.0.1:{port}"
)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    work = tmp_path_factory.mktemp("cli")
    with running_server(work / ".strongroom", "--scheduler-interval", "0.5") as srv:
        yield Cli(srv, work)


@pytest.fixture(scope="module")
def cli_key(cli: Cli) -> str:
    return str(cli.json("create-key", "--description", "cli key")["KeyMetadata"]["KeyId"])


def test_quickstart_command_works_as_written(cli: Cli) -> None:
    command = QUICKSTART.format(port=cli.server.port)
    assert f"aws kms create-key --endpoint-url {cli.server.endpoint}" in cli.server.log()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_")  # nothing but the command line configures the CLI
    }
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        ["sh", "-c", command],
        check=False,
        cwd=cli.cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(proc.stdout)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled"
    assert meta["AWSAccountId"] == ACCOUNT
    assert meta["Arn"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{meta['KeyId']}"


def test_create_alias_and_describe_key(cli: Cli, cli_key: str) -> None:
    assert (
        cli.run("create-alias", "--alias-name", "alias/cli", "--target-key-id", cli_key).stdout
        == ""
    )
    by_alias = cli.json("describe-key", "--key-id", "alias/cli")["KeyMetadata"]
    assert by_alias["KeyId"] == cli_key
    assert by_alias["Description"] == "cli key"
    assert cli.text("describe-key", "--key-id", cli_key, "--query", "KeyMetadata.KeyState") == (
        "Enabled"
    )
    aliases = cli.json("list-aliases", "--key-id", cli_key)["Aliases"]
    assert [a["AliasName"] for a in aliases] == ["alias/cli"]


def test_list_keys(cli: Cli, cli_key: str) -> None:
    keys = cli.json("list-keys")["Keys"]
    assert {"KeyId": cli_key, "KeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{cli_key}"} in keys
    cli.server.client().create_key()  # at least two keys, whatever ran before
    one = cli.json("list-keys", "--limit", "1", "--no-paginate")
    assert len(one["Keys"]) == 1
    assert one["Truncated"] is True
    assert "NextMarker" in one


def test_encrypt_decrypt_round_trip(cli: Cli, cli_key: str, tmp_path: Path) -> None:
    plaintext = bytes(range(256)) * 3
    (tmp_path / "plain.bin").write_bytes(plaintext)
    blob_b64 = cli.text(
        "encrypt",
        "--key-id",
        cli_key,
        "--plaintext",
        f"fileb://{tmp_path / 'plain.bin'}",
        "--encryption-context",
        "purpose=cli-test",
        "--query",
        "CiphertextBlob",
    )
    (tmp_path / "blob.bin").write_bytes(base64.b64decode(blob_b64))
    key_arn, text_plain = cli.text(
        "decrypt",
        "--ciphertext-blob",
        f"fileb://{tmp_path / 'blob.bin'}",
        "--encryption-context",
        "purpose=cli-test",
        "--query",
        "[KeyId, Plaintext]",
    ).split("\t")
    assert key_arn == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{cli_key}"
    assert base64.b64decode(text_plain) == plaintext
    wrong = cli.run("decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'blob.bin'}", check=False)
    assert wrong.returncode in {254, 255}
    assert "InvalidCiphertextException" in wrong.stderr


def test_generate_data_key(cli: Cli, cli_key: str, tmp_path: Path) -> None:
    out = cli.json("generate-data-key", "--key-id", "alias/cli", "--key-spec", "AES_256")
    data_key = base64.b64decode(out["Plaintext"])
    assert len(data_key) == 32
    assert out["KeyId"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{cli_key}"
    (tmp_path / "dk.bin").write_bytes(base64.b64decode(out["CiphertextBlob"]))
    again = cli.text(
        "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'dk.bin'}", "--query", "Plaintext"
    )
    assert base64.b64decode(again) == data_key


def test_tag_resource_and_list_resource_tags(cli: Cli, cli_key: str) -> None:
    cli.run(
        "tag-resource",
        "--key-id",
        cli_key,
        "--tags",
        "TagKey=team,TagValue=security",
        "TagKey=tier,TagValue=",
    )
    tags = cli.json("list-resource-tags", "--key-id", cli_key)["Tags"]
    assert sorted(tags, key=lambda t: t["TagKey"]) == [
        {"TagKey": "team", "TagValue": "security"},
        {"TagKey": "tier", "TagValue": ""},
    ]
    cli.run("untag-resource", "--key-id", cli_key, "--tag-keys", "tier")
    tags = cli.json("list-resource-tags", "--key-id", cli_key)["Tags"]
    assert tags == [{"TagKey": "team", "TagValue": "security"}]


def test_schedule_key_deletion(cli: Cli, tmp_path: Path) -> None:
    key_id = cli.json("create-key")["KeyMetadata"]["KeyId"]
    out = cli.json("schedule-key-deletion", "--key-id", key_id, "--pending-window-in-days", "7")
    assert out["KeyId"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"
    assert out["KeyState"] == "PendingDeletion"
    assert out["PendingWindowInDays"] == 7
    assert "DeletionDate" in out
    (tmp_path / "p.bin").write_bytes(b"too late")
    plain = f"fileb://{tmp_path / 'p.bin'}"
    refused = cli.run("encrypt", "--key-id", key_id, "--plaintext", plain, check=False)
    assert refused.returncode in {254, 255}
    assert f"{out['KeyId']} is pending deletion." in refused.stderr
    cancelled = cli.json("cancel-key-deletion", "--key-id", key_id)
    assert cancelled["KeyId"] == out["KeyId"]
    assert cli.text("describe-key", "--key-id", key_id, "--query", "KeyMetadata.KeyState") == (
        "Disabled"
    )


def test_error_exit_status_and_code(cli: Cli) -> None:
    proc = cli.run("describe-key", "--key-id", "alias/does-not-exist", check=False)
    assert proc.returncode in {254, 255}
    assert "NotFoundException" in proc.stderr
    assert f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/does-not-exist" in proc.stderr
    proc = cli.run(
        "schedule-key-deletion",
        "--key-id",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "--pending-window-in-days",
        "3",
        check=False,
    )
    assert proc.returncode in {254, 255}
    assert "ValidationException" in proc.stderr
