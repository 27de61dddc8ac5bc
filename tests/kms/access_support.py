"""Shared by the access-control end-to-end tests (``tests/kms/test_access_*_e2e.py``).

A server with a movable clock (started with ``--clock-offset-file`` so that a session can be made
to expire) and its :class:`Env`: the admin client, and the identity store of the data dir through
which identities are administered in process (the same store the ``strongroom iam`` CLI uses; the
server sees the changes at once); roles go through the CLI itself. Also policy builders, the
expected AccessDenied messages, and the AssumeRole helpers (:func:`make_roles` is the body of each
module's ``roles`` fixture).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from strongroom.clock import SystemClock
from strongroom.iam.identities import IdentityStore
from strongroom.iam.roles import RoleStore
from strongroom.rootkey import load_or_create_root_key
from strongroom.storage.engine import open_engine, sqlite_url
from tests.conftest import ACCOUNT, REGION, STRONGROOM, Server, running_server

ACCOUNT_B = "444455556666"
ACCOUNT_C = "555566667777"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
INVALID_TOKEN = "The security token included in the request is invalid."
NO_VALIDATION = BotoConfig(retries={"max_attempts": 1}, parameter_validation=False)


# --- the server and its identities -------------------------------------------------------------


@dataclass
class User:
    name: str
    account: str
    akid: str
    secret: str
    server: Server

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account}:user/{self.name}"

    def client(self, service: str = "kms") -> Any:
        return self.server.client(service, akid=self.akid, secret=self.secret)


class Env:
    """The module's server, its admin client, and the identity store of its data dir."""

    def __init__(self, server: Server, offset_file: Path) -> None:
        self.server = server
        self.offset_file = offset_file
        self.admin = server.client()
        self.engine = open_engine(sqlite_url(str(server.data_dir / "strongroom.db")))
        root = load_or_create_root_key(server.data_dir)
        self.ids = IdentityStore(self.engine, root, SystemClock())
        self.roles = RoleStore(self.engine, root, SystemClock(), self.ids)

    def user(self, name: str, *policies: dict[str, Any], account: str = ACCOUNT) -> User:
        """A new user with an access key and the given inline identity policies."""
        self.ids.create_user(account, name)
        for i, policy in enumerate(policies):
            self.put_user_policy(name, f"p{i}", policy, account)
        pair = self.ids.create_access_key(account, name)
        return User(name, account, pair.access_key_id, pair.secret_access_key, self.server)

    def put_user_policy(
        self, name: str, policy_name: str, policy: dict[str, Any], account: str = ACCOUNT
    ) -> None:
        self.roles.put_policy("user", account, name, policy_name, json.dumps(policy))

    def key(
        self, *statements: dict[str, Any], root: bool = True, version: str = "2012-10-17"
    ) -> dict[str, Any]:
        """A key made by the admin; with statements, a key policy of them (after the account
        root's ``kms:*`` statement unless ``root`` is False), else the default policy."""
        if not statements:
            return dict(self.admin.create_key()["KeyMetadata"])
        body = ([ROOT_STATEMENT] if root else []) + list(statements)
        policy = json.dumps({"Version": version, "Statement": body})
        return dict(self.admin.create_key(Policy=policy)["KeyMetadata"])

    def cli(self, *args: str, account: str = ACCOUNT) -> Any:
        proc = subprocess.run(
            [
                STRONGROOM,
                "iam",
                *args,
                "--data-dir",
                str(self.server.data_dir),
                "--account-id",
                account,
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def set_clock_offset(self, seconds: float) -> None:
        self.offset_file.write_text(str(seconds))


ROOT_STATEMENT = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": ROOT},
    "Action": "kms:*",
    "Resource": "*",
}


def allow(principal: str | list[str], actions: str | list[str], **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": actions,
        "Resource": "*",
    }
    if condition:
        statement["Condition"] = condition
    return statement


def deny(principal: str | list[str], actions: str | list[str], **condition: Any) -> dict[str, Any]:
    return {**allow(principal, actions, **condition), "Effect": "Deny"}


def identity(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


@contextlib.contextmanager
def access_env(base: Path) -> Iterator[Env]:
    """A server with a movable clock under ``base``, and its :class:`Env`."""
    offset = base / "clock-offset"
    offset.write_text("0")
    with running_server(base / "data", "--clock-offset-file", str(offset)) as server:
        environment = Env(server, offset)
        try:
            yield environment
        finally:
            environment.engine.dispose()


def fails(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as excinfo:
        call()
    error = excinfo.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def denied(call: Callable[[], Any]) -> str:
    """The message of an AccessDeniedException the call must raise."""
    code, message = fails(call)
    assert code == "AccessDeniedException", (code, message)
    return message


def hsm_denied(call: Callable[[], Any]) -> str:
    """The message of a CloudHsmAccessDeniedException the call must raise."""
    code, message = fails(call)
    assert code == "CloudHsmAccessDeniedException", (code, message)
    return message


def identity_statement(
    effect: str,
    action: str | list[str],
    resource: str = "*",
    condition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A statement of an identity policy (no Principal)."""
    statement: dict[str, Any] = {"Effect": effect, "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def denial(who: str, action: str, key_arn: str, why: str) -> str:
    return f"User: {who} is not authorized to perform: kms:{action} on resource: {key_arn} {why}"


def no_resource(action: str) -> str:
    return f"because no resource-based policy allows the kms:{action} action"


def no_identity(action: str) -> str:
    return f"because no identity-based policy allows the kms:{action} action"


EXPLICIT_RESOURCE = "with an explicit deny in a resource-based policy"
EXPLICIT_IDENTITY = "with an explicit deny in an identity-based policy"


def roundtrip(kms: Any, key: str, context: dict[str, str] | None = None) -> None:
    extra = {"EncryptionContext": context} if context is not None else {}
    blob = kms.encrypt(KeyId=key, Plaintext=b"secret", **extra)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, **extra)["Plaintext"] == b"secret"


# --- AssumeRole sessions -----------------------------------------------------------------------


@dataclass
class Roles:
    assumer: User  # may call sts:AssumeRole on roles of the account (identity policy)
    stranger: User  # no identity policy
    role_arn: str  # trusts the assumer directly; its policy allows Encrypt/Decrypt/DescribeKey
    delegating_arn: str  # trusts the account (IAM decides); MaxSessionDuration 7200


def session_client(env: Env, creds: dict[str, Any], service: str = "kms") -> Any:
    return boto3.client(
        service,
        endpoint_url=env.server.endpoint,
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=NO_VALIDATION,
    )


def sts_for(user: User) -> Any:
    return boto3.client(
        "sts",
        endpoint_url=user.server.endpoint,
        region_name=REGION,
        aws_access_key_id=user.akid,
        aws_secret_access_key=user.secret,
        config=NO_VALIDATION,
    )


def make_roles(env: Env, trust_dir: Path) -> Roles:
    """The users and roles of the AssumeRole tests (the trust policy file goes in ``trust_dir``)."""
    assumer = env.user(
        "assumer",
        identity(
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": f"arn:aws:iam::{ACCOUNT}:role/*",
            }
        ),
    )
    stranger = env.user("stranger")
    trust = trust_dir / "trust.json"
    trust.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": assumer.arn},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        )
    )
    role = env.cli("create-role", "encryptor", "--trust-policy", f"file://{trust}")["Role"]
    assert role["MaxSessionDuration"] == 3600
    env.cli(
        "put-role-policy",
        "encryptor",
        "use-keys",
        "--policy-document",
        json.dumps(
            identity(
                {
                    "Effect": "Allow",
                    "Resource": "*",
                    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
                }
            )
        ),
    )
    delegating = env.cli(
        "create-role",
        "delegating",
        "--max-session-duration",
        "7200",
        "--trust-policy",
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]
    return Roles(assumer, stranger, role["Arn"], delegating["Arn"])
