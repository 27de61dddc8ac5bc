"""End to end: access control as AWS KMS decides it, through boto3 against a real ``serve``.

The AWS-documented examples (KMS Developer Guide: default key policy, key administrators and key
users, encryption context conditions, kms:ViaService, kms:CallerAccount, grants, cross-account
use, AssumeRole sessions, explicit deny) as black-box tests. One fresh server per module (started
with ``--clock-offset-file`` so that a session can be made to expire), so listings are exact.

Identities are administered in process through the same identity store the ``strongroom iam`` CLI
uses (the server sees the changes at once); roles go through the CLI itself.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
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


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with access_env(tmp_path_factory.mktemp("access")) as environment:
        yield environment


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


# --- the default key policy --------------------------------------------------------------------


def test_default_policy_delegates_to_iam(env: Env) -> None:
    key = env.key()
    alice = env.user("alice", ALLOW_ALL)
    bob = env.user("bob")
    roundtrip(alice.client(), key["Arn"])  # an identity policy that allows: enough
    kms = bob.client()
    assert denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == denial(
        bob.arn, "Encrypt", key["Arn"], no_identity("Encrypt")
    )
    assert denied(lambda: kms.describe_key(KeyId=key["Arn"])) == denial(
        bob.arn, "DescribeKey", key["Arn"], no_identity("DescribeKey")
    )
    # An identity policy scoped to this key's ARN and to Encrypt opens exactly that, at once.
    env.put_user_policy(
        "bob",
        "encrypt-one",
        identity({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": key["Arn"]}),
    )
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert denied(lambda: kms.decrypt(CiphertextBlob=blob)) == denial(
        bob.arn, "Decrypt", key["Arn"], no_identity("Decrypt")
    )
    other = env.key()
    denied(lambda: kms.encrypt(KeyId=other["KeyId"], Plaintext=b"x"))
    # CreateKey and ListKeys have no key policy: the identity policy alone decides.
    assert denied(kms.create_key) == (
        f"User: {bob.arn} is not authorized to perform: kms:CreateKey on resource: * "
        + no_identity("CreateKey")
    )
    assert alice.client().list_keys()["Keys"]


def test_key_policy_that_does_not_allow_the_caller(env: Env) -> None:
    admin_arn = f"arn:aws:iam::{ACCOUNT}:user/admin"
    key = env.key(allow(admin_arn, "kms:*"), root=False)
    carol = env.user("carol", ALLOW_ALL)  # IAM allows everything, but the key policy decides
    kms = carol.client()
    assert denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == denial(
        carol.arn, "Encrypt", key["Arn"], no_resource("Encrypt")
    )
    denied(lambda: kms.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(ALLOW_ALL)))
    roundtrip(env.admin, key["KeyId"])


# --- key administrators and key users (the console's default policy) ---------------------------


def test_key_administrators_versus_key_users(env: Env) -> None:
    admin = env.user("keyadmin")
    user = env.user("keyuser")
    policy = {
        "Id": "key-consolepolicy-3",
        "Version": "2012-10-17",
        "Statement": [
            ROOT_STATEMENT,
            {
                "Sid": "Allow access for Key Administrators",
                "Effect": "Allow",
                "Principal": {"AWS": admin.arn},
                "Action": [
                    "kms:Create*",
                    "kms:Describe*",
                    "kms:Enable*",
                    "kms:List*",
                    "kms:Put*",
                    "kms:Update*",
                    "kms:Revoke*",
                    "kms:Disable*",
                    "kms:Get*",
                    "kms:Delete*",
                    "kms:TagResource",
                    "kms:UntagResource",
                    "kms:ScheduleKeyDeletion",
                    "kms:CancelKeyDeletion",
                    "kms:RotateKeyOnDemand",
                ],
                "Resource": "*",
            },
            {
                "Sid": "Allow use of the key",
                "Effect": "Allow",
                "Principal": {"AWS": user.arn},
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:DescribeKey",
                ],
                "Resource": "*",
            },
            {
                "Sid": "Allow attachment of persistent resources",
                "Effect": "Allow",
                "Principal": {"AWS": user.arn},
                "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                "Resource": "*",
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
        ],
    }
    text = json.dumps(policy, indent=2)
    key = dict(env.admin.create_key(Policy=text)["KeyMetadata"])
    kid, arn = key["KeyId"], key["Arn"]

    mgr = admin.client()
    assert mgr.describe_key(KeyId=kid)["KeyMetadata"]["KeyId"] == kid
    assert mgr.get_key_policy(KeyId=kid, PolicyName="default")["Policy"] == text
    mgr.tag_resource(KeyId=kid, Tags=[{"TagKey": "team", "TagValue": "sec"}])
    mgr.disable_key(KeyId=kid)
    mgr.enable_key(KeyId=kid)
    mgr.update_key_description(KeyId=kid, Description="managed by keyadmin")
    mgr.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    mgr.cancel_key_deletion(KeyId=kid)
    mgr.enable_key(KeyId=kid)
    mgr.put_key_policy(KeyId=kid, PolicyName="default", Policy=text)
    for action, call in [
        ("Encrypt", lambda: mgr.encrypt(KeyId=kid, Plaintext=b"x")),
        ("GenerateDataKey", lambda: mgr.generate_data_key(KeyId=kid, KeySpec="AES_256")),
    ]:
        assert denied(call) == denial(admin.arn, action, arn, no_identity(action))

    use = user.client()
    roundtrip(use, kid, {"purpose": "test"})
    assert len(use.generate_data_key(KeyId=kid, NumberOfBytes=32)["Plaintext"]) == 32
    use.generate_data_key_without_plaintext(KeyId=kid, KeySpec="AES_128")
    blob = use.encrypt(KeyId=kid, Plaintext=b"y")["CiphertextBlob"]
    use.re_encrypt(CiphertextBlob=blob, DestinationKeyId=kid)
    assert use.describe_key(KeyId=arn)["KeyMetadata"]["Description"] == "managed by keyadmin"
    for action, call in [
        ("ScheduleKeyDeletion", lambda: use.schedule_key_deletion(KeyId=kid)),
        ("PutKeyPolicy", lambda: use.put_key_policy(KeyId=kid, PolicyName="default", Policy=text)),
        ("DisableKey", lambda: use.disable_key(KeyId=kid)),
        ("GetKeyPolicy", lambda: use.get_key_policy(KeyId=kid, PolicyName="default")),
    ]:
        assert denied(call) == denial(user.arn, action, arn, no_identity(action))
    # a grant for an AWS service only: a direct CreateGrant is not one
    denied(lambda: use.create_grant(KeyId=kid, GranteePrincipal=admin.arn, Operations=["Decrypt"]))
    assert env.admin.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"


# --- condition keys ----------------------------------------------------------------------------

NONE = None
EC_CASES: list[tuple[str, dict[str, Any], list[tuple[dict[str, str] | None, bool]]]] = [
    (
        "StringEquals on one context pair",
        {"StringEquals": {"kms:EncryptionContext:Department": "IT"}},
        [
            ({"Department": "IT"}, True),
            ({"department": "IT"}, True),
            ({"Department": "IT", "Project": "x"}, True),
            ({"Department": "it"}, False),
            ({"Department": "HR"}, False),
            ({"Dept": "IT"}, False),
            (NONE, False),
        ],
    ),
    (
        "ForAllValues on the context keys",
        {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}},
        [
            ({"Department": "a"}, True),
            ({"Department": "a", "Project": "b"}, True),
            ({"Department": "a", "Other": "b"}, False),
            ({"Other": "b"}, False),
            (NONE, True),
        ],  # no context: nothing to fail ForAllValues (as AWS warns)
    ),
    (
        "ForAnyValue on the context keys",
        {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "Department"}},
        [({"Department": "a", "Other": "b"}, True), ({"Other": "b"}, False), (NONE, False)],
    ),
    (
        "ForAllValues and Null together (the documented fix)",
        {
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]},
            "Null": {"kms:EncryptionContextKeys": "false"},
        },
        [({"Project": "a"}, True), ({"Other": "b"}, False), (NONE, False)],
    ),
    (
        "Null: some context required",
        {"Null": {"kms:EncryptionContextKeys": "false"}},
        [({"any": "thing"}, True), (NONE, False)],
    ),
    (
        "Null: one pair required",
        {"Null": {"kms:EncryptionContext:Department": "false"}},
        [({"Department": "x"}, True), ({"Project": "x"}, False), (NONE, False)],
    ),
    (
        "StringLike on a context value",
        {"StringLike": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::bucket/*"}},
        [
            ({"aws:s3:arn": "arn:aws:s3:::bucket/a/b"}, True),
            ({"aws:s3:arn": "arn:aws:s3:::other/a"}, False),
        ],
    ),
]


@pytest.fixture(scope="module")
def ec_user(env: Env) -> User:
    return env.user("ec")  # no identity policy: only the key policy speaks for it


@pytest.mark.parametrize(
    ("condition", "cases"), [c[1:] for c in EC_CASES], ids=[c[0] for c in EC_CASES]
)
def test_encryption_context_conditions(
    env: Env,
    ec_user: User,
    condition: dict[str, Any],
    cases: list[tuple[dict[str, str] | None, bool]],
) -> None:
    key = env.key(
        {
            **allow(ec_user.arn, ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]),
            "Condition": condition,
        }
    )
    kms = ec_user.client()
    for context, allowed in cases:
        extra = {"EncryptionContext": context} if context is not None else {}
        if allowed:
            roundtrip(kms, key["KeyId"], context)
            kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", **extra)
        else:
            msg = denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", **extra))  # noqa: B023
            # the statement for ec does not apply; the account's does, and IAM has no allow
            assert msg == denial(ec_user.arn, "Encrypt", key["Arn"], no_identity("Encrypt"))
            denied(lambda: kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=16, **extra))  # noqa: B023
            if context is not None:  # Decrypt is checked against the context given
                blob = env.admin.encrypt(KeyId=key["KeyId"], Plaintext=b"x", **extra)
                denied(
                    lambda: kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], **extra)  # noqa: B023
                )


def test_via_service_never_matches_a_direct_call(env: Env, ec_user: User) -> None:
    via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    key = env.key({**allow(ec_user.arn, ["kms:Encrypt", "kms:Decrypt"]), "Condition": via_s3})
    kms = ec_user.client()
    assert denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == denial(
        ec_user.arn, "Encrypt", key["Arn"], no_identity("Encrypt")
    )
    # ...IfExists: the key is absent from a direct call, so the condition holds
    if_exists = {"StringEqualsIfExists": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    key2 = env.key({**allow(ec_user.arn, "kms:Encrypt"), "Condition": if_exists})
    kms.encrypt(KeyId=key2["KeyId"], Plaintext=b"x")
    # The documented "only through a service" Deny (negated operator, key absent) denies direct
    # calls even of a principal the policy allows everything.
    admin_arn = f"arn:aws:iam::{ACCOUNT}:user/admin"
    only_via = {"StringNotEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    key3 = env.key({**deny(admin_arn, "kms:Decrypt"), "Condition": only_via})
    blob = env.admin.encrypt(KeyId=key3["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert denied(lambda: env.admin.decrypt(CiphertextBlob=blob)) == denial(
        admin_arn, "Decrypt", key3["Arn"], EXPLICIT_RESOURCE
    )


def test_source_ip(env: Env, ec_user: User) -> None:
    kms = ec_user.client()
    local = env.key(allow(ec_user.arn, "kms:Encrypt", IpAddress={"aws:SourceIp": "127.0.0.0/8"}))
    kms.encrypt(KeyId=local["KeyId"], Plaintext=b"x")
    exact = env.key(allow(ec_user.arn, "kms:Encrypt", IpAddress={"aws:SourceIp": "127.0.0.1/32"}))
    kms.encrypt(KeyId=exact["KeyId"], Plaintext=b"x")
    remote = env.key(
        allow(
            ec_user.arn, "kms:Encrypt", IpAddress={"aws:SourceIp": ["192.0.2.0/24", "10.0.0.0/8"]}
        )
    )
    assert denied(lambda: kms.encrypt(KeyId=remote["KeyId"], Plaintext=b"x")) == denial(
        ec_user.arn, "Encrypt", remote["Arn"], no_identity("Encrypt")
    )
    admin_arn = f"arn:aws:iam::{ACCOUNT}:user/admin"
    fenced = env.key(
        deny(
            admin_arn,
            ["kms:Encrypt", "kms:Decrypt"],
            NotIpAddress={"aws:SourceIp": "198.51.100.0/24"},
        )
    )
    assert denied(lambda: env.admin.encrypt(KeyId=fenced["KeyId"], Plaintext=b"x")) == denial(
        admin_arn, "Encrypt", fenced["Arn"], EXPLICIT_RESOURCE
    )


def test_explicit_deny_in_the_key_policy_overrides_an_allow(env: Env) -> None:
    dan = env.user("dan", ALLOW_ALL)
    for statements in (
        [allow(dan.arn, "kms:*"), deny(dan.arn, "kms:Encrypt")],
        [deny(dan.arn, "kms:Encrypt"), allow(dan.arn, "kms:*")],  # order does not matter
        [deny(f"arn:aws:iam::{ACCOUNT}:root", "kms:Encrypt")],  # the account: all its users
    ):
        key = env.key(*statements)
        kms = dan.client()
        assert denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == denial(  # noqa: B023
            dan.arn, "Encrypt", key["Arn"], EXPLICIT_RESOURCE
        )
        kms.describe_key(KeyId=key["KeyId"])  # the rest is still allowed
        # a grant never overrides an explicit deny
        env.admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=dan.arn, Operations=["Encrypt"])
        denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x"))  # noqa: B023


def test_explicit_deny_in_an_identity_policy_overrides_an_allow(env: Env) -> None:
    no_encrypt = identity({"Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"})
    erin = env.user("erin", ALLOW_ALL, no_encrypt)
    key = env.key(allow(erin.arn, "kms:*"))  # the key policy names erin directly
    kms = erin.client()
    assert denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == denial(
        erin.arn, "Encrypt", key["Arn"], EXPLICIT_IDENTITY
    )
    kms.describe_key(KeyId=key["KeyId"])
    blob = env.admin.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    env.admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=erin.arn, Operations=["Encrypt"])
    denied(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x"))


def test_caller_account(env: Env) -> None:
    key = env.key(
        allow(
            "*",
            ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
            StringEquals={"kms:CallerAccount": ACCOUNT},
        )
    )
    frank = env.user("frank")  # no identity policy: Principal "*" names him directly
    roundtrip(frank.client(), key["KeyId"])
    outsider = env.user("outsider", ALLOW_ALL, account=ACCOUNT_B)
    kms_b = outsider.client()
    assert denied(lambda: kms_b.encrypt(KeyId=key["Arn"], Plaintext=b"x")) == denial(
        outsider.arn, "Encrypt", key["Arn"], no_resource("Encrypt")
    )


def test_policy_variables(env: Env) -> None:
    gina, hank = env.user("gina"), env.user("hank")
    owner = {"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}}
    key = env.key(
        {**allow([gina.arn, hank.arn], ["kms:Encrypt", "kms:Decrypt"]), "Condition": owner}
    )
    for me, other in ((gina, hank), (hank, gina)):
        kms = me.client()
        roundtrip(kms, key["KeyId"], {"owner": me.name})
        for owner_name in (other.name, "${aws:username}"):
            denied(
                partial(
                    kms.encrypt,
                    KeyId=key["KeyId"],
                    Plaintext=b"x",
                    EncryptionContext={"owner": owner_name},
                )
            )

    # in an identity policy
    ivan = env.user(
        "ivan",
        identity(
            {
                "Effect": "Allow",
                "Action": "kms:Encrypt",
                "Resource": f"arn:aws:kms:*:{ACCOUNT}:key/*",
                "Condition": {"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}},
            }
        ),
    )
    default = env.key()
    kms = ivan.client()
    kms.encrypt(KeyId=default["KeyId"], Plaintext=b"x", EncryptionContext={"owner": "ivan"})
    assert denied(
        lambda: kms.encrypt(
            KeyId=default["KeyId"], Plaintext=b"x", EncryptionContext={"owner": "gina"}
        )
    ) == denial(ivan.arn, "Encrypt", default["Arn"], no_identity("Encrypt"))

    # Version 2008-10-17 has no variables: "${aws:username}" is a literal string
    old = env.key({**allow(gina.arn, "kms:Encrypt"), "Condition": owner}, version="2008-10-17")
    kms = gina.client()
    denied(
        lambda: kms.encrypt(KeyId=old["KeyId"], Plaintext=b"x", EncryptionContext={"owner": "gina"})
    )
    kms.encrypt(KeyId=old["KeyId"], Plaintext=b"x", EncryptionContext={"owner": "${aws:username}"})


# --- grants ------------------------------------------------------------------------------------


def test_grant_allows_exactly_its_operations(env: Env) -> None:
    key = env.key()
    kid = key["KeyId"]
    jay = env.user("jay")
    kms = jay.client()
    denied(lambda: kms.encrypt(KeyId=kid, Plaintext=b"x"))
    grant = env.admin.create_grant(
        KeyId=kid, GranteePrincipal=jay.arn, Operations=["Encrypt", "Decrypt"]
    )
    assert re.fullmatch(r"[0-9a-f]{64}", grant["GrantId"])
    assert grant["GrantToken"]
    roundtrip(kms, kid, {"any": "context"})
    roundtrip(kms, key["Arn"])
    for action, call in [
        ("GenerateDataKey", lambda: kms.generate_data_key(KeyId=kid, KeySpec="AES_256")),
        ("DescribeKey", lambda: kms.describe_key(KeyId=kid)),
        (
            "ReEncrypt",
            lambda: kms.re_encrypt(
                CiphertextBlob=kms.encrypt(KeyId=kid, Plaintext=b"x")["CiphertextBlob"],
                DestinationKeyId=kid,
            ),
        ),
        (
            "CreateGrant",
            lambda: kms.create_grant(KeyId=kid, GranteePrincipal=jay.arn, Operations=["Encrypt"]),
        ),
        ("ListGrants", lambda: kms.list_grants(KeyId=kid)),
        ("DisableKey", lambda: kms.disable_key(KeyId=kid)),
    ]:
        message = denied(call)
        assert message.startswith(f"User: {jay.arn} is not authorized to perform: kms:{action}")
        assert f" on resource: {key['Arn']} " in message
    other = env.key()
    denied(lambda: kms.encrypt(KeyId=other["KeyId"], Plaintext=b"x"))  # only the granted key


def test_grant_constraints(env: Env) -> None:
    key = env.key()
    kid = key["KeyId"]
    kay, lee = env.user("kay"), env.user("lee")
    env.admin.create_grant(
        KeyId=kid,
        GranteePrincipal=kay.arn,
        Operations=["Encrypt", "Decrypt", "GenerateDataKey"],
        Constraints={"EncryptionContextEquals": {"app": "one", "stage": "prod"}},
    )
    env.admin.create_grant(
        KeyId=kid,
        GranteePrincipal=lee.arn,
        Operations=["Encrypt", "Decrypt"],
        Constraints={"EncryptionContextSubset": {"app": "one"}},
    )
    cases = {
        "kay": [
            ({"app": "one", "stage": "prod"}, True),
            ({"stage": "prod", "app": "one"}, True),
            ({"app": "one"}, False),
            ({"app": "one", "stage": "prod", "x": "y"}, False),
            ({"app": "One", "stage": "prod"}, False),
            (None, False),
        ],
        "lee": [
            ({"app": "one"}, True),
            ({"app": "one", "x": "y"}, True),
            ({"APP": "one"}, True),  # constraint keys compare case-insensitively
            ({"app": "two"}, False),
            ({"x": "y"}, False),
            (None, False),
        ],
    }
    for user in (kay, lee):
        kms = user.client()
        for context, allowed in cases[user.name]:
            extra = {"EncryptionContext": context} if context is not None else {}
            if allowed:
                roundtrip(kms, kid, context)
            else:
                denied(lambda: kms.encrypt(KeyId=kid, Plaintext=b"x", **extra))  # noqa: B023
                blob = env.admin.encrypt(KeyId=kid, Plaintext=b"x", **extra)["CiphertextBlob"]
                denied(lambda: kms.decrypt(CiphertextBlob=blob, **extra))  # noqa: B023
    kay.client().generate_data_key(
        KeyId=kid, KeySpec="AES_256", EncryptionContext={"app": "one", "stage": "prod"}
    )


def test_grant_tokens(env: Env) -> None:
    key = env.key()
    kid = key["KeyId"]
    mo = env.user("mo")
    grant = env.admin.create_grant(
        KeyId=kid, GranteePrincipal=mo.arn, Operations=["GenerateDataKey"]
    )
    kms = mo.client()
    out = kms.generate_data_key(KeyId=kid, KeySpec="AES_256", GrantTokens=[grant["GrantToken"]])
    assert out["KeyId"] == key["Arn"]
    bogus = base64.b64encode(os.urandom(48)).decode()
    for tokens in ([bogus], [grant["GrantToken"], bogus], ["not a token!"]):
        code, _ = fails(
            lambda: kms.generate_data_key(KeyId=kid, KeySpec="AES_256", GrantTokens=tokens)  # noqa: B023
        )
        assert code == "InvalidGrantTokenException"
    code, _ = fails(lambda: env.admin.retire_grant(GrantToken=bogus))
    assert code == "InvalidGrantTokenException"


def test_list_retire_and_revoke_grants(env: Env) -> None:
    key = env.key()
    kid, arn = key["KeyId"], key["Arn"]
    nia, ola, pat = env.user("nia"), env.user("ola"), env.user("pat")
    admin = env.admin
    made = [
        admin.create_grant(
            KeyId=kid,
            GranteePrincipal=nia.arn,
            RetiringPrincipal=ola.arn,
            Operations=["Encrypt", "Decrypt"],
            Name=f"g{i}",
            Constraints={"EncryptionContextSubset": {"n": str(i)}},
        )
        for i in range(3)
    ]
    own = admin.create_grant(
        KeyId=kid, GranteePrincipal=nia.arn, Operations=["Encrypt", "RetireGrant"]
    )
    ids = [g["GrantId"] for g in made]

    listed = admin.list_grants(KeyId=kid)
    assert listed["Truncated"] is False
    by_id = {g["GrantId"]: g for g in listed["Grants"]}
    assert set(by_id) == {*ids, own["GrantId"]}
    first = by_id[ids[0]]
    assert first["KeyId"] == arn
    assert first["GranteePrincipal"] == nia.arn
    assert first["RetiringPrincipal"] == ola.arn
    assert first["IssuingAccount"] == ROOT
    assert first["Name"] == "g0"
    assert sorted(first["Operations"]) == ["Decrypt", "Encrypt"]
    assert first["Constraints"] == {"EncryptionContextSubset": {"n": "0"}}
    assert "CreationDate" in first
    assert "RetiringPrincipal" not in by_id[own["GrantId"]]
    assert [g["GrantId"] for g in admin.list_grants(KeyId=kid, GrantId=ids[1])["Grants"]] == [
        ids[1]
    ]
    page = admin.list_grants(KeyId=kid, Limit=2)
    assert page["Truncated"] is True and len(page["Grants"]) == 2
    rest = admin.list_grants(KeyId=kid, Marker=page["NextMarker"])["Grants"]
    assert {g["GrantId"] for g in page["Grants"] + rest} == set(by_id)

    retirable = admin.list_retirable_grants(RetiringPrincipal=ola.arn)["Grants"]
    assert sorted(g["GrantId"] for g in retirable) == sorted(ids)
    assert {g["KeyId"] for g in retirable} == {arn}
    assert admin.list_retirable_grants(RetiringPrincipal=pat.arn)["Grants"] == []

    # an unrelated user (no policy, not named by the grant) may not retire it, either way
    stranger = pat.client()
    assert denied(lambda: stranger.retire_grant(KeyId=arn, GrantId=ids[0])).startswith(
        f"User: {pat.arn} is not authorized to perform: kms:RetireGrant on resource: {arn}"
    )
    denied(lambda: stranger.retire_grant(GrantToken=made[0]["GrantToken"]))
    denied(lambda: stranger.revoke_grant(KeyId=kid, GrantId=ids[0]))
    # nor may the grantee when the grant does not include RetireGrant
    denied(lambda: nia.client().retire_grant(KeyId=arn, GrantId=ids[0]))
    nia.client().encrypt(KeyId=kid, Plaintext=b"x", EncryptionContext={"n": "0"})

    retirer = ola.client()
    retirer.retire_grant(GrantToken=made[0]["GrantToken"])  # by token, by the retiring principal
    retirer.retire_grant(KeyId=arn, GrantId=ids[1])  # by key ARN and grant id
    code, _ = fails(lambda: retirer.retire_grant(KeyId=arn, GrantId=ids[1]))
    assert code == "NotFoundException"
    nia.client().retire_grant(KeyId=arn, GrantId=own["GrantId"])  # the grantee, with RetireGrant
    admin.revoke_grant(KeyId=kid, GrantId=ids[2])  # kms:RevokeGrant through the key policy
    assert admin.list_grants(KeyId=kid)["Grants"] == []
    assert admin.list_retirable_grants(RetiringPrincipal=ola.arn)["Grants"] == []
    denied(lambda: nia.client().encrypt(KeyId=kid, Plaintext=b"x", EncryptionContext={"n": "2"}))
    code, _ = fails(lambda: admin.revoke_grant(KeyId=kid, GrantId=ids[2]))
    assert code == "NotFoundException"
    code, _ = fails(lambda: admin.revoke_grant(KeyId=kid, GrantId="nope"))
    assert code == "InvalidGrantIdException"


def test_grant_name_idempotency(env: Env) -> None:
    key = env.key()
    kid = key["KeyId"]
    quinn = env.user("quinn")
    args: dict[str, Any] = {
        "KeyId": kid,
        "GranteePrincipal": quinn.arn,
        "Operations": ["Encrypt"],
        "Name": "nightly",
    }
    first = env.admin.create_grant(**args)
    again = env.admin.create_grant(**args)
    assert again["GrantId"] == first["GrantId"]
    assert again["GrantToken"] != first["GrantToken"]
    kms = quinn.client()
    for token in (first["GrantToken"], again["GrantToken"]):  # interchangeable
        kms.encrypt(KeyId=kid, Plaintext=b"x", GrantTokens=[token])
    assert len(env.admin.list_grants(KeyId=kid)["Grants"]) == 1
    other = env.admin.create_grant(**{**args, "Name": "weekly"})
    unnamed = [
        env.admin.create_grant(**{k: v for k, v in args.items() if k != "Name"}) for _ in range(2)
    ]
    ids = {first["GrantId"], other["GrantId"], *(g["GrantId"] for g in unnamed)}
    assert len(ids) == 4
    assert {g["GrantId"] for g in env.admin.list_grants(KeyId=kid)["Grants"]} == ids


def test_create_grant_through_a_grant_only_for_a_subset(env: Env) -> None:
    key = env.key()
    kid = key["KeyId"]
    rex, sam = env.user("rex"), env.user("sam")
    env.admin.create_grant(
        KeyId=kid,
        GranteePrincipal=rex.arn,
        Operations=["Encrypt", "Decrypt", "CreateGrant"],
        Constraints={"EncryptionContextSubset": {"tenant": "t1"}},
    )
    kms = rex.client()
    child = kms.create_grant(
        KeyId=kid,
        GranteePrincipal=sam.arn,
        Operations=["Encrypt"],
        Constraints={"EncryptionContextSubset": {"tenant": "t1", "env": "prod"}},
    )
    sam.client().encrypt(
        KeyId=kid,
        Plaintext=b"x",
        EncryptionContext={"tenant": "t1", "env": "prod"},
        GrantTokens=[child["GrantToken"]],
    )
    blob = env.admin.encrypt(
        KeyId=kid, Plaintext=b"x", EncryptionContext={"tenant": "t1", "env": "prod"}
    )["CiphertextBlob"]
    denied(  # the child grant gives no Decrypt
        lambda: sam.client().decrypt(
            CiphertextBlob=blob, EncryptionContext={"tenant": "t1", "env": "prod"}
        )
    )
    for operations, constraints in [
        (["Encrypt", "GenerateDataKey"], {"EncryptionContextSubset": {"tenant": "t1"}}),
        (["Encrypt"], None),  # looser than the parent
        (["Encrypt"], {"EncryptionContextSubset": {"tenant": "t2"}}),
        (["RetireGrant"], {"EncryptionContextSubset": {"tenant": "t1"}}),
    ]:
        extra = {"Constraints": constraints} if constraints else {}
        assert denied(
            partial(
                kms.create_grant,
                KeyId=kid,
                GranteePrincipal=sam.arn,
                Operations=operations,
                **extra,
            )
        ).startswith(f"User: {rex.arn} is not authorized to perform: kms:CreateGrant")
    assert len(env.admin.list_grants(KeyId=kid, GranteePrincipal=sam.arn)["Grants"]) == 1


# --- cross-account -----------------------------------------------------------------------------


def test_cross_account_needs_both_policies(env: Env) -> None:
    shared = env.key(
        allow(
            f"arn:aws:iam::{ACCOUNT_B}:root",
            ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
        )
    )
    closed = env.key()
    b_all = env.user("b-all", ALLOW_ALL, account=ACCOUNT_B)
    b_none = env.user("b-none", account=ACCOUNT_B)
    b_one = env.user(
        "b-one",
        identity({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": shared["Arn"]}),
        account=ACCOUNT_B,
    )
    kms = b_all.client()
    out = kms.encrypt(KeyId=shared["Arn"], Plaintext=b"from B")
    assert out["KeyId"] == shared["Arn"]
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == b"from B"
    assert env.admin.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == b"from B"
    assert kms.describe_key(KeyId=shared["Arn"])["KeyMetadata"]["AWSAccountId"] == ACCOUNT
    kms.generate_data_key(KeyId=shared["Arn"], KeySpec="AES_256")
    # only what A's key policy gives B
    assert denied(lambda: kms.schedule_key_deletion(KeyId=shared["Arn"])) == denial(
        b_all.arn, "ScheduleKeyDeletion", shared["Arn"], no_resource("ScheduleKeyDeletion")
    )
    # B's identity policy alone does not suffice ...
    assert denied(lambda: kms.encrypt(KeyId=closed["Arn"], Plaintext=b"x")) == denial(
        b_all.arn, "Encrypt", closed["Arn"], no_resource("Encrypt")
    )
    # ... nor does A's key policy alone
    assert denied(lambda: b_none.client().encrypt(KeyId=shared["Arn"], Plaintext=b"x")) == denial(
        b_none.arn, "Encrypt", shared["Arn"], no_identity("Encrypt")
    )
    one = b_one.client()
    one.encrypt(KeyId=shared["Arn"], Plaintext=b"x")
    assert denied(lambda: one.decrypt(CiphertextBlob=out["CiphertextBlob"])) == denial(
        b_one.arn, "Decrypt", shared["Arn"], no_identity("Decrypt")
    )
    # a bare key id is looked up in the caller's own account
    code, message = fails(lambda: kms.encrypt(KeyId=shared["KeyId"], Plaintext=b"x"))
    assert (code, message) == (
        "NotFoundException",
        f"Key 'arn:aws:kms:{REGION}:{ACCOUNT_B}:key/{shared['KeyId']}' does not exist",
    )


def test_cross_account_aliases_and_listings(env: Env) -> None:
    shared = env.key(allow(f"arn:aws:iam::{ACCOUNT_B}:root", ["kms:Encrypt", "kms:DescribeKey"]))
    env.admin.create_alias(AliasName="alias/shared-a", TargetKeyId=shared["KeyId"])
    user = env.user("b-alias", ALLOW_ALL, account=ACCOUNT_B)
    kms = user.client()
    code, message = fails(lambda: kms.encrypt(KeyId="alias/shared-a", Plaintext=b"x"))
    assert (code, message) == (
        "NotFoundException",
        f"Alias arn:aws:kms:{REGION}:{ACCOUNT_B}:alias/shared-a is not found.",
    )
    code, _ = fails(lambda: kms.create_alias(AliasName="alias/mine", TargetKeyId=shared["Arn"]))
    assert code == "NotFoundException"
    assert all(a["AliasName"] != "alias/shared-a" for a in kms.list_aliases()["Aliases"])
    # (the alias ARN names A's alias explicitly: that works across accounts, as in AWS)
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/shared-a"
    assert kms.encrypt(KeyId=alias_arn, Plaintext=b"x")["KeyId"] == shared["Arn"]

    c_user = env.user("c-all", ALLOW_ALL, account=ACCOUNT_C)
    c_kms = c_user.client()
    made = {c_kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2)}
    listed = c_kms.list_keys()["Keys"]
    assert {k["KeyId"] for k in listed} == made
    assert all(f":{ACCOUNT_C}:key/" in k["KeyArn"] for k in listed)
    a_keys = env.admin.list_keys(Limit=1000)["Keys"]
    assert not made & {k["KeyId"] for k in a_keys}
    assert shared["KeyId"] in {k["KeyId"] for k in a_keys}
    assert all(f":{ACCOUNT}:key/" in k["KeyArn"] for k in a_keys)


def test_cross_account_grant(env: Env) -> None:
    key = env.key()
    b_user = env.user("b-grantee", account=ACCOUNT_B)  # no identity policy at all
    kms = b_user.client()
    denied(lambda: kms.encrypt(KeyId=key["Arn"], Plaintext=b"x"))
    env.admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=b_user.arn, Operations=["Encrypt"])
    assert kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")["KeyId"] == key["Arn"]


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


@pytest.fixture(scope="module")
def roles(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Roles:
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
    trust = tmp_path_factory.mktemp("trust") / "trust.json"
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


def test_get_caller_identity(env: Env, roles: Roles) -> None:
    me = sts_for(roles.assumer).get_caller_identity()
    assert me["Arn"] == roles.assumer.arn
    assert me["Account"] == ACCOUNT
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", me["UserId"])
    admin = env.server.client("sts").get_caller_identity()
    assert admin["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/admin"


def test_assumed_role_session_uses_the_role_policies(env: Env, roles: Roles) -> None:
    before = time.time()
    out = sts_for(roles.assumer).assume_role(RoleArn=roles.role_arn, RoleSessionName="s1")
    creds, who = out["Credentials"], out["AssumedRoleUser"]
    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/encryptor/s1"
    assert who["Arn"] == session_arn
    assert re.fullmatch(r"AROA[A-Z2-7]{17}:s1", who["AssumedRoleId"])
    assert creds["AccessKeyId"].startswith("ASIA")
    assert abs(creds["Expiration"].timestamp() - (before + 3600)) < 30

    me = session_client(env, creds, "sts").get_caller_identity()
    assert (me["Arn"], me["UserId"], me["Account"]) == (session_arn, who["AssumedRoleId"], ACCOUNT)

    kms = session_client(env, creds)
    plain = env.key()  # default policy: the role's identity policy decides
    roundtrip(kms, plain["KeyId"])
    kms.describe_key(KeyId=plain["Arn"])
    assert denied(lambda: kms.generate_data_key(KeyId=plain["KeyId"], KeySpec="AES_256")) == denial(
        session_arn, "GenerateDataKey", plain["Arn"], no_identity("GenerateDataKey")
    )
    # the user who assumed the role has none of its permissions
    denied(lambda: roles.assumer.client().encrypt(KeyId=plain["KeyId"], Plaintext=b"x"))

    # a key policy naming the role ARN allows its sessions directly
    named = env.key(allow(roles.role_arn, "kms:GenerateDataKey"))
    kms.generate_data_key(KeyId=named["KeyId"], KeySpec="AES_256")
    # one naming a session ARN allows only that session
    only_s1 = env.key(allow(session_arn, "kms:GenerateDataKey"))
    kms.generate_data_key(KeyId=only_s1["KeyId"], KeySpec="AES_256")
    s2 = sts_for(roles.assumer).assume_role(RoleArn=roles.role_arn, RoleSessionName="s2")
    kms2 = session_client(env, s2["Credentials"])
    denied(lambda: kms2.generate_data_key(KeyId=only_s1["KeyId"], KeySpec="AES_256"))
    kms2.generate_data_key(KeyId=named["KeyId"], KeySpec="AES_256")
    # an explicit deny naming the role reaches its sessions
    fenced = env.key(deny(roles.role_arn, "kms:Encrypt"))
    assert denied(lambda: kms.encrypt(KeyId=fenced["KeyId"], Plaintext=b"x")) == denial(
        session_arn, "Encrypt", fenced["Arn"], EXPLICIT_RESOURCE
    )
    # a grant to the role is used by its sessions
    granted = env.key()
    denied(lambda: kms.generate_data_key(KeyId=granted["KeyId"], KeySpec="AES_256"))
    env.admin.create_grant(
        KeyId=granted["KeyId"], GranteePrincipal=roles.role_arn, Operations=["GenerateDataKey"]
    )
    kms.generate_data_key(KeyId=granted["KeyId"], KeySpec="AES_256")


def test_trust_policy_decides_who_may_assume(env: Env, roles: Roles) -> None:
    def refused(user: User, role_arn: str) -> tuple[str, str]:
        return fails(lambda: sts_for(user).assume_role(RoleArn=role_arn, RoleSessionName="x1"))

    assert refused(roles.stranger, roles.role_arn) == (
        "AccessDenied",
        f"User: {roles.stranger.arn} is not authorized to perform: sts:AssumeRole on resource: "
        f"{roles.role_arn}",
    )
    # a trust policy naming the account delegates to IAM: the identity policy must allow too
    out = sts_for(roles.assumer).assume_role(RoleArn=roles.delegating_arn, RoleSessionName="d1")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/delegating/d1"
    assert refused(roles.stranger, roles.delegating_arn)[0] == "AccessDenied"
    missing = f"arn:aws:iam::{ACCOUNT}:role/no-such-role"
    assert refused(roles.assumer, missing)[0] == "AccessDenied"
    outsider = env.user("sts-outsider", ALLOW_ALL, account=ACCOUNT_B)
    assert refused(outsider, roles.role_arn)[0] == "AccessDenied"


def test_duration_seconds_limits(env: Env, roles: Roles) -> None:
    sts = sts_for(roles.assumer)
    for arn, seconds, expected in [
        (roles.role_arn, 899, "Member must have value greater than or equal to 900"),
        (roles.role_arn, 43201, "Member must have value less than or equal to 43200"),
        (roles.role_arn, 3601, "exceeds the MaxSessionDuration set for this role"),
        (roles.delegating_arn, 7201, "exceeds the MaxSessionDuration set for this role"),
    ]:
        code, message = fails(
            lambda: sts.assume_role(RoleArn=arn, RoleSessionName="dur", DurationSeconds=seconds)  # noqa: B023
        )
        assert code == "ValidationError"
        assert expected in message
    for arn, seconds in [
        (roles.role_arn, 900),
        (roles.role_arn, 3600),
        (roles.delegating_arn, 7200),
    ]:
        before = time.time()
        out = sts.assume_role(RoleArn=arn, RoleSessionName="dur", DurationSeconds=seconds)
        assert abs(out["Credentials"]["Expiration"].timestamp() - (before + seconds)) < 30


def test_expired_session(env: Env, roles: Roles) -> None:
    out = sts_for(roles.assumer).assume_role(
        RoleArn=roles.role_arn, RoleSessionName="short", DurationSeconds=900
    )
    kms = session_client(env, out["Credentials"])
    sts = session_client(env, out["Credentials"], "sts")
    key = env.key()
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    try:
        env.set_clock_offset(901)
        assert fails(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == (
            "ExpiredTokenException",
            "The security token included in the request is expired",
        )
        assert fails(sts.get_caller_identity)[0] == "ExpiredToken"
        # users' long-term keys do not expire
        env.admin.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    finally:
        env.set_clock_offset(0)


def test_tampered_or_missing_session_token(env: Env, roles: Roles) -> None:
    creds = sts_for(roles.assumer).assume_role(RoleArn=roles.role_arn, RoleSessionName="tamper")[
        "Credentials"
    ]
    other = sts_for(roles.assumer).assume_role(RoleArn=roles.role_arn, RoleSessionName="other")[
        "Credentials"
    ]
    key = env.key()
    token = creds["SessionToken"]
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    for bad in (flipped, token + "x", other["SessionToken"]):
        kms = session_client(env, {**creds, "SessionToken": bad})
        assert fails(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == (  # noqa: B023
            "UnrecognizedClientException",
            INVALID_TOKEN,
        )
        sts = session_client(env, {**creds, "SessionToken": bad}, "sts")
        assert fails(sts.get_caller_identity)[0] == "InvalidClientTokenId"
    no_token = env.server.client(akid=creds["AccessKeyId"], secret=creds["SecretAccessKey"])
    assert fails(lambda: no_token.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == (
        "UnrecognizedClientException",
        INVALID_TOKEN,
    )
    # a user's long-term key with a session token is refused too
    user = roles.assumer
    with_token = session_client(
        env, {"AccessKeyId": user.akid, "SecretAccessKey": user.secret, "SessionToken": token}
    )
    assert fails(with_token.list_keys)[0] == "UnrecognizedClientException"
    session_client(env, creds).encrypt(KeyId=key["KeyId"], Plaintext=b"x")  # the real one works


# --- NotPrincipal, NotAction, NotResource; principal condition keys; ABAC ------------------------


def test_not_principal_not_action_not_resource(env: Env) -> None:
    admin_arn = f"arn:aws:iam::{ACCOUNT}:user/admin"
    uma = env.user("uma", ALLOW_ALL)
    # Deny everyone but the admin: the account must be listed too (IAM User Guide)
    key = env.key(
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": [admin_arn, ROOT]},
            "Action": "kms:Encrypt",
            "Resource": "*",
        }
    )
    env.admin.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert denied(lambda: uma.client().encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == denial(
        uma.arn, "Encrypt", key["Arn"], EXPLICIT_RESOURCE
    )
    uma.client().describe_key(KeyId=key["KeyId"])

    vic = env.user("vic")  # no identity policy
    key2 = env.key(
        {
            "Effect": "Allow",
            "Principal": {"AWS": vic.arn},
            "NotAction": ["kms:Encrypt", "kms:*KeyPolicy"],
            "Resource": "*",
        }
    )
    kms = vic.client()
    kms.describe_key(KeyId=key2["KeyId"])
    kms.generate_data_key(KeyId=key2["KeyId"], KeySpec="AES_256")
    denied(lambda: kms.encrypt(KeyId=key2["KeyId"], Plaintext=b"x"))
    denied(lambda: kms.get_key_policy(KeyId=key2["KeyId"], PolicyName="default"))

    other = env.key()
    env.put_user_policy(
        "vic",
        "not-other",
        identity({"Effect": "Allow", "Action": "kms:Encrypt", "NotResource": other["Arn"]}),
    )
    kms.encrypt(KeyId=key2["KeyId"], Plaintext=b"x")
    kms.encrypt(KeyId=env.key()["KeyId"], Plaintext=b"x")
    assert denied(lambda: kms.encrypt(KeyId=other["KeyId"], Plaintext=b"x")) == denial(
        vic.arn, "Encrypt", other["Arn"], no_identity("Encrypt")
    )


def test_principal_condition_keys_for_sessions(env: Env, roles: Roles) -> None:
    key = env.key(
        allow(
            "*",
            "kms:Encrypt",
            ArnEquals={"aws:PrincipalArn": roles.role_arn},
            StringEquals={"aws:PrincipalType": "AssumedRole", "aws:PrincipalAccount": ACCOUNT},
        ),
    )
    creds = sts_for(roles.assumer).assume_role(RoleArn=roles.role_arn, RoleSessionName="pk")
    session_client(env, creds["Credentials"]).encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    denied(lambda: roles.stranger.client().encrypt(KeyId=key["KeyId"], Plaintext=b"x"))


def test_deleted_role_ends_its_sessions(env: Env, roles: Roles) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": roles.assumer.arn}, "Action": "sts:AssumeRole"}
        ],
    }
    role = env.roles.create_role(ACCOUNT, "short-lived", json.dumps(trust))
    arn = f"arn:aws:iam::{ACCOUNT}:role/{role.role_name}"
    creds = sts_for(roles.assumer).assume_role(RoleArn=arn, RoleSessionName="gone")["Credentials"]
    sts = session_client(env, creds, "sts")
    assert sts.get_caller_identity()["Arn"].endswith(":assumed-role/short-lived/gone")
    env.roles.delete_role(ACCOUNT, "short-lived")
    assert fails(sts.get_caller_identity)[0] == "InvalidClientTokenId"


def test_grant_operations_condition(env: Env) -> None:
    wes, xia = env.user("wes"), env.user("xia")
    key = env.key(
        allow(
            wes.arn,
            "kms:CreateGrant",
            **{
                "ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt"]},
                "Bool": {"kms:GrantIsForAWSResource": "false"},
            },
        )
    )
    kms = wes.client()
    kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=xia.arn, Operations=["Encrypt"])
    denied(
        lambda: kms.create_grant(
            KeyId=key["KeyId"], GranteePrincipal=xia.arn, Operations=["Encrypt", "GenerateDataKey"]
        )
    )
    xia.client().encrypt(KeyId=key["KeyId"], Plaintext=b"x")


def test_cross_account_principal_named_directly_still_needs_iam(env: Env) -> None:
    yan = env.user("b-yan", account=ACCOUNT_B)  # no identity policy
    key = env.key(allow(yan.arn, "kms:Encrypt"))
    assert denied(lambda: yan.client().encrypt(KeyId=key["Arn"], Plaintext=b"x")) == denial(
        yan.arn, "Encrypt", key["Arn"], no_identity("Encrypt")
    )
    env.put_user_policy("b-yan", "kms", ALLOW_ALL, account=ACCOUNT_B)
    yan.client().encrypt(KeyId=key["Arn"], Plaintext=b"x")


def test_abac_resource_tags_in_an_identity_policy(env: Env) -> None:
    """AWS's "ABAC for AWS KMS": an IAM policy allows keys by their tags; the keys keep AWS's
    default key policy (which never mentions a tag)."""
    zoe = env.user(
        "zoe",
        identity(
            {
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/Project": "Alpha"}},
            }
        ),
    )
    alpha = env.admin.create_key(Tags=[{"TagKey": "Project", "TagValue": "Alpha"}])["KeyMetadata"]
    beta = env.admin.create_key(Tags=[{"TagKey": "Project", "TagValue": "Beta"}])["KeyMetadata"]
    kms = zoe.client()
    denied(lambda: kms.encrypt(KeyId=beta["KeyId"], Plaintext=b"x"))
    kms.encrypt(KeyId=alpha["KeyId"], Plaintext=b"x")


def test_abac_resource_aliases_in_an_identity_policy(env: Env) -> None:
    """AWS's "Use aliases to control access to KMS keys": kms:ResourceAliases in IAM."""
    amy = env.user(
        "amy",
        identity(
            {
                "Effect": "Allow",
                "Action": "kms:Encrypt",
                "Resource": "*",
                "Condition": {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/team-a/*"}},
            }
        ),
    )
    key = env.key()
    env.admin.create_alias(AliasName="alias/team-a/db", TargetKeyId=key["KeyId"])
    other = env.key()
    kms = amy.client()
    denied(lambda: kms.encrypt(KeyId=other["KeyId"], Plaintext=b"x"))
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")


def test_abac_conditions_in_a_key_policy(env: Env) -> None:
    """The same tag and alias conditions work when the key policy holds them."""
    bea = env.user("bea")
    tag_cond = {"StringEquals": {"aws:ResourceTag/Project": "Alpha"}}
    alias_cond = {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/team-b/*"}}
    by_tag = env.key({**allow(bea.arn, "kms:Encrypt"), "Condition": tag_cond})
    by_alias = env.key({**allow(bea.arn, "kms:Encrypt"), "Condition": alias_cond})
    kms = bea.client()
    denied(lambda: kms.encrypt(KeyId=by_tag["KeyId"], Plaintext=b"x"))
    denied(lambda: kms.encrypt(KeyId=by_alias["KeyId"], Plaintext=b"x"))
    env.admin.tag_resource(KeyId=by_tag["KeyId"], Tags=[{"TagKey": "Project", "TagValue": "Alpha"}])
    env.admin.create_alias(AliasName="alias/team-b/app", TargetKeyId=by_alias["KeyId"])
    kms.encrypt(KeyId=by_tag["KeyId"], Plaintext=b"x")
    kms.encrypt(KeyId=by_alias["KeyId"], Plaintext=b"x")


def test_trust_policy_with_external_id(env: Env, roles: Roles) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": roles.assumer.arn},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "tenant-42"}},
            }
        ],
    }
    env.roles.create_role(ACCOUNT, "third-party", json.dumps(trust))
    arn = f"arn:aws:iam::{ACCOUNT}:role/third-party"
    sts = sts_for(roles.assumer)
    for extra in ({}, {"ExternalId": "tenant-43"}):
        code, _ = fails(lambda: sts.assume_role(RoleArn=arn, RoleSessionName="ext", **extra))  # noqa: B023
        assert code == "AccessDenied"
    out = sts.assume_role(RoleArn=arn, RoleSessionName="ext", ExternalId="tenant-42")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/third-party/ext"


def test_a_remembered_allow_ends_with_the_policy_that_gave_it(env: Env) -> None:
    """Allows are remembered between requests; a changed identity or key policy (written by
    another process, here the test's) must take effect on the very next request."""
    key = env.key()
    scoped = identity({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": key["Arn"]})
    erin = env.user("remembered", scoped)
    client = erin.client()
    for _ in range(3):  # the first decides, the next ones are remembered
        client.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    env.roles.delete_policy("user", ACCOUNT, "remembered", "p0")
    assert denied(lambda: client.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) == denial(
        erin.arn, "Encrypt", key["Arn"], no_identity("Encrypt")
    )
    # and back: an allow again, then a key policy that denies the user explicitly
    env.put_user_policy("remembered", "p1", ALLOW_ALL)
    for _ in range(3):
        client.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    policy = {"Version": "2012-10-17",
              "Statement": [ROOT_STATEMENT, deny(erin.arn, "kms:Encrypt")]}  # fmt: skip
    env.admin.put_key_policy(KeyId=key["KeyId"], Policy=json.dumps(policy))
    assert EXPLICIT_RESOURCE in denied(lambda: client.encrypt(KeyId=key["KeyId"], Plaintext=b"x"))
