"""End to end: grants as AWS KMS honours them, through boto3 against a real ``serve``.

The AWS-documented behaviour of grants (KMS Developer Guide: the operations a grant allows,
encryption context constraints, grant tokens, listing, retiring and revoking grants, grant name
idempotency, and CreateGrant through a grant) as black-box tests.

One fresh server per module (started with ``--clock-offset-file`` so that a session can be made to
expire), so listings are exact; the server, its identities and the helpers are in
:mod:`tests.kms.access_support`.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from tests.kms.access_support import (
    ROOT,
    Env,
    access_env,
    denied,
    fails,
    roundtrip,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with access_env(tmp_path_factory.mktemp("access")) as environment:
        yield environment


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
