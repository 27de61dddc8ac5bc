"""Action, NotAction, Resource and NotResource matching."""

from __future__ import annotations

import pytest

from strongroom.iam.policy.matching import ArnPattern, Glob
from strongroom.iam.policy.variables import parse_template
from tests.iam._support import ACCOUNT, KEY_ARN, decide, facts, policy, stmt


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "", True),
        ("*", "anything", True),
        ("kms:encrypt", "kms:encrypt", True),
        ("kms:encrypt", "kms:encrypt2", False),
        ("kms:*", "kms:decrypt", True),
        ("kms:*", "kms", False),
        ("kms:re*", "kms:reencryptfrom", True),
        ("kms:generatedatakey*", "kms:generatedatakey", True),
        ("kms:?ncrypt", "kms:encrypt", True),
        ("kms:?ncrypt", "kms:ncrypt", False),
        ("kms:*crypt", "kms:decrypt", True),
        ("kms:*crypt", "kms:decrypts", False),
        ("a*b*c", "abc", True),
        ("a*b*c", "axxbyyc", True),
        ("a*b*c", "axxbyy", False),
        ("a.b", "axb", False),
        ("a[b]", "a[b]", True),
        ("a[b]", "ab", False),
        ("x", "x\n", False),
        ("*", "x\ny", True),
    ],
)
def test_glob(pattern: str, value: str, expected: bool) -> None:
    assert Glob(pattern).match(value) is expected


@pytest.mark.parametrize("action", ["kms:Encrypt", "KMS:ENCRYPT", "kms:encrypt"])
def test_action_names_ignore_case(action: str) -> None:
    p = policy(stmt(Action="Kms:EnCrypt"))
    assert decide(p, facts(action=action)).allowed


def test_kms_documentation_action_lists() -> None:
    # KMS DG, default key policy "Allows key users to use the KMS key".
    p = policy(
        stmt(
            Action=[
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:DescribeKey",
            ]
        )
    )
    for allowed in [
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:GenerateDataKeyPairWithoutPlaintext",
    ]:
        assert decide(p, facts(action=allowed)).allowed
    for refused in ["kms:ScheduleKeyDeletion", "kms:CreateGrant", "kms:Sign"]:
        assert not decide(p, facts(action=refused)).allowed


def test_not_action_applies_to_every_other_action() -> None:
    p = policy(stmt(Action=None, NotAction=["kms:ScheduleKeyDeletion", "kms:Disable*"]))
    assert decide(p, facts(action="kms:Encrypt")).allowed
    assert decide(p, facts(action="kms:PutKeyPolicy")).allowed
    assert not decide(p, facts(action="kms:ScheduleKeyDeletion")).allowed
    assert not decide(p, facts(action="kms:disablekeyrotation")).allowed


def test_star_action_covers_other_services_too() -> None:
    assert decide(policy(stmt(Action="*")), facts(action="sts:AssumeRole")).allowed
    assert not decide(policy(stmt(Action="kms:*")), facts(action="sts:AssumeRole")).allowed


KEY_PREFIX = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*", True),
        (KEY_ARN, True),
        (KEY_ARN.upper(), False),  # resources are case-sensitive
        (KEY_PREFIX + "*", True),
        (f"arn:aws:kms:*:{ACCOUNT}:key/*", True),
        (f"arn:aws:kms:us-east-?:{ACCOUNT}:key/*", True),
        ("arn:aws:kms:*:*:*", True),
        ("arn:aws:kms:us-west-2:*:*", False),
        (f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/*", False),
        ("arn:aws:*:*:*:*", True),
        ("arn:aws:s3:::*", False),
        (f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-*-1234567890ab", True),
    ],
)
def test_resource_patterns(pattern: str, expected: bool) -> None:
    assert decide(policy(stmt(Resource=pattern)), facts()).allowed is expected
    assert decide(policy(stmt(Resource=None, NotResource=pattern)), facts()).allowed is not expected


def test_resource_list_is_any_of() -> None:
    p = policy(stmt(Resource=["arn:aws:kms:us-west-2:*:*", KEY_PREFIX + "*"]))
    assert decide(p, facts()).allowed


def test_arn_wildcards_stay_within_a_component() -> None:
    # IAM UG, ARN condition operators: "*" matches within one colon-separated component only.
    pattern = ArnPattern.compile(
        parse_template("arn:aws:someservice:*:111122223333:finance/*", variables=True)
    )
    tricky = (
        "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
    )
    assert not pattern.matches(tricky, {})
    assert pattern.matches("arn:aws:someservice:us-east-2:111122223333:finance/a:b:c", {})
    assert Glob("arn:aws:someservice:*:111122223333:finance/*").match(tricky)  # StringLike would


def test_arn_pattern_needs_six_components() -> None:
    short = ArnPattern.compile(parse_template("arn:aws:kms:*", variables=True))
    assert not short.wellformed and not short.matches(KEY_ARN, {})
    assert not ArnPattern.compile(parse_template("arn:aws:kms:::*", variables=True)).matches(
        "arn:aws:kms", {}
    )


@pytest.mark.timeout(30)  # the old regular expressions ran for hours on these
def test_many_stars_do_not_backtrack_for_ever() -> None:
    """Found by scripts/fuzz_atheris.py (target "policy"): ``.*a.*a...b`` backtracked through
    every placement of its stars, so one Resource or StringLike with dozens of stars held a
    request. Each piece between stars is now found once, leftmost (exact for globs)."""
    stars = "*a" * 60 + "b"
    assert not Glob(stars).match("a" * 400)
    assert Glob(stars).match("a" * 400 + "b")
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{stars}"
    arn = ArnPattern.compile(parse_template(key, variables=True))
    assert not arn.matches(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/" + "a" * 400, {})
    assert arn.matches(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/" + "a" * 70 + "b", {})
    region = "arn:aws:kms:" + "*a" * 40 + "b:*:key/*"
    segment = ArnPattern.compile(parse_template(region, variables=True))
    assert not segment.matches("arn:aws:kms:" + "a" * 300 + ":1:key/x", {})
    assert segment.matches("arn:aws:kms:" + "a" * 60 + "b:1:key/x", {})
    denied = policy(stmt(Resource=f"arn:aws:kms:*:*:key/{stars}"))
    assert not decide(denied, facts(resource=KEY_ARN)).allowed
