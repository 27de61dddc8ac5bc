"""End to end: aliases and tags (issue 2) against a real ``strongroom serve``.

CreateAlias, UpdateAlias, DeleteAlias, ListAliases with AWS's alias rules (reference/kms-api.md
§3.11); TagResource, UntagResource, ListResourceTags with AWS's tag limits (§3.12); and the
scheduler deleting a key with its aliases once its waiting period has passed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION, Server, error_code, running_server


def key_arn(key_id: str, region: str = REGION) -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}"


def alias_arn(name: str, region: str = REGION) -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT}:{name}"


def unique_alias(prefix: str = "e2e") -> str:
    return f"alias/{prefix}-{uuid.uuid4().hex[:12]}"


def fails(call: Callable[[], Any]) -> tuple[str, str]:
    """Run a call that must fail; its (error code, message)."""
    with pytest.raises(ClientError) as excinfo:
        call()
    return error_code(excinfo), str(excinfo.value.response["Error"]["Message"])


def aliases_of(kms: Any, key_id: str) -> dict[str, dict[str, Any]]:
    return {a["AliasName"]: a for a in kms.list_aliases(KeyId=key_id, Limit=100)["Aliases"]}


def all_aliases(kms: Any) -> dict[str, dict[str, Any]]:
    pages = kms.get_paginator("list_aliases").paginate()
    return {a["AliasName"]: a for page in pages for a in page["Aliases"]}


def tags_of(kms: Any, key_id: str) -> dict[str, str]:
    return {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}


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
        code, _ = fails(lambda m=bad: kms.list_aliases(Marker=m))
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
    for target in (name, alias_arn(name)):
        code, _ = fails(lambda t=target: kms.create_alias(AliasName=unique_alias(), TargetKeyId=t))
        assert code == "NotFoundException"


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


# -- TagResource, UntagResource, ListResourceTags --------------------------------------------


def test_tag_overwrite_empty_value_and_untag(kms: Any, key_id: str) -> None:
    kms.tag_resource(
        KeyId=key_id,
        Tags=[{"TagKey": "env", "TagValue": "test"}, {"TagKey": "Owner", "TagValue": "ops"}],
    )
    assert tags_of(kms, key_id) == {"env": "test", "Owner": "ops"}
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "env", "TagValue": "prod"}])
    kms.tag_resource(KeyId=key_arn(key_id), Tags=[{"TagKey": "empty", "TagValue": ""}])
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "owner", "TagValue": "other"}])  # case
    assert tags_of(kms, key_id) == {"env": "prod", "Owner": "ops", "empty": "", "owner": "other"}
    kms.untag_resource(KeyId=key_id, TagKeys=["env", "not-there"])
    kms.untag_resource(KeyId=key_arn(key_id), TagKeys=["absent"])
    assert tags_of(kms, key_id) == {"Owner": "ops", "empty": "", "owner": "other"}


def test_tag_limits(kms: Any, key_id: str) -> None:
    kms.tag_resource(
        KeyId=key_id, Tags=[{"TagKey": f"t{i:02d}", "TagValue": str(i)} for i in range(50)]
    )
    assert len(tags_of(kms, key_id)) == 50
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "t00", "TagValue": "overwrite ok"}])
    code, _ = fails(
        lambda: kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "t50", "TagValue": "x"}])
    )
    assert code == "LimitExceededException"
    tags = tags_of(kms, key_id)
    assert len(tags) == 50
    assert tags["t00"] == "overwrite ok"
    assert "t50" not in tags


def test_tag_key_and_value_lengths(kms: Any, key_id: str) -> None:
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "k" * 128, "TagValue": "v" * 256}])
    code, message = fails(
        lambda: kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "k" * 129, "TagValue": "v"}])
    )
    assert code == "ValidationException"
    assert message == (
        f"1 validation error detected: Value '{'k' * 129}' at 'tags.1.member.tagKey' failed to "
        "satisfy constraint: Member must have length less than or equal to 128"
    )
    code, message = fails(
        lambda: kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "k", "TagValue": "v" * 257}])
    )
    assert code == "ValidationException"
    assert "at 'tags.1.member.tagValue' failed to satisfy constraint" in message
    assert tags_of(kms, key_id) == {"k" * 128: "v" * 256}


def test_reserved_tag_prefix(kms: Any, key_id: str) -> None:
    code, _ = fails(
        lambda: kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "aws:cost", "TagValue": "x"}])
    )
    assert code == "TagException"
    assert tags_of(kms, key_id) == {}


def test_list_resource_tags_pagination(kms: Any, key_id: str) -> None:
    expected = {f"page{i}": f"v{i}" for i in range(5)}
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": k, "TagValue": v} for k, v in expected.items()])
    pages, marker = [], None
    while True:
        page = kms.list_resource_tags(
            KeyId=key_id, Limit=2, **({"Marker": marker} if marker else {})
        )
        pages.append(page)
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert [len(p["Tags"]) for p in pages] == [2, 2, 1]
    assert {t["TagKey"]: t["TagValue"] for p in pages for t in p["Tags"]} == expected
    for _ in range(2):  # the listing below needs two aliases, whichever tests ran before
        kms.create_alias(AliasName=unique_alias("marker"), TargetKeyId=key_id)
    aliases_marker = kms.list_aliases(Limit=1)["NextMarker"]  # a marker of another listing
    for bad in ("zzz", "!!", "Z2FyYmFnZQ==", aliases_marker):
        code, _ = fails(lambda m=bad: kms.list_resource_tags(KeyId=key_id, Marker=m))
        assert code == "InvalidMarkerException", bad


def test_tags_of_unknown_key(kms: Any) -> None:
    unknown = str(uuid.uuid4())
    expected = ("NotFoundException", f"Key '{key_arn(unknown)}' does not exist")
    assert fails(lambda: kms.list_resource_tags(KeyId=unknown)) == expected
    assert (
        fails(lambda: kms.tag_resource(KeyId=unknown, Tags=[{"TagKey": "a", "TagValue": "b"}]))
        == expected
    )
    assert fails(lambda: kms.untag_resource(KeyId=unknown, TagKeys=["a"])) == expected


def test_tagging_key_pending_deletion_is_refused(kms: Any, key_id: str) -> None:
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "keep", "TagValue": "1"}])
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    refusal = ("KMSInvalidStateException", f"{key_arn(key_id)} is pending deletion.")
    assert (
        fails(lambda: kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "a", "TagValue": "b"}]))
        == refusal
    )
    assert fails(lambda: kms.untag_resource(KeyId=key_id, TagKeys=["keep"])) == refusal
    assert tags_of(kms, key_id) == {"keep": "1"}  # listing still works


# -- Deletion by the scheduler ---------------------------------------------------------------


@pytest.fixture(scope="module")
def clock_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    base = tmp_path_factory.mktemp("clock")
    offset = base / "clock-offset"
    offset.write_text("0")
    with running_server(
        base / "d", "--scheduler-interval", "0.2", "--clock-offset-file", str(offset)
    ) as srv:
        yield srv, offset


def _wait_until_gone(kms: Any, key_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kms.describe_key(KeyId=key_id)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NotFoundException":
                return
            raise
        time.sleep(0.1)
    raise AssertionError(f"key {key_id} was not deleted within {timeout}s")


def test_scheduler_deletes_due_keys_with_their_aliases(
    clock_server: tuple[Server, Path],
) -> None:
    server, offset = clock_server
    kms = server.client()
    doomed = kms.create_key(Description="doomed")["KeyMetadata"]["KeyId"]
    spared = kms.create_key(Description="spared")["KeyMetadata"]["KeyId"]
    later = kms.create_key(Description="later")["KeyMetadata"]["KeyId"]
    doomed_aliases = {"alias/doomed-a", "alias/doomed-b"}
    for name in doomed_aliases:
        kms.create_alias(AliasName=name, TargetKeyId=doomed)
    kms.create_alias(AliasName="alias/spared", TargetKeyId=spared)
    kms.tag_resource(KeyId=doomed, Tags=[{"TagKey": "t", "TagValue": "v"}])
    blob = kms.encrypt(KeyId=doomed, Plaintext=b"gone")["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    kms.schedule_key_deletion(KeyId=later, PendingWindowInDays=30)

    time.sleep(0.6)  # several scheduler passes: nothing is due yet
    assert kms.describe_key(KeyId=doomed)["KeyMetadata"]["KeyState"] == "PendingDeletion"

    offset.write_text(str(8 * 86400))
    _wait_until_gone(kms, doomed)

    arn = key_arn(doomed)
    not_found = ("NotFoundException", f"Key '{arn}' does not exist")
    assert fails(lambda: kms.describe_key(KeyId=doomed)) == not_found
    assert fails(lambda: kms.describe_key(KeyId=arn)) == not_found
    assert fails(lambda: kms.encrypt(KeyId=doomed, Plaintext=b"x")) == not_found
    assert fails(lambda: kms.decrypt(CiphertextBlob=blob, KeyId=arn)) == not_found
    assert fails(lambda: kms.cancel_key_deletion(KeyId=doomed)) == not_found
    assert fails(lambda: kms.list_resource_tags(KeyId=doomed)) == not_found
    assert fails(lambda: kms.get_key_policy(KeyId=doomed, PolicyName="default")) == not_found
    code, _ = fails(lambda: kms.decrypt(CiphertextBlob=blob))
    assert code in {"NotFoundException", "InvalidCiphertextException"}
    for name in doomed_aliases:
        assert fails(lambda n=name: kms.describe_key(KeyId=n)) == (
            "NotFoundException",
            f"Alias {alias_arn(name)} is not found.",
        )
    remaining = all_aliases(kms)
    assert not doomed_aliases & set(remaining)
    assert remaining["alias/spared"]["TargetKeyId"] == spared
    listed = {k["KeyId"] for k in kms.list_keys()["Keys"]}
    assert doomed not in listed
    assert {spared, later} <= listed
    # the 30-day key is not due at +8 days, and the freed alias name can be reused
    assert kms.describe_key(KeyId=later)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    kms.create_alias(AliasName="alias/doomed-a", TargetKeyId=spared)
    assert kms.describe_key(KeyId="alias/doomed-a")["KeyMetadata"]["KeyId"] == spared


def test_cancelled_deletion_is_not_carried_out(clock_server: tuple[Server, Path]) -> None:
    server, offset = clock_server
    kms = server.client()
    base = float(offset.read_text())
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    kms.cancel_key_deletion(KeyId=key_id)
    offset.write_text(str(base + 8 * 86400))
    time.sleep(0.8)  # four scheduler passes past the old deletion date
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
