"""End to end: key policies are validated when stored, on CreateKey(Policy=...) and PutKeyPolicy.

Malformed documents -> MalformedPolicyDocumentException with a message saying what is wrong; more
than 32 KB -> LimitExceededException; a policy that would stop the caller from calling
PutKeyPolicy again -> MalformedPolicyDocumentException unless BypassPolicyLockoutSafetyCheck;
principals that do not exist -> MalformedPolicyDocumentException. Stored policies come back
byte for byte (reference/kms-api.md §1.5, §3.13).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from strongroom.clock import SystemClock
from strongroom.iam.identities import IdentityStore
from strongroom.rootkey import load_or_create_root_key
from strongroom.storage.engine import open_engine, sqlite_url
from tests.conftest import ACCOUNT, Server, running_server

ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ADMIN = f"arn:aws:iam::{ACCOUNT}:user/admin"
OTHER = f"arn:aws:iam::{ACCOUNT}:user/other"
ROOT_STATEMENT = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": ROOT},
    "Action": "kms:*",
    "Resource": "*",
}
LOCKOUT = "The new key policy will not allow you to update the key policy in the future."
BAD_PRINCIPALS = "Policy contains a statement with one or more invalid principals."

# The default key policy, exactly as reference/kms-api.md §3.13 shows GetKeyPolicy returning it.
DEFAULT_POLICY = """{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::111122223333:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("policies") / "data") as srv:
        engine = open_engine(sqlite_url(str(srv.data_dir / "strongroom.db")))
        ids = IdentityStore(engine, load_or_create_root_key(srv.data_dir), SystemClock())
        ids.create_user(ACCOUNT, "other")  # a principal that exists, with no identity policy
        pair = ids.create_access_key(ACCOUNT, "other")
        srv.env["OTHER_AKID"], srv.env["OTHER_SECRET"] = pair.access_key_id, pair.secret_access_key
        engine.dispose()
        yield srv


@pytest.fixture(scope="module")
def kms(server: Server) -> Any:
    return server.client()


def doc(*statements: dict[str, Any], **top: Any) -> str:
    return json.dumps({"Version": "2012-10-17", **top, "Statement": list(statements)})


def stmt(**fields: Any) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"AWS": ROOT},
        "Action": "kms:*",
        "Resource": "*",
        **fields,
    }


def without(field: str) -> dict[str, Any]:
    statement = stmt()
    del statement[field]
    return statement


def fails(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as excinfo:
        call()
    error = excinfo.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def store(kms: Any, where: str, policy: str, **extra: Any) -> str:
    """Store ``policy`` on a new key (``create``) or on an existing key (``put``); the key id."""
    if where == "create":
        return str(kms.create_key(Policy=policy, **extra)["KeyMetadata"]["KeyId"])
    key_id = str(kms.create_key()["KeyMetadata"]["KeyId"])
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy, **extra)
    return key_id


def refused(kms: Any, where: str, policy: str, **extra: Any) -> tuple[str, str]:
    """Store ``policy``, which must be refused; (code, message). A refused PutKeyPolicy leaves
    the key's policy as it was; a refused CreateKey makes no key."""
    before = {k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]}
    if where == "create":
        result = fails(lambda: kms.create_key(Policy=policy, **extra))
        after = {k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]}
        assert after == before
        return result
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    result = fails(
        lambda: kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy, **extra)
    )
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == DEFAULT_POLICY
    return result


WHERE = pytest.mark.parametrize("where", ["create", "put"])

MALFORMED: list[tuple[str, str, str]] = [
    ("bad JSON", '{"Version": "2012-10-17", "Statement": [', "not valid JSON"),
    ("trailing garbage", doc(stmt()) + " x", "not valid JSON"),
    ("not an object", json.dumps([stmt()]), "must be a JSON object"),
    (
        "duplicate element",
        '{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": []}',
        '"Version" more than once',
    ),
    ("unknown top-level element", doc(stmt(), Policy="x"), '"Policy" is not supported'),
    ("unknown statement element", doc(stmt(Actions="kms:*")), '"Actions" is not supported'),
    ("bad Effect", doc(stmt(Effect="Permit")), '"Permit"'),
    ("missing Effect", doc(without("Effect")), "Effect"),
    ("Principal missing", doc(without("Principal")), "Principal"),
    ("Principal and NotPrincipal", doc(stmt(NotPrincipal={"AWS": ROOT})), "NotPrincipal"),
    ("unknown principal type", doc(stmt(Principal={"Federated": "x"})), '"Federated"'),
    ("malformed principal", doc(stmt(Principal={"AWS": "bob"})), '"bob"'),
    (
        "unknown condition operator",
        doc(stmt(Condition={"StringEqualz": {"kms:CallerAccount": ACCOUNT}})),
        '"StringEqualz"',
    ),
    (
        "bad condition key",
        doc(stmt(Condition={"StringEquals": {"CallerAccount": ACCOUNT}})),
        '"CallerAccount"',
    ),
    (
        "bad CIDR",
        doc(stmt(Condition={"IpAddress": {"aws:SourceIp": "300.1.2.3/8"}})),
        "300.1.2.3/8",
    ),
    (
        "Null not Boolean",
        doc(stmt(Condition={"Null": {"kms:EncryptionContextKeys": "maybe"}})),
        "maybe",
    ),
    ("bad Version", doc(stmt()).replace("2012-10-17", "2020-01-01"), "Version"),
    ("no Statement", json.dumps({"Version": "2012-10-17"}), "Statement"),
    ("empty Statement", doc(), "statement"),
    ("Action and NotAction", doc(stmt(NotAction="kms:Encrypt")), "NotAction"),
    ("action without a service", doc(stmt(Action="Encrypt")), '"Encrypt"'),
    ("Resource not an ARN", doc(stmt(Resource="my-key")), '"my-key"'),
]


@WHERE
@pytest.mark.parametrize(
    ("policy", "fragment"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_policies(kms: Any, where: str, policy: str, fragment: str) -> None:
    code, message = refused(kms, where, policy)
    assert code == "MalformedPolicyDocumentException"
    assert fragment in message, message
    # the lockout check cannot be bypassed into accepting a malformed document
    code, _ = refused(kms, where, policy, BypassPolicyLockoutSafetyCheck=True)
    assert code == "MalformedPolicyDocumentException"


def sized(size: int) -> str:
    """A valid policy of exactly ``size`` bytes (padded through its Id)."""
    base = doc(ROOT_STATEMENT, Id="")
    policy = doc(ROOT_STATEMENT, Id="x" * (size - len(base)))
    assert len(policy.encode()) == size
    return policy


@WHERE
def test_policy_size_limit(kms: Any, where: str) -> None:
    key_id = store(kms, where, sized(32_768))
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == sized(32_768)
    code, message = refused(kms, where, sized(32_769))
    assert code == "LimitExceededException"
    assert "32768" in message

    # bytes, not characters: 32,700 characters of which 400 take two bytes in UTF-8 (the model's
    # pattern allows only U+0009-U+00FF)
    def wide(pad: int) -> str:
        statement = {**ROOT_STATEMENT, "Sid": "\u00e9" * 400}
        return json.dumps(
            {"Version": "2012-10-17", "Id": "x" * pad, "Statement": [statement]}, ensure_ascii=False
        )

    policy = wide(32_700 - len(wide(0)))
    assert len(policy) == 32_700
    assert len(policy.encode()) == 33_100
    assert refused(kms, where, policy)[0] == "LimitExceededException"


@WHERE
def test_lockout_safety_check(server: Server, kms: Any, where: str) -> None:
    only_other = doc(stmt(Principal={"AWS": OTHER}))
    assert refused(kms, where, only_other) == ("MalformedPolicyDocumentException", LOCKOUT)
    # an explicit Deny of PutKeyPolicy for the caller is unsafe too
    deny_me = doc(
        ROOT_STATEMENT, stmt(Effect="Deny", Principal={"AWS": ADMIN}, Action="kms:PutKeyPolicy")
    )
    assert refused(kms, where, deny_me) == ("MalformedPolicyDocumentException", LOCKOUT)
    # a policy that lets the caller manage only through kms:PutKeyPolicy is safe
    narrow = doc(stmt(Principal={"AWS": ADMIN}, Action="kms:PutKeyPolicy"))
    store(kms, where, narrow)

    key_id = store(kms, where, only_other, BypassPolicyLockoutSafetyCheck=True)
    code, _ = fails(lambda: kms.describe_key(KeyId=key_id))
    assert code == "AccessDeniedException"
    code, _ = fails(
        lambda: kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=DEFAULT_POLICY)
    )
    assert code == "AccessDeniedException"
    other = server.client(akid=server.env["OTHER_AKID"], secret=server.env["OTHER_SECRET"])
    assert other.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == only_other
    # the check is about the caller: "other" has no identity policy, so the default policy
    # (which delegates to IAM) would lock it out
    code, message = fails(
        lambda: other.put_key_policy(KeyId=key_id, PolicyName="default", Policy=DEFAULT_POLICY)
    )
    assert (code, message) == ("MalformedPolicyDocumentException", LOCKOUT)
    both = doc(ROOT_STATEMENT, stmt(Principal={"AWS": OTHER}))
    other.put_key_policy(KeyId=key_id, PolicyName="default", Policy=both)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id


UNKNOWN = [
    f"arn:aws:iam::{ACCOUNT}:user/nobody",
    f"arn:aws:iam::{ACCOUNT}:user/some/path/nobody",
    f"arn:aws:iam::{ACCOUNT}:role/no-such-role",
    "arn:aws:iam::444455556666:user/other",  # "other" exists, but in another account
]


@WHERE
@pytest.mark.parametrize("principal", UNKNOWN)
def test_unknown_principals(kms: Any, where: str, principal: str) -> None:
    for policy in (
        doc(ROOT_STATEMENT, stmt(Principal={"AWS": principal}, Action="kms:Encrypt")),
        doc(ROOT_STATEMENT, stmt(Principal={"AWS": [OTHER, principal]}, Action="kms:Encrypt")),
        doc(
            ROOT_STATEMENT,
            {**without("Principal"), "Effect": "Deny", "NotPrincipal": {"AWS": [ROOT, principal]}},
        ),
    ):
        assert refused(kms, where, policy) == ("MalformedPolicyDocumentException", BAD_PRINCIPALS)
        assert refused(kms, where, policy, BypassPolicyLockoutSafetyCheck=True) == (
            "MalformedPolicyDocumentException",
            BAD_PRINCIPALS,
        )


@WHERE
def test_principals_that_exist_are_accepted(kms: Any, where: str) -> None:
    policy = doc(
        ROOT_STATEMENT,
        stmt(
            Principal={
                "AWS": [
                    OTHER,
                    "444455556666",
                    "arn:aws:iam::555566667777:root",
                    f"arn:aws:sts::{ACCOUNT}:assumed-role/any-role/any-session",
                ]
            },
            Action=["kms:Encrypt", "kms:Decrypt"],
        ),
        stmt(
            Principal="*",
            Action="kms:DescribeKey",
            Condition={"StringEquals": {"kms:CallerAccount": ACCOUNT}},
        ),
        stmt(Principal={"Service": "logs.us-east-1.amazonaws.com"}, Action="kms:Encrypt*"),
    )
    key_id = store(kms, where, policy)
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == policy


def test_get_key_policy_returns_exactly_what_was_stored(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    got = kms.get_key_policy(KeyId=key_id, PolicyName="default")
    assert got["Policy"] == DEFAULT_POLICY
    assert got["PolicyName"] == "default"
    assert kms.get_key_policy(KeyId=key_id)["Policy"] == DEFAULT_POLICY  # PolicyName defaults
    # odd spacing, key order, escapes and non-ASCII text survive byte for byte
    odd = (
        '{ "Statement" :[{"Resource":"*","Action" : ["kms:*"],\n\t"Sid":"Ünïcödé \\u00e9 \\"q\\"",'
        f'"Principal":{{"AWS":"{ROOT}"}},"Effect":"Allow"}}],"Version":"2012-10-17","Id":"k-1"}}'
    )
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=odd)
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == odd
    key2 = kms.create_key(Policy=odd)["KeyMetadata"]["KeyId"]
    assert kms.get_key_policy(KeyId=key2, PolicyName="default")["Policy"] == odd
    code, _ = fails(lambda: kms.get_key_policy(KeyId=key_id, PolicyName="other"))
    assert code == "NotFoundException"


def test_list_key_policies(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    out = kms.list_key_policies(KeyId=key_id)
    assert out["PolicyNames"] == ["default"]
    assert out["Truncated"] is False
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=doc(ROOT_STATEMENT))
    assert kms.list_key_policies(KeyId=key_id)["PolicyNames"] == ["default"]


def test_statements_without_resource_or_action_are_accepted_but_never_apply(
    server: Server, kms: Any
) -> None:
    other = server.client(akid=server.env["OTHER_AKID"], secret=server.env["OTHER_SECRET"])
    policy = doc(
        ROOT_STATEMENT,
        {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "kms:Encrypt"},
        {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Resource": "*"},
    )
    key_id = kms.create_key(Policy=policy)["KeyMetadata"]["KeyId"]
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == policy
    for call in (
        lambda: other.encrypt(KeyId=key_id, Plaintext=b"x"),
        lambda: other.describe_key(KeyId=key_id),
    ):
        code, _ = fails(call)
        assert code == "AccessDeniedException"
