"""Decisions: default deny, explicit deny wins, delegation, and the KMS Developer Guide examples."""

from __future__ import annotations

import json

import pytest

from strongroom.iam.policy import Effect, RequestFacts, evaluate, parse_policy
from tests.iam._support import (
    ACCOUNT,
    ALICE,
    BOB,
    EVE,
    KEY_ARN,
    OTHER,
    ROLE_ARN,
    ROOT,
    SESSION,
    decide,
    facts,
    policy,
    stmt,
)
from tests.iam.test_document import DEFAULT_KEY_POLICY


def test_default_key_policy_delegates_to_iam_for_account_principals() -> None:
    p = parse_policy(DEFAULT_KEY_POLICY, kind="resource")
    for caller in (BOB, SESSION):
        d = decide(p, facts(caller, action="kms:ScheduleKeyDeletion"))
        assert d.effect is Effect.ALLOW and d.delegated
    assert decide(p, facts(ROOT)).effect is Effect.ALLOW
    assert not decide(p, facts(ROOT)).delegated
    assert decide(p, facts(EVE)).effect is Effect.NONE
    assert decide(p, facts(BOB, action="sts:AssumeRole")).effect is Effect.NONE


# The console's default key policy: key administrators and key users (KMS DG, "Default key policy").
CONSOLE_POLICY = {
    "Version": "2012-10-17",
    "Id": "key-consolepolicy-3",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "Allow access for Key Administrators",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"},
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
            "Principal": {"AWS": ROLE_ARN},
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
            "Principal": {"AWS": ROLE_ARN},
            "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
            "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
    ],
}


@pytest.mark.parametrize(
    ("caller", "action", "context", "effect", "delegated", "sid"),
    [
        (
            ALICE,
            "kms:ScheduleKeyDeletion",
            {},
            Effect.ALLOW,
            False,
            "Allow access for Key Administrators",
        ),
        (ALICE, "kms:Encrypt", {}, Effect.ALLOW, True, "Enable IAM User Permissions"),
        (SESSION, "kms:Decrypt", {}, Effect.ALLOW, False, "Allow use of the key"),
        (SESSION, "kms:ScheduleKeyDeletion", {}, Effect.ALLOW, True, "Enable IAM User Permissions"),
        (
            SESSION,
            "kms:CreateGrant",
            {"kms:GrantIsForAWSResource": "true"},
            Effect.ALLOW,
            False,
            "Allow attachment of persistent resources",
        ),
        (SESSION, "kms:CreateGrant", {}, Effect.ALLOW, True, "Enable IAM User Permissions"),
        (EVE, "kms:Decrypt", {}, Effect.NONE, False, None),
    ],
)
def test_console_default_policy(caller, action, context, effect, delegated, sid) -> None:  # type: ignore[no-untyped-def]
    p = parse_policy(json.dumps(CONSOLE_POLICY), kind="resource")
    d = decide(p, facts(caller, action=action, ctx=context))
    assert (d.effect, d.delegated, d.sid) == (effect, delegated, sid)


def test_via_service_and_caller_account_example() -> None:
    # KMS DG, kms:CallerAccount: the AWS managed key for EBS.
    p = policy(
        {
            "Sid": "Allow access through EBS for all principals in the account that are "
            "authorized to use EBS",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Condition": {
                "StringEquals": {
                    "kms:CallerAccount": ACCOUNT,
                    "kms:ViaService": "ec2.us-west-2.amazonaws.com",
                }
            },
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:CreateGrant",
                "kms:DescribeKey",
            ],
            "Resource": "*",
        }
    )
    via = {"kms:ViaService": "ec2.us-west-2.amazonaws.com"}
    d = decide(p, facts(BOB, ctx=via))
    assert d.allowed and not d.delegated  # principal "*" allows directly
    assert not decide(p, facts(BOB)).allowed
    assert not decide(p, facts(EVE, ctx=via)).allowed  # kms:CallerAccount derives from the caller
    assert not decide(p, facts(BOB, action="kms:ScheduleKeyDeletion", ctx=via)).allowed


def test_explicit_deny_overrides_allow_encryption_algorithm_example() -> None:
    # KMS DG, kms:EncryptionAlgorithm: only RSAES_OAEP_SHA_256 for ExampleRole.
    p = policy(
        stmt(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
        stmt(
            "Deny",
            Sid="Allow only one encryption algorithm with this asymmetric KMS key",
            Principal={"AWS": ROLE_ARN},
            Action=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*"],
            Condition={"StringNotEquals": {"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}},
        ),
    )
    d = decide(p, facts(SESSION, ctx={"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_1"}))
    assert d.effect is Effect.DENY and d.sid.startswith("Allow only one") and d.statement == 1  # type: ignore[union-attr]
    assert decide(p, facts(SESSION)).denied  # the algorithm key is absent: StringNotEquals is true
    assert decide(p, facts(SESSION, ctx={"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256"})).allowed
    assert decide(p, facts(BOB, ctx={"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_1"})).allowed


def test_encryption_context_deny_example() -> None:
    # KMS DG: forbid Stage=Restricted or Stage=Production.
    p = policy(
        stmt(Principal={"AWS": ROLE_ARN}),
        stmt(
            "Deny",
            Principal={"AWS": ROLE_ARN},
            Action="kms:GenerateDataKey",
            Condition={
                "StringEquals": {"kms:EncryptionContext:Stage": ["Restricted", "Production"]}
            },
        ),
    )
    for stage, denied in [("Restricted", True), ("Production", True), ("Test", False)]:
        d = decide(
            p,
            facts(
                SESSION, action="kms:GenerateDataKey", ctx={"kms:EncryptionContext:Stage": stage}
            ),
        )
        assert d.denied is denied and d.allowed is not denied


def test_require_pair_and_forbid_others_example() -> None:
    # KMS DG: kms:EncryptionContext:AppName with ForAllValues on kms:EncryptionContextKeys.
    p = policy(
        stmt(
            Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"},
            Action="kms:GenerateDataKey",
            Condition={
                "StringEquals": {"kms:EncryptionContext:AppName": "ExampleApp"},
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["AppName"]},
            },
        )
    )

    def ok(pairs: dict[str, str]) -> bool:
        context: dict[str, list[str] | str] = {
            f"kms:EncryptionContext:{k}": v for k, v in pairs.items()
        }
        context["kms:EncryptionContextKeys"] = list(pairs)
        return decide(p, facts(ALICE, action="kms:GenerateDataKey", ctx=context)).allowed

    assert ok({"AppName": "ExampleApp"})
    assert not ok({"AppName": "ExampleApp", "Project": "Alpha"})
    assert not ok({})
    assert not ok({"AppName": "Other"})


def test_no_applicable_statement_is_none_not_deny() -> None:
    p = policy(stmt(Action="kms:Decrypt"))
    d = decide(p, facts())
    assert d.effect is Effect.NONE and not d.allowed and not d.denied and d.sid is None


def test_deny_wins_regardless_of_statement_order() -> None:
    allow, deny = stmt(Sid="a"), stmt("Deny", Sid="d", Action="kms:Encrypt")
    for order in ((allow, deny), (deny, allow)):
        assert decide(policy(*order), facts()).effect is Effect.DENY


def test_identity_policy_evaluation() -> None:
    p = policy(
        {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": f"arn:aws:kms:*:{ACCOUNT}:key/*"},
        kind="identity",
    )
    assert evaluate(p, facts(), match_principal=False).allowed
    assert not evaluate(
        p, facts(resource=KEY_ARN.replace(ACCOUNT, OTHER)), match_principal=False
    ).allowed
    with pytest.raises(ValueError, match="identity"):
        evaluate(p, facts(), match_principal=True)


def test_resource_policies_refuse_to_be_evaluated_without_principals() -> None:
    with pytest.raises(ValueError, match="match_principal=True"):
        evaluate(policy(stmt()), facts(), match_principal=False)


def test_trust_policy_evaluation() -> None:
    p = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        },
        kind="trust",
    )
    assume = RequestFacts(
        "sts:AssumeRole", ROLE_ARN, EVE, {"aws:MultiFactorAuthPresent": ("true",)}
    )
    d = evaluate(p, assume, match_principal=True)
    assert d.allowed and d.delegated
    assert not evaluate(
        p, RequestFacts("sts:AssumeRole", ROLE_ARN, EVE, {}), match_principal=True
    ).allowed
    assert not evaluate(
        p,
        RequestFacts("sts:AssumeRole", ROLE_ARN, BOB, {"aws:MultiFactorAuthPresent": ("true",)}),
        match_principal=True,
    ).allowed


def test_context_given_by_the_caller_overrides_derived_keys() -> None:
    p = policy(stmt(Condition={"StringEquals": {"aws:PrincipalType": "AssumedRole"}}))
    assert decide(p, facts(SESSION)).allowed
    assert not decide(p, facts(BOB)).allowed
    assert decide(p, facts(BOB, ctx={"aws:principaltype": "AssumedRole"})).allowed
    assert "aws:username" not in facts(BOB, ctx={"aws:username": []}).condition_context


def test_decisions_stay_right_beyond_the_prefilter_memory() -> None:
    p = policy(
        stmt(Resource=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/a*"),
        stmt("Deny", Resource="*", Action="kms:Decrypt"),
    )
    for i in range(1500):
        for action in ("kms:Encrypt", "kms:Decrypt"):
            resource = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{'a' if i % 2 else 'b'}{i}"
            expected = (
                Effect.DENY if action == "kms:Decrypt" else (Effect.ALLOW if i % 2 else Effect.NONE)
            )
            assert decide(p, facts(action=action, resource=resource)).effect is expected
    assert len(p.index) == 1024
