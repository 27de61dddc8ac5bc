"""End to end: ``strongroom iam`` manages the identity store of a RUNNING ``strongroom serve``.

Users and access keys made or deleted by the CLI take effect on the server at once (no restart);
accounts are separate namespaces of keys, but in issue 2 valid credentials open any key by its
ARN (access control arrives with issue 3).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION, STRONGROOM, Server, error_code, running_server

INVALID_TOKEN = "The security token included in the request is invalid."


@pytest.fixture(scope="module")
def iam_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own, so that user and key listings are exact."""
    with running_server(tmp_path_factory.mktemp("iam") / "data") as srv:
        yield srv


def iam(server: Server, *args: str, account: str | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--account-id", account] if account else []
    return subprocess.run(
        [STRONGROOM, "iam", *args, "--data-dir", str(server.data_dir), *extra],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def iam_json(server: Server, *args: str, account: str | None = None) -> Any:
    proc = iam(server, *args, account=account)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def iam_refused(server: Server, *args: str, account: str | None = None) -> str:
    """Run a command that must be refused; its error text."""
    proc = iam(server, *args, account=account)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    return str(json.loads(proc.stderr)["Error"])


def client_for(server: Server, pair: dict[str, str], region: str = REGION) -> Any:
    return server.client(region=region, akid=pair["AccessKeyId"], secret=pair["SecretAccessKey"])


ALLOW_ALL = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
)


def user_with_key(server: Server, name: str, account: str | None = None) -> dict[str, str]:
    """A user with an access key and an identity policy that allows everything."""
    iam_json(server, "create-user", name, account=account)
    iam_json(
        server, "put-user-policy", name, "all", "--policy-document", ALLOW_ALL, account=account
    )
    return dict(iam_json(server, "create-access-key", name, account=account)["AccessKey"])


def fails(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as excinfo:
        call()
    return error_code(excinfo), str(excinfo.value.response["Error"]["Message"])


def test_create_user_and_access_key_work_against_the_running_server(iam_server: Server) -> None:
    user = iam_json(iam_server, "create-user", "alice")["User"]
    assert user["UserName"] == "alice"
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", user["UserId"])
    assert isinstance(user["CreateDate"], float)

    pair = iam_json(iam_server, "create-access-key", "alice")["AccessKey"]
    kms = client_for(iam_server, pair)  # the server was not restarted
    # a user with no identity policy may do nothing (default deny) ...
    assert fails(kms.create_key)[0] == "AccessDeniedException"
    iam_json(iam_server, "put-user-policy", "alice", "all", "--policy-document", ALLOW_ALL)
    # ... and one whose policy allows may, at once
    assert set(pair) == {"UserName", "AccessKeyId", "SecretAccessKey", "Status", "CreateDate"}
    assert pair["UserName"] == "alice"
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", pair["AccessKeyId"])
    assert len(pair["SecretAccessKey"]) == 40
    assert pair["Status"] == "Active"

    meta = kms.create_key(Description="made by alice")["KeyMetadata"]
    assert meta["AWSAccountId"] == ACCOUNT
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["Description"] == "made by alice"
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"alice")["CiphertextBlob"]
    assert iam_server.client().decrypt(CiphertextBlob=blob)["Plaintext"] == b"alice"


def test_list_users_and_access_keys(iam_server: Server) -> None:
    account = "222233334444"
    assert iam_json(iam_server, "list-users", account=account) == {"Users": []}
    bob = user_with_key(iam_server, "bob", account)
    carol = user_with_key(iam_server, "carol", account)
    users = iam_json(iam_server, "list-users", account=account)["Users"]
    assert sorted(u["UserName"] for u in users) == ["bob", "carol"]
    for user in users:
        assert user["Arn"] == f"arn:aws:iam::{account}:user/{user['UserName']}"

    every = iam_json(iam_server, "list-access-keys", account=account)["AccessKeyMetadata"]
    assert {k["AccessKeyId"] for k in every} == {bob["AccessKeyId"], carol["AccessKeyId"]}
    for entry in every:
        assert set(entry) == {"UserName", "AccessKeyId", "Status", "CreateDate"}  # no secret
        assert entry["Status"] == "Active"
    bobs = iam_json(iam_server, "list-access-keys", "bob", account=account)["AccessKeyMetadata"]
    assert [(k["UserName"], k["AccessKeyId"]) for k in bobs] == [("bob", bob["AccessKeyId"])]
    # the default account's listing is separate
    default_users = {u["UserName"] for u in iam_json(iam_server, "list-users")["Users"]}
    assert not {"bob", "carol"} & default_users
    assert "admin" in default_users


def test_deleting_keys_and_users(iam_server: Server) -> None:
    account = "333344445555"
    pair = user_with_key(iam_server, "dave", account)
    kms = client_for(iam_server, pair)
    kms.list_keys()

    error = iam_refused(iam_server, "delete-user", "dave", account=account)
    assert "access keys" in error
    assert [
        u["UserName"] for u in iam_json(iam_server, "list-users", account=account)["Users"]
    ] == ["dave"]
    kms.list_keys()  # the refused delete changed nothing

    assert iam_json(iam_server, "delete-access-key", pair["AccessKeyId"], account=account) is None
    # the running server refuses the deleted key at once, for every operation
    assert fails(kms.list_keys) == ("UnrecognizedClientException", INVALID_TOKEN)
    assert fails(kms.create_key) == ("UnrecognizedClientException", INVALID_TOKEN)
    assert iam_json(iam_server, "list-access-keys", "dave", account=account) == {
        "AccessKeyMetadata": []
    }
    iam_refused(iam_server, "delete-access-key", pair["AccessKeyId"], account=account)

    assert iam_json(iam_server, "delete-user", "dave", account=account) is None
    assert iam_json(iam_server, "list-users", account=account) == {"Users": []}
    iam_refused(iam_server, "create-access-key", "dave", account=account)
    iam_refused(iam_server, "delete-user", "dave", account=account)


@pytest.mark.parametrize("name", ["bad name", "x" * 65, "semi;colon"])
def test_bad_user_names_are_refused(iam_server: Server, name: str) -> None:
    assert "user name" in iam_refused(iam_server, "create-user", name, account="555566667777")


def test_bad_account_and_duplicate_user(iam_server: Server) -> None:
    assert "12 digits" in iam_refused(iam_server, "create-user", "erin", account="12345")
    iam_json(iam_server, "create-user", "erin", account="666677778888")
    assert "already exists" in iam_refused(
        iam_server, "create-user", "erin", account="666677778888"
    )
    users = iam_json(iam_server, "list-users", account="666677778888")["Users"]
    assert [u["UserName"] for u in users] == ["erin"]


@pytest.fixture(scope="module")
def account_b(iam_server: Server) -> Any:
    return client_for(iam_server, user_with_key(iam_server, "frank", "444455556666"))


def test_accounts_are_separate_namespaces(iam_server: Server, account_b: Any) -> None:
    a = iam_server.client()
    a_key = a.create_key(Description="account A")["KeyMetadata"]
    a.create_alias(AliasName="alias/shared-name", TargetKeyId=a_key["KeyId"])

    assert account_b.list_keys()["Keys"] == []
    assert fails(lambda: account_b.describe_key(KeyId=a_key["KeyId"])) == (
        "NotFoundException",
        f"Key 'arn:aws:kms:{REGION}:444455556666:key/{a_key['KeyId']}' does not exist",
    )
    assert fails(lambda: account_b.describe_key(KeyId="alias/shared-name")) == (
        "NotFoundException",
        f"Alias arn:aws:kms:{REGION}:444455556666:alias/shared-name is not found.",
    )
    assert account_b.list_aliases()["Aliases"] == []

    b_key = account_b.create_key(Description="account B")["KeyMetadata"]
    assert b_key["AWSAccountId"] == "444455556666"
    assert b_key["Arn"] == f"arn:aws:kms:{REGION}:444455556666:key/{b_key['KeyId']}"
    account_b.create_alias(AliasName="alias/shared-name", TargetKeyId=b_key["KeyId"])
    assert [k["KeyId"] for k in account_b.list_keys()["Keys"]] == [b_key["KeyId"]]
    assert b_key["KeyId"] not in {k["KeyId"] for k in a.list_keys(Limit=1000)["Keys"]}
    code, _ = fails(lambda: a.describe_key(KeyId=b_key["KeyId"]))
    assert code == "NotFoundException"
    assert a.describe_key(KeyId="alias/shared-name")["KeyMetadata"]["KeyId"] == a_key["KeyId"]
    assert (
        account_b.describe_key(KeyId="alias/shared-name")["KeyMetadata"]["KeyId"] == b_key["KeyId"]
    )


def test_other_account_uses_a_key_by_its_arn(iam_server: Server, account_b: Any) -> None:
    # A key with the default policy is closed to account B ...
    a = iam_server.client()
    closed = a.create_key()["KeyMetadata"]
    assert fails(lambda: account_b.describe_key(KeyId=closed["Arn"]))[0] == "AccessDeniedException"
    # ... one whose key policy allows account B opens to B's users whose IAM policy allows.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
             "Action": ["kms:DescribeKey", "kms:Encrypt", "kms:Decrypt"], "Resource": "*"},
        ],
    }  # fmt: skip
    a_key = a.create_key(Description="cross-account", Policy=json.dumps(policy))["KeyMetadata"]
    meta = account_b.describe_key(KeyId=a_key["Arn"])["KeyMetadata"]
    assert meta["AWSAccountId"] == ACCOUNT
    assert meta["KeyId"] == a_key["KeyId"]
    out = account_b.encrypt(KeyId=a_key["Arn"], Plaintext=b"from B")
    assert out["KeyId"] == a_key["Arn"]
    assert a.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == b"from B"
    back = account_b.decrypt(CiphertextBlob=out["CiphertextBlob"], KeyId=a_key["Arn"])
    assert back["Plaintext"] == b"from B"
    # but aliases are per account: B cannot point its alias at A's key
    code, _ = fails(
        lambda: account_b.create_alias(AliasName="alias/borrowed", TargetKeyId=a_key["Arn"])
    )
    assert code == "NotFoundException"


def test_cli_files_written_by_serve(iam_server: Server) -> None:
    data: Path = iam_server.data_dir
    assert (data / "credentials").stat().st_mode & 0o777 == 0o600
    assert "[strongroom]" in (data / "credentials").read_text()
    config = (data / "config").read_text()
    assert "[profile strongroom]" in config
    assert "region = us-east-1" in config
