"""End to end: EnableKey, DisableKey, UpdateKeyDescription, ScheduleKeyDeletion and
CancelKeyDeletion, against a real ``strongroom serve``.

Disabling and enabling, descriptions, deletion windows (default, bounds, out of range) and
cancelling a deletion (the key is left disabled).

Through boto3 against the shared ``strongroom serve`` of the end-to-end tests; the helpers are in
:mod:`tests.kms.keys_support`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.kms.keys_support import close_to, fails, key_arn

DAY = timedelta(days=1)


# -- EnableKey, DisableKey, UpdateKeyDescription ---------------------------------------------


def test_disable_and_enable_key(kms: Any, key_id: str) -> None:
    assert kms.disable_key(KeyId=key_id)["ResponseMetadata"]["HTTPStatusCode"] == 200
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Disabled", False)
    kms.disable_key(KeyId=key_id)  # disabling a disabled key succeeds
    assert fails(lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x")) == (
        "DisabledException",
        f"{key_arn(key_id)} is disabled.",
    )
    kms.enable_key(KeyId=key_id)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Enabled", True)
    kms.enable_key(KeyId=key_id)  # enabling an enabled key succeeds
    assert kms.encrypt(KeyId=key_id, Plaintext=b"x")["KeyId"] == key_arn(key_id)


def test_update_key_description(kms: Any, key_id: str) -> None:
    kms.update_key_description(KeyId=key_id, Description="rotated quarterly")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "rotated quarterly"
    kms.update_key_description(KeyId=key_id, Description="")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == ""
    code, message = fails(lambda: kms.update_key_description(KeyId=key_id, Description="d" * 8193))
    assert code == "ValidationException"
    assert message.endswith(
        "at 'description' failed to satisfy constraint: "
        "Member must have length less than or equal to 8192"
    )


# -- ScheduleKeyDeletion, CancelKeyDeletion --------------------------------------------------


@pytest.mark.parametrize("days", [None, 7, 30])
def test_schedule_key_deletion(kms: Any, key_id: str, days: int | None) -> None:
    window = 30 if days is None else days
    now = datetime.now(UTC)
    args = {} if days is None else {"PendingWindowInDays": days}
    out = kms.schedule_key_deletion(KeyId=key_id, **args)
    assert out["KeyId"] == key_arn(key_id)
    assert out["KeyState"] == "PendingDeletion"
    assert out["PendingWindowInDays"] == window
    assert close_to(out["DeletionDate"], now + window * DAY)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion"
    assert meta["Enabled"] is False
    assert meta["DeletionDate"] == out["DeletionDate"]


@pytest.mark.parametrize(
    ("days", "bound"),
    [(6, "greater than or equal to 7"), (31, "less than or equal to 30")],
)
def test_schedule_key_deletion_window_out_of_range(
    kms: Any, key_id: str, days: int, bound: str
) -> None:
    assert fails(lambda: kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=days)) == (
        "ValidationException",
        f"1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to "
        f"satisfy constraint: Member must have value {bound}",
    )
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_cancel_key_deletion_leaves_key_disabled(kms: Any, key_id: str) -> None:
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    out = kms.cancel_key_deletion(KeyId=key_id)
    assert out["KeyId"] == key_arn(key_id)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "Disabled"
    assert meta["Enabled"] is False
    assert "DeletionDate" not in meta
    kms.enable_key(KeyId=key_id)
    assert kms.encrypt(KeyId=key_id, Plaintext=b"back")["KeyId"] == key_arn(key_id)
