"""The storage contract for migrations and keys: every backend (SQLite, PostgreSQL, faulty SQLite)
behaves the same.

Migrations apply from empty, are idempotent and refuse a newer schema; keys and their material
are inserted, read, updated, listed (scoped and paged), found due for deletion and deleted with
their material, aliases and tags.

Each test runs once per backend through the ``backend`` fixture (``tests/storage/conftest.py``)
and talks to the repositories exactly as the service does: one connection per transaction; the
helpers are in :mod:`tests.storage.contract_support`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import insert, inspect, select

from strongroom.kms.domain.states import KeyState
from strongroom.storage import kms_repo
from strongroom.storage.migrations import MIGRATIONS, apply_migrations, current_version
from strongroom.storage.schema import key_materials, metadata, schema_migrations
from tests.storage.conftest import T0, Backend
from tests.storage.contract_support import (
    ACCOUNT,
    OTHER_ACCOUNT,
    REGION,
    add_key,
    alias_row,
    count,
    key_record,
    material,
)

LATEST = max(number for number, _, _ in MIGRATIONS)


# -- migrations ---------------------------------------------------------------------------------


def test_migrations_apply_from_empty_and_are_idempotent(empty_backend: Backend) -> None:
    engine = empty_backend.engine
    assert current_version(engine) == 0
    assert not inspect(engine).has_table("kms_keys")

    assert apply_migrations(engine, lambda: T0) == LATEST
    assert current_version(engine) == LATEST
    present = set(inspect(engine).get_table_names())
    assert set(metadata.tables) <= present
    with engine.connect() as conn:
        recorded = conn.execute(select(schema_migrations).order_by("version")).all()
    assert [(r.version, r.name, r.applied_at) for r in recorded] == [
        (number, name, T0) for number, name, _ in MIGRATIONS
    ]

    # A second apply changes nothing: no migration re-runs, no row is re-recorded.
    assert apply_migrations(engine, lambda: T0 + 999) == LATEST
    with engine.connect() as conn:
        again = conn.execute(select(schema_migrations).order_by("version")).all()
    assert again == recorded


def test_migrations_refuse_a_newer_schema(backend: Backend) -> None:
    with backend.engine.begin() as conn:
        conn.execute(insert(schema_migrations).values(version=LATEST + 1, name="x", applied_at=T0))
    with pytest.raises(RuntimeError, match="newer than this Strongroom"):
        apply_migrations(backend.engine, lambda: T0)


# -- keys and material --------------------------------------------------------------------------


def test_insert_and_get_key_with_material(backend: Backend) -> None:
    rec = add_key(backend, "k-1")
    bare = key_record("k-2", origin="EXTERNAL", state=KeyState.PENDING_IMPORT)
    with backend.engine.begin() as conn:
        kms_repo.insert_key(conn, bare, None)
    with backend.engine.connect() as conn:
        assert kms_repo.get_key(conn, "k-1") == rec
        assert kms_repo.get_material(conn, "k-1", 1) == material("k-1")
        assert kms_repo.get_material(conn, "k-1", 2) is None
        assert kms_repo.get_key(conn, "k-2") == bare
        assert kms_repo.get_material(conn, "k-2", 1) is None
        assert kms_repo.get_key(conn, "absent") is None


def test_update_key_writes_every_mutable_field(backend: Backend) -> None:
    rec = add_key(backend, "k-1")
    other = add_key(backend, "k-2")
    changed = rec.replace(
        state=KeyState.PENDING_DELETION,
        description="",
        deletion_date=T0 + 7 * 86_400.5,
        pending_window_days=7,
        multi_region=True,
        custom_key_store_id="cks-1234567890abcdef0",
        policy="{}",
        current_version=3,
    )
    with backend.engine.begin() as conn:
        kms_repo.update_key(conn, changed)
    with backend.engine.connect() as conn:
        assert kms_repo.get_key(conn, "k-1") == changed
        assert kms_repo.get_key(conn, "k-2") == other


def test_list_keys_is_scoped_and_paged_in_key_id_order(backend: Backend) -> None:
    ids = ["k-03", "k-01", "k-05", "k-02", "k-04"]
    for key_id in ids:
        add_key(backend, key_id)
    add_key(backend, "k-00-other-account", account_id=OTHER_ACCOUNT)
    add_key(backend, "k-00-other-region", region="eu-west-1")
    with backend.engine.connect() as conn:
        everything = kms_repo.list_keys(conn, ACCOUNT, REGION, None, 100)
        first = kms_repo.list_keys(conn, ACCOUNT, REGION, None, 2)
        second = kms_repo.list_keys(conn, ACCOUNT, REGION, first[-1].key_id, 2)
        last = kms_repo.list_keys(conn, ACCOUNT, REGION, second[-1].key_id, 2)
        past_end = kms_repo.list_keys(conn, ACCOUNT, REGION, "k-05", 2)
    assert [r.key_id for r in everything] == sorted(ids)
    assert [r.key_id for r in first + second + last] == sorted(ids)
    assert [len(first), len(second), len(last)] == [2, 2, 1]
    assert past_end == []


def test_due_deletions_are_pending_keys_whose_date_has_come(backend: Backend) -> None:
    pending = {"state": KeyState.PENDING_DELETION, "pending_window_days": 7}
    add_key(backend, "past", deletion_date=T0 - 1, **pending)
    add_key(backend, "exactly-now", deletion_date=T0, **pending)
    add_key(backend, "future", deletion_date=T0 + 1, **pending)
    add_key(backend, "enabled-with-stale-date", deletion_date=T0 - 1)
    add_key(backend, "enabled")
    with backend.engine.connect() as conn:
        assert sorted(kms_repo.due_deletions(conn, T0)) == ["exactly-now", "past"]
        assert kms_repo.due_deletions(conn, T0 - 10) == []


def test_delete_key_removes_material_aliases_and_tags_only_of_that_key(backend: Backend) -> None:
    add_key(backend, "doomed")
    add_key(backend, "kept")
    with backend.engine.begin() as conn:
        kms_repo.insert_alias(conn, alias_row("alias/doomed-1", "doomed"))
        kms_repo.insert_alias(conn, alias_row("alias/doomed-2", "doomed"))
        kms_repo.insert_alias(conn, alias_row("alias/kept", "kept"))
        kms_repo.put_tags(conn, "doomed", {"a": "1", "b": "2"})
        kms_repo.put_tags(conn, "kept", {"a": "1"})
    with backend.engine.begin() as conn:
        kms_repo.delete_key(conn, "doomed")
    with backend.engine.connect() as conn:
        assert kms_repo.get_key(conn, "doomed") is None
        assert kms_repo.get_material(conn, "doomed", 1) is None
        assert kms_repo.count_aliases(conn, "doomed") == 0
        assert kms_repo.list_tags(conn, "doomed") == []
        assert kms_repo.get_key(conn, "kept") is not None
        assert kms_repo.get_material(conn, "kept", 1) == material("kept")
        assert [
            a.alias_name for a in kms_repo.list_aliases(conn, ACCOUNT, REGION, None, None, 9)
        ] == ["alias/kept"]
        assert kms_repo.list_tags(conn, "kept") == [("a", "1")]
    assert count(backend, key_materials) == 1
