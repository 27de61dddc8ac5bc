"""Shared by the storage contract tests (``tests/storage/test_contract_*.py``).

The account and region of the rows, a key record with its wrapped material, and helpers that
insert a key, build an alias row and count the rows of a table on any backend.
"""

from __future__ import annotations

from sqlalchemy import Table, func, select

from strongroom.kms.domain.keys import KeyRecord
from strongroom.kms.domain.states import KeyState
from strongroom.storage import kms_repo
from tests.storage.conftest import T0, Backend

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "us-east-1"


def key_record(key_id: str, **changes: object) -> KeyRecord:
    rec = KeyRecord(
        key_id=key_id,
        account_id=ACCOUNT,
        region=REGION,
        state=KeyState.ENABLED,
        key_spec="SYMMETRIC_DEFAULT",
        key_usage="ENCRYPT_DECRYPT",
        origin="AWS_KMS",
        description=f"key {key_id} — ünïcode",
        created=T0 + 0.125,
        deletion_date=None,
        pending_window_days=None,
        multi_region=False,
        key_manager="CUSTOMER",
        custom_key_store_id=None,
        policy='{"Version": "2012-10-17", "Statement": []}',
        current_version=1,
    )
    return rec.replace(**changes)


def material(key_id: str) -> bytes:
    """Distinct wrapped-material bytes per key, covering every byte value."""
    return key_id.encode() + bytes(range(256))


def add_key(backend: Backend, key_id: str, **changes: object) -> KeyRecord:
    rec = key_record(key_id, **changes)
    with backend.engine.begin() as conn:
        kms_repo.insert_key(conn, rec, material(key_id))
    return rec


def alias_row(name: str, key_id: str, when: float = T0, region: str = REGION) -> kms_repo.AliasRow:
    return kms_repo.AliasRow(ACCOUNT, region, name, key_id, when, when)


def count(backend: Backend, table: Table) -> int:
    with backend.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
