"""End to end: the scheduler deleting a key with its aliases once its waiting period has passed.

Against a ``strongroom serve`` of its own whose clock the tests move (``--clock-offset-file``);
a cancelled deletion is not carried out.

The helpers are in :mod:`tests.kms.aliases_tags_support`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, running_server
from tests.kms.aliases_tags_support import alias_arn, all_aliases, fails, key_arn

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
        assert fails(partial(kms.describe_key, KeyId=name)) == (
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
