"""End to end: tags (issue 2) against a real ``strongroom serve``.

TagResource, UntagResource, ListResourceTags with AWS's tag limits (reference/kms-api.md §3.12):
overwriting, empty values, counts and lengths, the reserved prefix, pagination, unknown keys and
keys pending deletion.

The helpers are in :mod:`tests.kms.aliases_tags_support`.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from tests.kms.aliases_tags_support import fails, key_arn, tags_of, unique_alias

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
        code, _ = fails(partial(kms.list_resource_tags, KeyId=key_id, Marker=bad))
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
