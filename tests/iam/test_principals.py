"""Principal and NotPrincipal: accounts, users, roles, sessions, services, and delegation to IAM."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.iam.policy import Caller, Effect
from tests.iam._support import (
    ACCOUNT,
    ALICE,
    BOB,
    EVE,
    OTHER,
    ROLE_ARN,
    ROOT,
    SERVICE,
    SESSION,
    decide,
    facts,
    policy,
    stmt,
)

ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"
OTHER_ROOT = Caller(f"arn:aws:iam::{OTHER}:root", OTHER, "Root")


def _decide(principal: Any, caller: Caller) -> tuple[Effect, bool]:
    d = decide(policy(stmt(Principal=principal)), facts(caller))
    return d.effect, d.delegated


ALLOW, NONE = Effect.ALLOW, Effect.NONE


@pytest.mark.parametrize(
    ("principal", "caller", "expected"),
    [
        ("*", BOB, (ALLOW, False)),
        ("*", SERVICE, (ALLOW, False)),
        ({"AWS": "*"}, EVE, (ALLOW, False)),
        ({"AWS": ROOT_ARN}, BOB, (ALLOW, True)),
        ({"AWS": ACCOUNT}, SESSION, (ALLOW, True)),
        ({"AWS": ROOT_ARN}, ROOT, (ALLOW, False)),  # the root user is the account itself
        ({"AWS": ROOT_ARN}, EVE, (NONE, False)),
        ({"AWS": ROOT_ARN}, SERVICE, (NONE, False)),
        ({"AWS": BOB.arn}, BOB, (ALLOW, False)),
        ({"AWS": BOB.arn}, ALICE, (NONE, False)),
        ({"AWS": BOB.arn.replace("bob", "Bob")}, BOB, (NONE, False)),
        ({"AWS": BOB.arn}, ROOT, (NONE, False)),
        ({"AWS": ROLE_ARN}, SESSION, (ALLOW, False)),  # a role names its sessions
        ({"AWS": SESSION.arn}, SESSION, (ALLOW, False)),
        ({"AWS": SESSION.arn.replace("/s1", "/s2")}, SESSION, (NONE, False)),
        ({"AWS": [ROOT_ARN, BOB.arn]}, BOB, (ALLOW, False)),  # direct wins over delegated
        ({"AWS": [f"arn:aws:iam::{OTHER}:root"]}, EVE, (ALLOW, True)),  # cross-account
        ({"Service": "ec2.amazonaws.com"}, SERVICE, (ALLOW, False)),
        ({"Service": "ec2.amazonaws.com"}, BOB, (NONE, False)),
        ({"Service": "s3.amazonaws.com"}, SERVICE, (NONE, False)),
    ],
)
def test_principal(principal: Any, caller: Caller, expected: tuple[Effect, bool]) -> None:
    assert _decide(principal, caller) == expected


def test_direct_allow_in_another_statement_beats_delegation() -> None:
    p = policy(stmt(Principal={"AWS": ACCOUNT}), stmt(Principal={"AWS": BOB.arn}, Sid="bob"))
    d = decide(p, facts(BOB))
    assert d.allowed and not d.delegated and d.sid == "bob" and d.statement == 1
    assert decide(p, facts(ALICE)).delegated


def _not_principal(names: list[str], caller: Caller) -> bool:
    """Does a Deny with NotPrincipal ``names`` deny ``caller``?"""
    p = policy(stmt("Deny", Principal=None, NotPrincipal={"AWS": names}), stmt())
    return decide(p, facts(caller)).denied


def test_not_principal_with_user_and_account_exempts_only_that_user() -> None:
    # IAM UG, NotPrincipal with Deny: list the user and the user's account.
    names = [BOB.arn, ROOT_ARN]
    assert not _not_principal(names, BOB)
    assert not _not_principal(names, ROOT)
    assert _not_principal(names, ALICE)
    assert _not_principal(names, SESSION)
    assert _not_principal(names, EVE)
    assert _not_principal(names, SERVICE)


def test_not_principal_without_the_account_still_denies_the_user() -> None:
    # The IAM UG warns that omitting the account ARN may deny the named user too.
    assert _not_principal([BOB.arn], BOB)


def test_not_principal_for_a_session_needs_session_role_and_account() -> None:
    assert not _not_principal([SESSION.arn, ROLE_ARN, ROOT_ARN], SESSION)
    assert _not_principal([SESSION.arn, ROOT_ARN], SESSION)
    assert _not_principal([ROLE_ARN, ROOT_ARN], SESSION)


def test_not_principal_account_alone_exempts_only_the_root_user() -> None:
    assert not _not_principal([ACCOUNT], ROOT)
    assert _not_principal([ACCOUNT], BOB)
    assert _not_principal([ACCOUNT], OTHER_ROOT)


def test_not_principal_star_excludes_everyone() -> None:
    assert not _not_principal(["*"], BOB)


def test_not_principal_with_allow_allows_everyone_else_directly() -> None:
    p = policy(stmt(Principal=None, NotPrincipal={"AWS": [BOB.arn, ROOT_ARN]}))
    d = decide(p, facts(ALICE))
    assert d.allowed and not d.delegated
    assert not decide(p, facts(BOB)).allowed


def test_not_principal_service() -> None:
    p = policy(stmt("Deny", Principal=None, NotPrincipal={"Service": "ec2.amazonaws.com"}), stmt())
    assert not decide(p, facts(SERVICE)).denied
    assert decide(p, facts(BOB)).denied
