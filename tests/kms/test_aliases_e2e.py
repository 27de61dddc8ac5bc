"""End to end: aliases (issue 2) against a real ``strongroom serve``.

CreateAlias, UpdateAlias, DeleteAlias, ListAliases with AWS's alias rules (reference/kms-api.md
§3.11): names, the reserved ``alias/aws/`` prefix, duplicates, targets (never an alias, never a
key pending deletion), pagination, and one namespace per region.

The helpers are in :mod:`tests.kms.aliases_tags_support`.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest

from tests.conftest import Server
from tests.kms.aliases_tags_support import (
    alias_arn,
    aliases_of,
    all_aliases,
    fails,
    key_arn,
    unique_alias,
)


@pytest.fixture
def second_key(kms: Any) -> str:
    return str(kms.create_key(Description="second")["KeyMetadata"]["KeyId"])


# -- CreateAlias, UpdateAlias, DeleteAlias, ListAliases --------------------------------------


def test_create_alias_and_list_its_fields(kms: Any, key_id: str) -> None:
    name = unique_alias()
    before = datetime.now(UTC)
    assert (
        kms.create_alias(AliasName=name, TargetKeyId=key_id)["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )
    entry = aliases_of(kms, key_id)[name]
    assert set(entry) == {
        "AliasName",
        "AliasArn",
        "TargetKeyId",
        "CreationDate",
        "LastUpdatedDate",
    }
    assert entry["AliasArn"] == alias_arn(name)
    assert entry["TargetKeyId"] == key_id  # the bare key id, not the ARN
    assert abs((entry["CreationDate"] - before).total_seconds()) < 60
    assert entry["LastUpdatedDate"] == entry["CreationDate"]
    assert all_aliases(kms)[name] == entry
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key_id


def test_create_alias_by_key_arn(kms: Any, key_id: str) -> None:
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key_arn(key_id))
    assert aliases_of(kms, key_id)[name]["TargetKeyId"] == key_id


def test_update_alias_repoints_it(kms: Any, key_id: str, second_key: str) -> None:
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    created = aliases_of(kms, key_id)[name]
    blob = kms.encrypt(KeyId=name, Plaintext=b"first")["CiphertextBlob"]
    time.sleep(0.01)
    kms.update_alias(AliasName=name, TargetKeyId=second_key)
    assert name not in aliases_of(kms, key_id)
    updated = aliases_of(kms, second_key)[name]
    assert updated["TargetKeyId"] == second_key
    assert updated["CreationDate"] == created["CreationDate"]
    assert updated["LastUpdatedDate"] > created["LastUpdatedDate"]
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == second_key
    assert kms.encrypt(KeyId=name, Plaintext=b"x")["KeyId"] == key_arn(second_key)
    # the old ciphertext still decrypts: the blob names its key, not the alias
    assert kms.decrypt(CiphertextBlob=blob)["KeyId"] == key_arn(key_id)


def test_update_alias_unknown_alias_and_unknown_target(kms: Any, key_id: str) -> None:
    missing = unique_alias()
    assert fails(lambda: kms.update_alias(AliasName=missing, TargetKeyId=key_id)) == (
        "NotFoundException",
        f"Alias {alias_arn(missing)} is not found.",
    )
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    unknown = str(uuid.uuid4())
    assert fails(lambda: kms.update_alias(AliasName=name, TargetKeyId=unknown)) == (
        "NotFoundException",
        f"Key '{key_arn(unknown)}' does not exist",
    )
    assert aliases_of(kms, key_id)[name]["TargetKeyId"] == key_id


def test_delete_alias(kms: Any, key_id: str) -> None:
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    kms.delete_alias(AliasName=name)
    assert name not in aliases_of(kms, key_id)
    assert fails(lambda: kms.describe_key(KeyId=name)) == (
        "NotFoundException",
        f"Alias {alias_arn(name)} is not found.",
    )
    assert fails(lambda: kms.delete_alias(AliasName=name)) == (
        "NotFoundException",
        f"Alias {alias_arn(name)} is not found.",
    )
    # the key is untouched, and the name is free again
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    kms.create_alias(AliasName=name, TargetKeyId=key_id)


def test_list_aliases_key_filter(kms: Any, key_id: str, second_key: str) -> None:
    mine = {unique_alias() for _ in range(3)}
    theirs = unique_alias()
    for name in mine:
        kms.create_alias(AliasName=name, TargetKeyId=key_id)
    kms.create_alias(AliasName=theirs, TargetKeyId=second_key)
    assert set(aliases_of(kms, key_id)) == mine
    by_arn = kms.list_aliases(KeyId=key_arn(key_id))["Aliases"]
    assert {a["AliasName"] for a in by_arn} == mine
    assert set(aliases_of(kms, second_key)) == {theirs}
    everything = all_aliases(kms)
    assert mine | {theirs} <= set(everything)
    fresh = kms.create_key()["KeyMetadata"]["KeyId"]
    assert kms.list_aliases(KeyId=fresh)["Aliases"] == []


def test_list_aliases_key_filter_errors(kms: Any, key_id: str) -> None:
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    code, _ = fails(lambda: kms.list_aliases(KeyId=name))  # alias names are not accepted
    assert code == "NotFoundException"
    unknown = str(uuid.uuid4())
    assert fails(lambda: kms.list_aliases(KeyId=unknown)) == (
        "NotFoundException",
        f"Key '{key_arn(unknown)}' does not exist",
    )
    code, _ = fails(lambda: kms.list_aliases(KeyId="arn:aws:kms:us-east-1:12:key/x"))
    assert code == "InvalidArnException"


def test_list_aliases_pagination(kms: Any, key_id: str) -> None:
    names = {unique_alias("page") for _ in range(5)}
    for name in names:
        kms.create_alias(AliasName=name, TargetKeyId=key_id)
    pages, marker = [], None
    while True:
        page = kms.list_aliases(KeyId=key_id, Limit=2, **({"Marker": marker} if marker else {}))
        pages.append(page)
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert [len(p["Aliases"]) for p in pages] == [2, 2, 1]
    listed = [a["AliasName"] for p in pages for a in p["Aliases"]]
    assert sorted(listed) == sorted(names)
    kms.create_key()  # the listing below needs two keys, whichever tests ran before
    keys_marker = kms.list_keys(Limit=1)["NextMarker"]  # a marker of another listing
    for bad in ("zzz", "!!", "Z2FyYmFnZQ==", keys_marker):
        code, _ = fails(partial(kms.list_aliases, Marker=bad))
        assert code == "InvalidMarkerException", bad


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("my-key", "InvalidAliasNameException"),  # no alias/ prefix (model error for bad names)
        ("alias/a b", "ValidationException"),  # outside the model pattern
        ("alias/caf\u00e9", "ValidationException"),
        ("alias/semi;colon", "ValidationException"),
        ("alias/" + "a" * 251, "ValidationException"),  # 257 characters
        ("alias/a:b", "InvalidAliasNameException"),  # the model pattern allows ':', AWS does not
    ],
)
def test_create_alias_bad_names(kms: Any, key_id: str, name: str, code: str) -> None:
    got, message = fails(lambda: kms.create_alias(AliasName=name, TargetKeyId=key_id))
    assert got == code
    if code == "ValidationException":
        assert (
            message.startswith("1 validation error detected: Value '")
            and "at 'aliasName' failed to satisfy constraint: Member must" in message
        )
    assert aliases_of(kms, key_id) == {}


def test_alias_name_length_boundary(kms: Any, key_id: str) -> None:
    name = "alias/" + uuid.uuid4().hex + "b" * (256 - 6 - 32)
    assert len(name) == 256
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    assert set(aliases_of(kms, key_id)) == {name}


@pytest.mark.parametrize("name", ["alias/aws/ebs", "alias/aws/strongroom-e2e"])
def test_alias_aws_prefix_is_reserved(kms: Any, key_id: str, second_key: str, name: str) -> None:
    # AWS's exact code for this case is unconfirmed (kms-api.md §5); it must be refused.
    code, _ = fails(lambda: kms.create_alias(AliasName=name, TargetKeyId=key_id))
    assert code in {"NotAuthorizedException", "InvalidAliasNameException", "ValidationException"}
    code, _ = fails(lambda: kms.update_alias(AliasName=name, TargetKeyId=second_key))
    assert code in {"NotAuthorizedException", "NotFoundException", "ValidationException"}
    assert aliases_of(kms, key_id) == {}


def test_create_alias_duplicate_name(kms: Any, key_id: str, second_key: str) -> None:
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    assert fails(lambda: kms.create_alias(AliasName=name, TargetKeyId=second_key)) == (
        "AlreadyExistsException",
        f"An alias with the name {alias_arn(name)} already exists",
    )
    assert aliases_of(kms, key_id)[name]["TargetKeyId"] == key_id
    assert aliases_of(kms, second_key) == {}


def test_alias_names_are_case_sensitive(kms: Any, key_id: str, second_key: str) -> None:
    name = unique_alias("Case")
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    kms.create_alias(AliasName=name.lower(), TargetKeyId=second_key)
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key_id
    assert kms.describe_key(KeyId=name.lower())["KeyMetadata"]["KeyId"] == second_key


def test_create_alias_unknown_target(kms: Any) -> None:
    unknown = str(uuid.uuid4())
    name = unique_alias()
    assert fails(lambda: kms.create_alias(AliasName=name, TargetKeyId=unknown)) == (
        "NotFoundException",
        f"Key '{key_arn(unknown)}' does not exist",
    )
    assert name not in all_aliases(kms)


def test_alias_cannot_target_an_alias(kms: Any, key_id: str) -> None:
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    for target, expected in ((name, "NotFoundException"), (alias_arn(name), "InvalidArnException")):
        code, _ = fails(partial(kms.create_alias, AliasName=unique_alias(), TargetKeyId=target))
        assert code == expected


def test_alias_on_key_pending_deletion_is_refused(kms: Any, key_id: str) -> None:
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    name = unique_alias()
    assert fails(lambda: kms.create_alias(AliasName=name, TargetKeyId=key_id)) == (
        "KMSInvalidStateException",
        f"{key_arn(key_id)} is pending deletion.",
    )
    assert name not in all_aliases(kms)


def test_update_alias_onto_key_pending_deletion_is_refused(
    kms: Any, key_id: str, second_key: str
) -> None:
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    kms.schedule_key_deletion(KeyId=second_key, PendingWindowInDays=7)
    assert fails(lambda: kms.update_alias(AliasName=name, TargetKeyId=second_key)) == (
        "KMSInvalidStateException",
        f"{key_arn(second_key)} is pending deletion.",
    )
    assert aliases_of(kms, key_id)[name]["TargetKeyId"] == key_id
    # away from a key pending deletion is allowed (DG footnote [10])
    kms.cancel_key_deletion(KeyId=second_key)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    kms.update_alias(AliasName=name, TargetKeyId=second_key)
    assert aliases_of(kms, second_key)[name]["TargetKeyId"] == second_key


def test_alias_namespace_is_per_region(server: Server, kms: Any, key_id: str) -> None:
    west = server.client(region="eu-west-1")
    west_key = west.create_key()["KeyMetadata"]["KeyId"]
    name = unique_alias("regional")
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    west.create_alias(AliasName=name, TargetKeyId=west_key)  # same name, other region: fine
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key_id
    assert west.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == west_key
    assert aliases_of(west, west_key)[name]["AliasArn"] == alias_arn(name, "eu-west-1")
    kms.delete_alias(AliasName=name)
    assert west.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == west_key
    only_east = unique_alias("regional")
    kms.create_alias(AliasName=only_east, TargetKeyId=key_id)
    assert fails(lambda: west.describe_key(KeyId=only_east)) == (
        "NotFoundException",
        f"Alias {alias_arn(only_east, 'eu-west-1')} is not found.",
    )
    # an alias cannot point at a key of another region
    code, _ = fails(lambda: west.create_alias(AliasName=unique_alias(), TargetKeyId=key_id))
    assert code == "NotFoundException"
    code, _ = fails(
        lambda: west.create_alias(AliasName=unique_alias(), TargetKeyId=key_arn(key_id))
    )
    assert code == "NotFoundException"
