"""End to end: ListKeys, accounts and regions, against a real ``strongroom serve``.

Pagination is exact in a fresh account, a failed CreateKey leaves no key, keys live in their
region, and bad markers and limits are refused.

Through boto3 against the shared ``strongroom serve`` of the end-to-end tests; the helpers are in
:mod:`tests.kms.keys_support`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Server
from tests.kms.keys_support import fails, key_arn, new_account_client

# -- ListKeys, accounts and regions ----------------------------------------------------------


@dataclass
class Account:
    """A fresh account on the shared server: its clients per region know only its keys."""

    account: str
    east: Any
    west: Any


@pytest.fixture(scope="module")
def fresh_account(server: Server) -> Iterator[Account]:
    account = f"{uuid.uuid4().int % 10**12:012d}"
    east, pair = new_account_client(server, account)
    west = server.client(
        region="eu-west-1", akid=pair["AccessKeyId"], secret=pair["SecretAccessKey"]
    )
    yield Account(account, east, west)


def test_list_keys_pagination_is_exact(fresh_account: Account) -> None:
    kms = fresh_account.east
    empty = kms.list_keys()
    assert (empty["Keys"], empty["Truncated"]) == ([], False)
    made = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(5)}

    pages, marker = [], None
    while True:
        page = kms.list_keys(Limit=2, **({"Marker": marker} if marker else {}))
        pages.append(page)
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert [len(p["Keys"]) for p in pages] == [2, 2, 1]
    listed = [k["KeyId"] for p in pages for k in p["Keys"]]
    assert len(listed) == len(set(listed)) == 5
    assert set(listed) == made
    for page in pages:
        for entry in page["Keys"]:
            assert entry["KeyArn"] == key_arn(entry["KeyId"], account=fresh_account.account)

    whole = kms.list_keys()
    assert {k["KeyId"] for k in whole["Keys"]} == made
    assert whole["Truncated"] is False
    assert "NextMarker" not in whole
    exact = kms.list_keys(Limit=5)
    assert len(exact["Keys"]) == 5
    assert exact["Truncated"] is False

    paged = kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 3})
    assert {k["KeyId"] for page in paged for k in page["Keys"]} == made


def test_failed_create_key_leaves_no_key(fresh_account: Account) -> None:
    kms = fresh_account.east
    before = {k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]}
    fails(lambda: kms.create_key(Tags=[{"TagKey": "aws:x", "TagValue": "y"}]))
    fails(lambda: kms.create_key(Policy="{not json"))
    fails(lambda: kms.create_key(KeyUsage="SIGN_VERIFY"))
    assert {k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]} == before


def test_keys_live_in_their_region(fresh_account: Account) -> None:
    east, west, account = fresh_account.east, fresh_account.west, fresh_account.account
    east_id = east.create_key()["KeyMetadata"]["KeyId"]
    assert east.describe_key(KeyId=east_id)["KeyMetadata"]["Arn"] == key_arn(
        east_id, account=account
    )
    assert fails(lambda: west.describe_key(KeyId=east_id)) == (
        "NotFoundException",
        f"Key '{key_arn(east_id, 'eu-west-1', account)}' does not exist",
    )
    code, _ = fails(lambda: west.describe_key(KeyId=key_arn(east_id, account=account)))
    assert code == "NotFoundException"
    assert east_id not in {k["KeyId"] for k in west.list_keys(Limit=1000)["Keys"]}

    west_meta = west.create_key()["KeyMetadata"]
    assert west_meta["Arn"] == key_arn(west_meta["KeyId"], "eu-west-1", account)
    assert [k["KeyId"] for k in west.list_keys()["Keys"]] == [west_meta["KeyId"]]
    assert west_meta["KeyId"] not in {k["KeyId"] for k in east.list_keys(Limit=1000)["Keys"]}
    code, _ = fails(lambda: east.encrypt(KeyId=west_meta["KeyId"], Plaintext=b"x"))
    assert code == "NotFoundException"


@pytest.mark.parametrize("marker", ["zzz", "not-a-marker"])
def test_list_keys_bad_marker(kms: Any, marker: str) -> None:
    code, _ = fails(lambda: kms.list_keys(Marker=marker))
    assert code == "InvalidMarkerException"


@pytest.mark.parametrize("marker", ["!!", "Z2FyYmFnZQ=="])
def test_list_keys_marker_not_issued_by_the_server(kms: Any, marker: str) -> None:
    code, _ = fails(lambda: kms.list_keys(Marker=marker))
    assert code == "InvalidMarkerException"


def test_list_keys_limit_range(kms: Any) -> None:
    code, message = fails(lambda: kms.list_keys(Limit=1001))
    assert code == "ValidationException"
    assert message == (
        "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 1000"
    )
