"""AssumeRole's inline session policy (``Policy``) and source identity (``SourceIdentity``), end to
end through boto3: a session may do at most what its session policy allows, on every service of
the endpoint, and an explicit Deny in it wins; a source identity needs sts:SetSourceIdentity in
the trust policy, is ``aws:SourceIdentity`` in every policy, goes into every record of the
session's calls and is kept through role chaining; session tags need sts:TagSession and are
``aws:PrincipalTag/<key>``, the transitive ones kept through chaining. AssumeRole members
Strongroom does not implement are refused, not ignored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT
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
        {"PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]},
        {"SerialNumber": "arn:aws:iam::111122223333:mfa/alice", "TokenCode": "123456"},
    ):
        code, message = _sts_error(lambda extra=extra: _assume(roles, "bad", **extra))
        assert code == "ValidationError" and "not supported" in message, extra


def _role_trusting(env: Env, roles: Roles, name: str, actions: list[str], tmp: Path) -> str:
    trust = tmp / f"{name}-trust.json"
    trust.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": [roles.assumer.arn, f"arn:aws:iam::{ACCOUNT}:root"]},
                        "Action": actions,
                    }
                ],
            }
        )
    )
    arn = str(env.cli("create-role", name, "--trust-policy", f"file://{trust}")["Role"]["Arn"])
    policy = identity(
        identity_statement("Allow", ["kms:*", "sts:AssumeRole", "sts:SetSourceIdentity"])
    )
    env.cli("put-role-policy", name, "all", "--policy-document", json.dumps(policy))
    return arn


def _encrypt_only_if(condition_key: str, value: str) -> dict[str, Any]:
    """A key policy statement denying Encrypt to everyone whose ``condition_key`` is not
    ``value``."""
    return {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": {"StringNotEquals": {condition_key: value}},
    }


def test_source_identity(env: Env, roles: Roles, tmp_path: Path) -> None:
    sts = sts_for(roles.assumer)
    plain = _role_trusting(env, roles, "no-source", ["sts:AssumeRole"], tmp_path)
    sourced = _role_trusting(
        env, roles, "with-source", ["sts:AssumeRole", "sts:SetSourceIdentity"], tmp_path
    )
    code, message = _sts_error(
        lambda: sts.assume_role(RoleArn=plain, RoleSessionName="s1", SourceIdentity="alice")
    )
    assert code == "AccessDenied" and "sts:SetSourceIdentity" in message
    for bad in ("a", "aws:alice", "al ice"):
        code, _ = _sts_error(
            lambda bad=bad: sts.assume_role(
                RoleArn=sourced, RoleSessionName="s1", SourceIdentity=bad
            )
        )
        assert code == "ValidationError", bad
    out = sts.assume_role(RoleArn=sourced, RoleSessionName="alice-work", SourceIdentity="alice")
    assert out["SourceIdentity"] == "alice"
    kms = session_client(env, out["Credentials"])
    # aws:SourceIdentity in a key policy
    key = env.key(_encrypt_only_if("aws:SourceIdentity", "alice"))["Arn"]
    kms.encrypt(KeyId=key, Plaintext=b"by alice")
    other = sts.assume_role(RoleArn=sourced, RoleSessionName="nobody")["Credentials"]
    assert "explicit deny" in denied(
        lambda: session_client(env, other).encrypt(KeyId=key, Plaintext=b"x")
    )
    # every record of the session's calls names it
    events = env.server.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key}]
    )["Events"]
    mine = [json.loads(e["CloudTrailEvent"]) for e in events if e.get("Username") == "alice-work"]
    assert mine and all(
        r["userIdentity"]["sessionContext"]["sourceIdentity"] == "alice" for r in mine
    )
    # chaining keeps it and may not change it
    chained_sts = session_client(env, out["Credentials"], "sts")
    again = chained_sts.assume_role(RoleArn=sourced, RoleSessionName="chained")
    assert again["SourceIdentity"] == "alice"
    session_client(env, again["Credentials"]).encrypt(KeyId=key, Plaintext=b"still alice")
    code, _ = _sts_error(
        lambda: chained_sts.assume_role(RoleArn=sourced, RoleSessionName="c2", SourceIdentity="bob")
    )
    assert code == "AccessDenied"
    # a role whose trust policy does not allow setting it cannot be chained into
    code, _ = _sts_error(lambda: chained_sts.assume_role(RoleArn=plain, RoleSessionName="c3"))
    assert code == "AccessDenied"


def test_session_tags(env: Env, roles: Roles, tmp_path: Path) -> None:
    sts = sts_for(roles.assumer)
    plain = _role_trusting(env, roles, "no-tags", ["sts:AssumeRole"], tmp_path)
    tagging = _role_trusting(env, roles, "tags", ["sts:AssumeRole", "sts:TagSession"], tmp_path)
    env.cli(
        "put-role-policy", "tags", "tag-chain",
        "--policy-document", json.dumps(identity(identity_statement("Allow", "sts:TagSession"))),
    )  # fmt: skip
    blue = [{"Key": "project", "Value": "blue"}]
    code, message = _sts_error(
        lambda: sts.assume_role(RoleArn=plain, RoleSessionName="t1", Tags=blue)
    )
    assert code == "AccessDenied" and "sts:TagSession" in message
    for bad in (
        [{"Key": "aws:project", "Value": "x"}],
        [{"Key": "a", "Value": "1"}, {"Key": "A", "Value": "2"}],
        [{"Key": f"k{i}", "Value": "v"} for i in range(51)],
        [{"Key": "bad!key", "Value": "v"}],
        [{"Key": "line\nbreak", "Value": "v"}],
    ):
        code, _ = _sts_error(
            lambda bad=bad: sts.assume_role(RoleArn=tagging, RoleSessionName="t1", Tags=bad)
        )
        assert code == "ValidationError", bad
    code, _ = _sts_error(
        lambda: sts.assume_role(
            RoleArn=tagging, RoleSessionName="t1", Tags=blue, TransitiveTagKeys=["other"]
        )
    )
    assert code == "ValidationError"
    # aws:PrincipalTag in a key policy
    key = env.key(_encrypt_only_if("aws:PrincipalTag/project", "blue"))["Arn"]
    out = sts.assume_role(
        RoleArn=tagging, RoleSessionName="tagged", Tags=[*blue, {"Key": "tier", "Value": "2"}],
        TransitiveTagKeys=["project"],
    )  # fmt: skip
    session_client(env, out["Credentials"]).encrypt(KeyId=key, Plaintext=b"blue")
    untagged = sts.assume_role(RoleArn=tagging, RoleSessionName="untagged")["Credentials"]
    assert "explicit deny" in denied(
        lambda: session_client(env, untagged).encrypt(KeyId=key, Plaintext=b"x")
    )
    red = sts.assume_role(
        RoleArn=tagging, RoleSessionName="red", Tags=[{"Key": "project", "Value": "red"}]
    )["Credentials"]
    assert "explicit deny" in denied(
        lambda: session_client(env, red).encrypt(KeyId=key, Plaintext=b"x")
    )
    # chaining: the transitive tag is kept (and cannot be given again), the other one is not
    chained_sts = session_client(env, out["Credentials"], "sts")
    chained = chained_sts.assume_role(RoleArn=tagging, RoleSessionName="chained")["Credentials"]
    session_client(env, chained).encrypt(KeyId=key, Plaintext=b"still blue")
    code, _ = _sts_error(
        lambda: chained_sts.assume_role(
            RoleArn=tagging, RoleSessionName="c2", Tags=[{"Key": "project", "Value": "red"}]
        )
    )
    assert code == "ValidationError"
    tier_key = env.key(_encrypt_only_if("aws:PrincipalTag/tier", "2"))["Arn"]
    session_client(env, out["Credentials"]).encrypt(KeyId=tier_key, Plaintext=b"tier 2")
    assert "explicit deny" in denied(
        lambda: session_client(env, chained).encrypt(KeyId=tier_key, Plaintext=b"x")
    )
