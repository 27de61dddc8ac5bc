"""End to end: the key-state table (reference/kms-api.md §3.2), against a real ``strongroom serve``.

Cell by cell for every operation of issue 2 in Enabled / Disabled / PendingDeletion; a refused
operation changes nothing; a crypto round trip survives state changes.

Through boto3 against the shared ``strongroom serve`` of the end-to-end tests; the helpers are in
:mod:`tests.kms.keys_support`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import ACCOUNT
from tests.kms.keys_support import DEFAULT_POLICY, fails, key_arn, unique_alias

# -- The key-state table, end to end ---------------------------------------------------------


@dataclass
class Subject:
    """A key brought into a state, with what the operations need."""

    kms: Any
    key_id: str
    arn: str
    blob: bytes  # encrypted under the key while it was Enabled
    alias: str  # points at the key
    other_id: str  # an Enabled key
    other_blob: bytes  # encrypted under the other key


def _update_alias_onto(s: Subject) -> Any:
    alias = unique_alias()
    s.kms.create_alias(AliasName=alias, TargetKeyId=s.other_id)
    return s.kms.update_alias(AliasName=alias, TargetKeyId=s.key_id)


STATE_OPS: dict[str, Callable[[Subject], Any]] = {
    "DescribeKey": lambda s: s.kms.describe_key(KeyId=s.key_id),
    "EnableKey": lambda s: s.kms.enable_key(KeyId=s.key_id),
    "DisableKey": lambda s: s.kms.disable_key(KeyId=s.key_id),
    "UpdateKeyDescription": lambda s: s.kms.update_key_description(KeyId=s.key_id, Description="x"),
    "ScheduleKeyDeletion": lambda s: s.kms.schedule_key_deletion(
        KeyId=s.key_id, PendingWindowInDays=7
    ),
    "CancelKeyDeletion": lambda s: s.kms.cancel_key_deletion(KeyId=s.key_id),
    "Encrypt": lambda s: s.kms.encrypt(KeyId=s.key_id, Plaintext=b"state"),
    "Decrypt": lambda s: s.kms.decrypt(CiphertextBlob=s.blob),
    "ReEncrypt(source)": lambda s: s.kms.re_encrypt(
        CiphertextBlob=s.blob, DestinationKeyId=s.other_id
    ),
    "ReEncrypt(destination)": lambda s: s.kms.re_encrypt(
        CiphertextBlob=s.other_blob, DestinationKeyId=s.key_id
    ),
    "GenerateDataKey": lambda s: s.kms.generate_data_key(KeyId=s.key_id, KeySpec="AES_128"),
    "GenerateDataKeyWithoutPlaintext": lambda s: s.kms.generate_data_key_without_plaintext(
        KeyId=s.key_id, KeySpec="AES_256"
    ),
    "CreateAlias": lambda s: s.kms.create_alias(AliasName=unique_alias(), TargetKeyId=s.key_id),
    "UpdateAlias(onto this key)": _update_alias_onto,
    "UpdateAlias(away from this key)": lambda s: s.kms.update_alias(
        AliasName=s.alias, TargetKeyId=s.other_id
    ),
    "DeleteAlias": lambda s: s.kms.delete_alias(AliasName=s.alias),
    "ListAliases": lambda s: s.kms.list_aliases(KeyId=s.key_id),
    "TagResource": lambda s: s.kms.tag_resource(
        KeyId=s.key_id, Tags=[{"TagKey": "k", "TagValue": "v"}]
    ),
    "UntagResource": lambda s: s.kms.untag_resource(KeyId=s.key_id, TagKeys=["setup"]),
    "ListResourceTags": lambda s: s.kms.list_resource_tags(KeyId=s.key_id),
    "GetKeyPolicy": lambda s: s.kms.get_key_policy(KeyId=s.key_id, PolicyName="default"),
    "PutKeyPolicy": lambda s: s.kms.put_key_policy(
        KeyId=s.key_id, PolicyName="default", Policy=DEFAULT_POLICY % ACCOUNT
    ),
    "ListKeyPolicies": lambda s: s.kms.list_key_policies(KeyId=s.key_id),
}

OK = None
DISABLED = ("DisabledException", "is disabled.")  # footnote [1]
PENDING = ("KMSInvalidStateException", "is pending deletion.")  # footnote [3]
NOT_PENDING = ("KMSInvalidStateException", "is not pending deletion.")  # footnote [4]
STATES = ("Enabled", "Disabled", "PendingDeletion")

# DG key-state table (kms-api.md §3.2), columns Enabled / Disabled / PendingDeletion.
_ALWAYS = (OK, OK, OK)
_EDIT = (OK, OK, PENDING)
# Under PendingDeletion the DG says "[2] or [3]"; the service answers [3] (KMSInvalidState).
_CRYPTO = (OK, DISABLED, PENDING)
STATE_TABLE: dict[str, tuple[tuple[str, str] | None, ...]] = {
    "DescribeKey": _ALWAYS,
    "EnableKey": _EDIT,
    "DisableKey": _EDIT,
    "UpdateKeyDescription": _EDIT,
    "ScheduleKeyDeletion": _EDIT,
    "CancelKeyDeletion": (NOT_PENDING, NOT_PENDING, OK),
    "Encrypt": _CRYPTO,
    "Decrypt": _CRYPTO,
    "ReEncrypt(source)": _CRYPTO,
    "ReEncrypt(destination)": _CRYPTO,
    "GenerateDataKey": _CRYPTO,
    "GenerateDataKeyWithoutPlaintext": _CRYPTO,
    "CreateAlias": _EDIT,
    "UpdateAlias(onto this key)": _EDIT,  # footnote [10]: the new target may not be pending
    "UpdateAlias(away from this key)": _ALWAYS,  # footnote [10]: the old target may be
    "DeleteAlias": _ALWAYS,
    "ListAliases": _ALWAYS,
    "TagResource": _EDIT,
    "UntagResource": _EDIT,
    "ListResourceTags": _ALWAYS,
    "GetKeyPolicy": _ALWAYS,
    "PutKeyPolicy": _ALWAYS,
    "ListKeyPolicies": _ALWAYS,
}
assert set(STATE_TABLE) == set(STATE_OPS)


def _state_cases() -> Iterator[Any]:
    for operation, row in STATE_TABLE.items():
        for state, expected in zip(STATES, row, strict=True):
            yield pytest.param(operation, state, expected, id=f"{operation}-{state}")


@pytest.fixture(scope="module")
def other_key(kms: Any) -> tuple[str, bytes]:
    other_id = kms.create_key(Description="state-table partner")["KeyMetadata"]["KeyId"]
    return other_id, kms.encrypt(KeyId=other_id, Plaintext=b"partner")["CiphertextBlob"]


@pytest.mark.parametrize(("operation", "state", "expected"), list(_state_cases()))
def test_key_state_table(
    kms: Any,
    other_key: tuple[str, bytes],
    operation: str,
    state: str,
    expected: tuple[str, str] | None,
) -> None:
    key_id = kms.create_key(Description=f"state table {state}")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"state")["CiphertextBlob"]
    alias = unique_alias()
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "setup", "TagValue": "1"}])
    if state == "Disabled":
        kms.disable_key(KeyId=key_id)
    elif state == "PendingDeletion":
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == state
    subject = Subject(kms, key_id, key_arn(key_id), blob, alias, *other_key)

    if expected is None:
        STATE_OPS[operation](subject)
    else:
        code, text = expected
        assert fails(lambda: STATE_OPS[operation](subject)) == (code, f"{key_arn(key_id)} {text}")


def test_refused_operation_changes_nothing(kms: Any, key_id: str) -> None:
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=9)
    before = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    for call in (
        lambda: kms.enable_key(KeyId=key_id),
        lambda: kms.disable_key(KeyId=key_id),
        lambda: kms.update_key_description(KeyId=key_id, Description="changed"),
        lambda: kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=20),
    ):
        fails(call)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"] == before


def test_crypto_round_trip_after_state_changes(kms: Any, key_id: str) -> None:
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"survives", EncryptionContext={"a": "b"})[
        "CiphertextBlob"
    ]
    kms.disable_key(KeyId=key_id)
    kms.schedule_key_deletion(KeyId=key_id)
    kms.cancel_key_deletion(KeyId=key_id)
    kms.enable_key(KeyId=key_id)
    out = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})
    assert out["Plaintext"] == b"survives"
    assert out["KeyId"] == key_arn(key_id)
