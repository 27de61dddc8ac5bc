"""Pure domain rules: the key-state table cell by cell, blob parsing, context encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import AwsError
from strongroom.kms.domain import ciphertext
from strongroom.kms.domain.identifiers import parse_key_ref
from strongroom.kms.domain.states import KEY_STATE_RULES, KeyState, check_state

ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
S = KeyState
OK = None
DIS = ("DisabledException", "is disabled.")
PD = ("KMSInvalidStateException", "is pending deletion.")
NPD = ("KMSInvalidStateException", "is not pending deletion.")
PI = ("KMSInvalidStateException", "is pending import.")
UNAV = ("KMSInvalidStateException", "is unavailable.")
CR = ("KMSInvalidStateException", "is creating.")
UPD = ("KMSInvalidStateException", "is updating.")

# Columns: Enabled, Disabled, PendingDeletion, PendingReplicaDeletion, PendingImport,
# Unavailable, Creating, Updating (the DG key-state table).
COLUMNS = [S.ENABLED, S.DISABLED, S.PENDING_DELETION, S.PENDING_REPLICA_DELETION,
           S.PENDING_IMPORT, S.UNAVAILABLE, S.CREATING, S.UPDATING]  # fmt: skip
EXPECTED: dict[str, list[tuple[str, str] | None]] = {
    "Encrypt": [OK, DIS, PD, PD, PI, UNAV, CR, OK],
    "Decrypt": [OK, DIS, PD, PD, PI, UNAV, CR, OK],
    "GenerateDataKey": [OK, DIS, PD, PD, PI, UNAV, CR, OK],
    "ReEncryptFrom": [OK, DIS, PD, PD, PI, UNAV, CR, OK],
    "CreateAlias": [OK, OK, PD, PD, OK, OK, OK, OK],
    "TagResource": [OK, OK, PD, PD, OK, OK, OK, OK],
    "UpdateKeyDescription": [OK, OK, PD, PD, OK, OK, OK, OK],
    "EnableKey": [OK, OK, PD, PD, PI, OK, CR, UPD],
    "DisableKey": [OK, OK, PD, PD, PI, OK, CR, UPD],
    "CancelKeyDeletion": [NPD, NPD, OK, OK, NPD, NPD, NPD, NPD],
    "ScheduleKeyDeletion": [OK, OK, PD, PD, OK, OK, OK, UPD],
    "CreateGrant": [OK, DIS, PD, PD, PI, OK, CR, OK],
    "DescribeKey": [OK] * 8,
    "GetKeyPolicy": [OK] * 8,
    "DeleteAlias": [OK] * 8,
}


@pytest.mark.parametrize(
    ("operation", "state", "expected"),
    [(op, col, row[i]) for op, row in EXPECTED.items() for i, col in enumerate(COLUMNS)],
)
def test_state_table_cell(
    operation: str, state: KeyState, expected: tuple[str, str] | None
) -> None:
    if expected is None:
        check_state(operation, state, ARN)
        return
    with pytest.raises(AwsError) as exc:
        check_state(operation, state, ARN)
    assert (exc.value.code, exc.value.message) == (expected[0], f"{ARN} {expected[1]}")


def test_every_row_covers_every_state() -> None:
    for row in KEY_STATE_RULES.values():
        assert set(row) == set(KeyState)


contexts = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4)


@given(contexts, contexts)
def test_canonical_context_is_injective(a: dict[str, str], b: dict[str, str]) -> None:
    assert (ciphertext.canonical_context(a) == ciphertext.canonical_context(b)) == (a == b)


def test_canonical_context_splits_unambiguously() -> None:
    assert ciphertext.canonical_context({"ab": "c"}) != ciphertext.canonical_context({"a": "bc"})
    assert ciphertext.canonical_context({}) == ciphertext.canonical_context(None)


@given(st.binary(max_size=120))
def test_parse_blob_never_crashes(data: bytes) -> None:
    try:
        head = ciphertext.parse_blob(data)
    except ciphertext.MalformedBlob:
        return
    assert head.header + head.body == data
    assert len(head.body) >= 16


def test_blob_header_round_trip() -> None:
    header = ciphertext.encode_header(1, "key-id", 7, b"s" * 16, b"n" * 12)
    head = ciphertext.parse_blob(header + b"t" * 20)
    assert (head.key_id, head.material_version, head.salt, head.nonce) == (
        "key-id", 7, b"s" * 16, b"n" * 12)  # fmt: skip
    assert head.body == b"t" * 20


@pytest.mark.parametrize(
    ("value", "allow_alias", "code"),
    [
        ("not-a-key", True, "NotFoundException"),
        ("alias/x", False, "NotFoundException"),
        ("arn:aws:kms:us-east-1:111122223333:alias/x", False, "InvalidArnException"),
        (
            "arn:aws:kms:us-east-1:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            True,
            "InvalidArnException",
        ),
        ("arn:aws:kms:us-east-1:111122223333:bucket/x", True, "InvalidArnException"),
        (
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            True,
            "NotFoundException",
        ),
    ],
)
def test_key_ref_errors(value: str, allow_alias: bool, code: str) -> None:
    with pytest.raises(AwsError) as exc:
        parse_key_ref(value, "111122223333", "us-east-1", allow_alias=allow_alias)
    assert exc.value.code == code


def test_key_ref_forms() -> None:
    kid = "1234abcd-12ab-34cd-56ef-1234567890ab"
    assert parse_key_ref(kid, "111122223333", "us-east-1", allow_alias=False).key_id == kid
    other = parse_key_ref(
        f"arn:aws:kms:us-east-1:444455556666:key/{kid}",
        "111122223333",
        "us-east-1",
        allow_alias=False,
    )
    assert (other.account_id, other.key_id) == ("444455556666", kid)
    alias = parse_key_ref(
        "arn:aws:kms:us-east-1:111122223333:alias/a", "111122223333", "us-east-1", allow_alias=True
    )
    assert alias.alias_name == "alias/a"
