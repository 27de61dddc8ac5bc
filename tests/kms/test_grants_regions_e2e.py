"""Each region of a multi-Region key has its own grants (AWS: grants are not shared among
related multi-Region keys): a grant, its token, ListGrants, ListRetirableGrants, RetireGrant
and RevokeGrant all stay in the region of the key the grant was made on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.kms.access_support import Env, User, access_env, denied, fails

WEST = "eu-west-1"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with access_env(tmp_path_factory.mktemp("grant-regions")) as environment:
        yield environment


def _in(env: Env, user: User, region: str) -> Any:
    return env.server.client("kms", region=region, akid=user.akid, secret=user.secret)


def test_grants_stay_in_their_region(env: Env) -> None:
    east_admin, west_admin = env.admin, env.server.client(region=WEST)
    key = east_admin.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    east_admin.replicate_key(KeyId=key, ReplicaRegion=WEST)
    jay = env.user("jay")
    east, west = _in(env, jay, "us-east-1"), _in(env, jay, WEST)

    grant = east_admin.create_grant(
        KeyId=key, GranteePrincipal=jay.arn, Operations=["Encrypt"], RetiringPrincipal=jay.arn
    )
    east.encrypt(KeyId=key, Plaintext=b"east")
    denied(lambda: west.encrypt(KeyId=key, Plaintext=b"west"))
    token = grant["GrantToken"]
    assert fails(lambda: west.encrypt(KeyId=key, Plaintext=b"w", GrantTokens=[token]))[0] == (
        "InvalidGrantTokenException"
    )
    assert [g["GrantId"] for g in east_admin.list_grants(KeyId=key)["Grants"]] == [grant["GrantId"]]
    assert west_admin.list_grants(KeyId=key)["Grants"] == []
    assert fails(lambda: west_admin.revoke_grant(KeyId=key, GrantId=grant["GrantId"]))[0] == (
        "NotFoundException"
    )
    assert fails(lambda: west.retire_grant(GrantToken=token))[0] == "InvalidGrantTokenException"

    own = west_admin.create_grant(
        KeyId=key, GranteePrincipal=jay.arn, Operations=["Encrypt"], RetiringPrincipal=jay.arn
    )
    west.encrypt(KeyId=key, Plaintext=b"west")
    retirable = {
        region: [
            g["GrantId"] for g in admin.list_retirable_grants(RetiringPrincipal=jay.arn)["Grants"]
        ]
        for region, admin in (("east", east_admin), ("west", west_admin))
    }
    assert retirable == {"east": [grant["GrantId"]], "west": [own["GrantId"]]}
    west_key_arn = west_admin.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    assert west_admin.list_retirable_grants(RetiringPrincipal=jay.arn)["Grants"][0]["KeyId"] == (
        west_key_arn
    )
    # revoking one region's grant leaves the other's
    east_admin.revoke_grant(KeyId=key, GrantId=grant["GrantId"])
    denied(lambda: east.encrypt(KeyId=key, Plaintext=b"east"))
    west.encrypt(KeyId=key, Plaintext=b"west")
    west.retire_grant(KeyId=key, GrantId=own["GrantId"])
    denied(lambda: west.encrypt(KeyId=key, Plaintext=b"west"))
