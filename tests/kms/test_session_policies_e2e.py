"""AssumeRole's inline session policy (``Policy``), end to end through boto3: a session may do at
most what its session policy allows, on every service of the endpoint, and an explicit Deny in it
wins. AssumeRole members Strongroom does not implement are refused, not ignored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.kms.access_support import (
    Env,
    Roles,
    access_env,
    denied,
    identity,
    identity_statement,
    make_roles,
    session_client,
    sts_for,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with access_env(tmp_path_factory.mktemp("session-policies")) as environment:
        yield environment


@pytest.fixture(scope="module")
def roles(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Roles:
    return make_roles(env, tmp_path_factory.mktemp("trust"))


def _assume(roles: Roles, name: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = sts_for(roles.assumer).assume_role(
        RoleArn=roles.role_arn, RoleSessionName=name, **extra
    )
    return out


def _sts_error(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call()
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


def test_a_session_policy_narrows_the_role(env: Env, roles: Roles) -> None:
    key = env.key()["Arn"]
    blob = env.admin.encrypt(KeyId=key, Plaintext=b"narrow")["CiphertextBlob"]
    policy = json.dumps(identity(identity_statement("Allow", "kms:Encrypt", key)))
    out = _assume(roles, "narrow", Policy=policy)
    assert 0 < out["PackedPolicySize"] <= 100
    kms = session_client(env, out["Credentials"])
    kms.encrypt(KeyId=key, Plaintext=b"allowed by both")
    message = denied(lambda: kms.decrypt(CiphertextBlob=blob))
    assert message.endswith("because no session policy allows the kms:Decrypt action")
    assert "no session policy" in denied(lambda: kms.describe_key(KeyId=key))
    # another key: the role's policy allows it, the session policy does not
    other = env.key()["Arn"]
    assert "no session policy" in denied(lambda: kms.encrypt(KeyId=other, Plaintext=b"x"))
    # the same session name without a session policy has the role's full permissions
    full = session_client(env, _assume(roles, "narrow")["Credentials"])
    assert full.decrypt(CiphertextBlob=blob)["Plaintext"] == b"narrow"
    assert _assume(roles, "plain")["PackedPolicySize"] == 0


def test_an_explicit_deny_in_the_session_policy_wins(env: Env, roles: Roles) -> None:
    key = env.key()["Arn"]
    policy = identity(
        identity_statement("Allow", ["kms:Encrypt", "kms:Decrypt"]),
        identity_statement(
            "Deny", "kms:Encrypt", condition={"StringEquals": {"kms:EncryptionContext:tier": "x"}}
        ),
    )
    kms = session_client(env, _assume(roles, "denier", Policy=json.dumps(policy))["Credentials"])
    blob = kms.encrypt(KeyId=key, Plaintext=b"ok", EncryptionContext={"tier": "y"})
    assert kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext={"tier": "y"})
    message = denied(
        lambda: kms.encrypt(KeyId=key, Plaintext=b"no", EncryptionContext={"tier": "x"})
    )
    assert message.endswith("with an explicit deny in a session policy")


def test_the_session_policy_limits_the_other_services_too(env: Env, roles: Roles) -> None:
    env.cli(
        "put-role-policy", "encryptor", "hsm-and-trail",
        "--policy-document",
        json.dumps(identity(identity_statement("Allow", ["cloudhsm:*", "cloudtrail:*"]))),
    )  # fmt: skip
    policy = json.dumps(identity(identity_statement("Allow", "cloudhsm:DescribeClusters")))
    creds = _assume(roles, "hsm-only", Policy=policy)["Credentials"]
    hsm = session_client(env, creds, "cloudhsmv2")
    assert hsm.describe_clusters()["Clusters"] == []
    with pytest.raises(ClientError) as exc:
        hsm.describe_backups()
    assert exc.value.response["Error"]["Code"] == "CloudHsmAccessDeniedException"
    assert "no session policy" in exc.value.response["Error"]["Message"]
    trail = session_client(env, creds, "cloudtrail")
    with pytest.raises(ClientError) as exc:
        trail.lookup_events(MaxResults=1)
    assert "no session policy" in exc.value.response["Error"]["Message"]
    # and the trail keeps the policy the session was given
    events = env.server.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AssumeRole"}]
    )["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    assert any((r["requestParameters"] or {}).get("policy") == policy for r in records)


def test_bad_session_policies_and_unsupported_members_are_refused(roles: Roles) -> None:
    code, _ = _sts_error(lambda: _assume(roles, "bad", Policy="{not json"))
    assert code == "MalformedPolicyDocument"
    with_principal = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}],
    }
    code, _ = _sts_error(lambda: _assume(roles, "bad", Policy=json.dumps(with_principal)))
    assert code == "MalformedPolicyDocument"
    huge = identity(identity_statement("Allow", "kms:Encrypt", "arn:aws:kms:*:*:key/" + "a" * 2100))
    code, message = _sts_error(lambda: _assume(roles, "bad", Policy=json.dumps(huge)))
    assert code == "ValidationError" and "2048" in message
    for extra in (
        {"Tags": [{"Key": "team", "Value": "red"}]},
        {"PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]},
        {"SourceIdentity": "alice"},
        {"SerialNumber": "arn:aws:iam::111122223333:mfa/alice", "TokenCode": "123456"},
    ):
        code, message = _sts_error(lambda extra=extra: _assume(roles, "bad", **extra))
        assert code == "ValidationError" and "not supported" in message, extra
