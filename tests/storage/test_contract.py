"""The storage contract: every backend (SQLite, PostgreSQL, faulty SQLite) behaves the same.

Each test runs once per backend through the ``backend`` fixture (``tests/storage/conftest.py``)
and talks to the repositories exactly as the service does: one connection per transaction.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Table, delete, func, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from strongroom.kms.domain.keys import KeyRecord
from strongroom.kms.domain.states import KeyState
from strongroom.storage import grant_repo, identity_repo, kms_repo, lifecycle_repo, lifecycle_schema
from strongroom.storage.migrations import MIGRATIONS, apply_migrations, current_version
from strongroom.storage.schema import (
    access_keys,
    aliases,
    grants,
    key_materials,
    keys,
    metadata,
    schema_migrations,
    tags,
)
from tests.storage.conftest import T0, Backend

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "us-east-1"
LATEST = max(number for number, _, _ in MIGRATIONS)


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


# -- aliases ------------------------------------------------------------------------------------


def test_alias_insert_get_count_update_delete(backend: Backend) -> None:
    add_key(backend, "k-1")
    add_key(backend, "k-2")
    with backend.engine.begin() as conn:
        kms_repo.insert_alias(conn, alias_row("alias/app", "k-1", T0))
        kms_repo.insert_alias(conn, alias_row("alias/app", "k-2", T0, region="eu-west-1"))
    with backend.engine.connect() as conn:
        assert kms_repo.get_alias(conn, ACCOUNT, REGION, "alias/app") == alias_row(
            "alias/app", "k-1"
        )
        assert kms_repo.get_alias(conn, ACCOUNT, "eu-west-1", "alias/app") == alias_row(
            "alias/app", "k-2", region="eu-west-1"
        )
        assert kms_repo.get_alias(conn, OTHER_ACCOUNT, REGION, "alias/app") is None
        assert kms_repo.count_aliases(conn, "k-1") == 1
        assert kms_repo.count_aliases(conn, "k-2") == 1

    with backend.engine.begin() as conn:
        kms_repo.update_alias(conn, ACCOUNT, REGION, "alias/app", "k-2", T0 + 60)
    with backend.engine.connect() as conn:
        moved = kms_repo.get_alias(conn, ACCOUNT, REGION, "alias/app")
        assert moved == kms_repo.AliasRow(ACCOUNT, REGION, "alias/app", "k-2", T0, T0 + 60)
        assert kms_repo.count_aliases(conn, "k-1") == 0
        assert kms_repo.count_aliases(conn, "k-2") == 2

    with backend.engine.begin() as conn:
        kms_repo.delete_alias(conn, ACCOUNT, REGION, "alias/app")
        kms_repo.delete_alias(conn, ACCOUNT, REGION, "alias/never-existed")
    with backend.engine.connect() as conn:
        assert kms_repo.get_alias(conn, ACCOUNT, REGION, "alias/app") is None
        assert kms_repo.get_alias(conn, ACCOUNT, "eu-west-1", "alias/app") is not None


def test_list_aliases_filters_by_key_and_pages_in_name_order(backend: Backend) -> None:
    add_key(backend, "k-1")
    add_key(backend, "k-2")
    names_1 = ["alias/c", "alias/a", "alias/e", "alias/b/nested"]
    names_2 = ["alias/d", "alias/b"]
    with backend.engine.begin() as conn:
        for name in names_1:
            kms_repo.insert_alias(conn, alias_row(name, "k-1"))
        for name in names_2:
            kms_repo.insert_alias(conn, alias_row(name, "k-2"))
        kms_repo.insert_alias(conn, alias_row("alias/0-elsewhere", "k-1", region="eu-west-1"))

    def names(key_id: str | None, after: str | None, limit: int) -> list[str]:
        with backend.engine.connect() as conn:
            rows = kms_repo.list_aliases(conn, ACCOUNT, REGION, key_id, after, limit)
        return [r.alias_name for r in rows]

    assert names(None, None, 100) == sorted(names_1 + names_2)
    assert names("k-1", None, 100) == sorted(names_1)
    assert names("k-2", None, 100) == ["alias/b", "alias/d"]
    assert names(None, None, 3) == ["alias/a", "alias/b", "alias/b/nested"]
    assert names(None, "alias/b/nested", 3) == ["alias/c", "alias/d", "alias/e"]
    assert names("k-1", "alias/a", 2) == ["alias/b/nested", "alias/c"]
    assert names(None, "alias/e", 3) == []


def test_alias_must_target_an_existing_key(backend: Backend) -> None:
    with pytest.raises(IntegrityError), backend.engine.begin() as conn:
        kms_repo.insert_alias(conn, alias_row("alias/dangling", "no-such-key"))
    assert count(backend, aliases) == 0


def test_duplicate_alias_raises_integrity_error_and_the_transaction_leaves_nothing(
    backend: Backend,
) -> None:
    add_key(backend, "k-1")
    with backend.engine.begin() as conn:
        kms_repo.insert_alias(conn, alias_row("alias/taken", "k-1"))

    with pytest.raises(IntegrityError), backend.engine.begin() as conn:
        kms_repo.insert_key(conn, key_record("k-new"), material("k-new"))
        kms_repo.put_tags(conn, "k-new", {"t": "v"})
        kms_repo.insert_alias(conn, alias_row("alias/fresh", "k-new"))
        kms_repo.insert_alias(conn, alias_row("alias/taken", "k-new", T0 + 5))

    with backend.engine.connect() as conn:
        assert kms_repo.get_key(conn, "k-new") is None
        assert kms_repo.get_material(conn, "k-new", 1) is None
        assert kms_repo.list_tags(conn, "k-new") == []
        assert kms_repo.get_alias(conn, ACCOUNT, REGION, "alias/fresh") is None
        assert kms_repo.get_alias(conn, ACCOUNT, REGION, "alias/taken") == alias_row(
            "alias/taken", "k-1"
        )
    assert (count(backend, keys), count(backend, key_materials), count(backend, tags)) == (1, 1, 0)


def test_duplicate_key_id_and_material_version_are_refused(backend: Backend) -> None:
    add_key(backend, "k-1")
    with pytest.raises(IntegrityError), backend.engine.begin() as conn:
        kms_repo.insert_key(conn, key_record("k-1", description="again"), None)
    with pytest.raises(IntegrityError), backend.engine.begin() as conn:
        conn.execute(
            insert(key_materials).values(
                key_id="k-1", version=1, material_wrapped=b"other", created=T0
            )
        )
    with backend.engine.connect() as conn:
        assert kms_repo.get_key(conn, "k-1") == key_record("k-1")
        assert kms_repo.get_material(conn, "k-1", 1) == material("k-1")


# -- tags ---------------------------------------------------------------------------------------


def test_tags_put_overwrites_and_delete_ignores_absent(backend: Backend) -> None:
    add_key(backend, "k-1")
    add_key(backend, "k-2")
    with backend.engine.begin() as conn:
        kms_repo.put_tags(conn, "k-1", {"b": "2", "a": "1", "c": "3"})
        kms_repo.put_tags(conn, "k-2", {"a": "other key"})
        kms_repo.put_tags(conn, "k-1", {})
    with backend.engine.begin() as conn:
        kms_repo.put_tags(conn, "k-1", {"a": "one", "d": ""})
    with backend.engine.connect() as conn:
        assert kms_repo.list_tags(conn, "k-1") == [("a", "one"), ("b", "2"), ("c", "3"), ("d", "")]

    with backend.engine.begin() as conn:
        kms_repo.delete_tags(conn, "k-1", ["b", "never-set"])
        kms_repo.delete_tags(conn, "k-1", [])
    with backend.engine.connect() as conn:
        assert kms_repo.list_tags(conn, "k-1") == [("a", "one"), ("c", "3"), ("d", "")]
        assert kms_repo.list_tags(conn, "k-2") == [("a", "other key")]


def test_values_at_their_documented_maximum_lengths_round_trip(backend: Backend) -> None:
    """AWS allows 256-character alias names, 128-character tag keys, 256-character values."""
    add_key(backend, "k-1", description="d" * 8192)
    alias_name = "alias/" + "n" * 250
    tag_key, tag_value = "ké" * 64, "vé" * 128
    with backend.engine.begin() as conn:
        kms_repo.insert_alias(conn, alias_row(alias_name, "k-1"))
        kms_repo.put_tags(conn, "k-1", {tag_key: tag_value})
    with backend.engine.connect() as conn:
        assert kms_repo.get_alias(conn, ACCOUNT, REGION, alias_name) is not None
        assert kms_repo.list_tags(conn, "k-1") == [(tag_key, tag_value)]
        rec = kms_repo.get_key(conn, "k-1")
        assert rec is not None and rec.description == "d" * 8192


# -- identities ---------------------------------------------------------------------------------


def test_users_insert_get_list_delete(backend: Backend) -> None:
    rows = [
        identity_repo.UserRow(ACCOUNT, "zoe", "AIDAZOE", T0),
        identity_repo.UserRow(ACCOUNT, "admin", "AIDAADMIN", T0 + 1),
        identity_repo.UserRow(OTHER_ACCOUNT, "admin", "AIDAOTHER", T0 + 2),
    ]
    with backend.engine.begin() as conn:
        for row in rows:
            identity_repo.insert_user(conn, row)
    with backend.engine.connect() as conn:
        assert identity_repo.get_user(conn, ACCOUNT, "zoe") == rows[0]
        assert identity_repo.get_user(conn, OTHER_ACCOUNT, "zoe") is None
        assert identity_repo.list_users(conn, ACCOUNT) == [rows[1], rows[0]]
        assert identity_repo.list_users(conn, OTHER_ACCOUNT) == [rows[2]]

    with pytest.raises(IntegrityError), backend.engine.begin() as conn:
        identity_repo.insert_user(conn, identity_repo.UserRow(ACCOUNT, "zoe", "AIDANEW", T0))
    with pytest.raises(IntegrityError), backend.engine.begin() as conn:
        identity_repo.insert_user(conn, identity_repo.UserRow(ACCOUNT, "sam", "AIDAZOE", T0))

    with backend.engine.begin() as conn:
        identity_repo.delete_user(conn, ACCOUNT, "zoe")
    with backend.engine.connect() as conn:
        assert identity_repo.get_user(conn, ACCOUNT, "zoe") is None
        assert identity_repo.list_users(conn, ACCOUNT) == [rows[1]]


def test_access_keys_insert_get_list_delete(backend: Backend) -> None:
    def row(
        akid: str, user: str, when: float, account: str = ACCOUNT
    ) -> identity_repo.AccessKeyRow:
        return identity_repo.AccessKeyRow(
            akid, account, user, b"\x00wrapped\xff" + akid.encode(), "Active", when
        )

    made = [
        row("AKIA2", "alice", T0 + 2),
        row("AKIA1", "alice", T0 + 1),
        row("AKIA3", "bob", T0 + 3),
        row("AKIA4", "alice", T0 + 4, OTHER_ACCOUNT),
    ]
    with backend.engine.begin() as conn:
        for item in made:
            identity_repo.insert_access_key(conn, item)
    with backend.engine.connect() as conn:
        assert identity_repo.get_access_key(conn, "AKIA2") == made[0]
        assert identity_repo.get_access_key(conn, "AKIA-absent") is None
        assert identity_repo.list_access_keys(conn, ACCOUNT, "alice") == [made[1], made[0]]
        assert identity_repo.list_access_keys(conn, ACCOUNT, None) == [made[1], made[0], made[2]]

    with pytest.raises(IntegrityError), backend.engine.begin() as conn:
        identity_repo.insert_access_key(conn, row("AKIA1", "bob", T0))

    with backend.engine.begin() as conn:
        assert identity_repo.delete_access_key(conn, OTHER_ACCOUNT, "AKIA1") == 0
        assert identity_repo.delete_access_key(conn, ACCOUNT, "AKIA1") == 1
        assert identity_repo.delete_access_key(conn, ACCOUNT, "AKIA1") == 0
    with backend.engine.connect() as conn:
        assert identity_repo.get_access_key(conn, "AKIA1") is None
        assert identity_repo.list_access_keys(conn, ACCOUNT, "alice") == [made[0]]
    assert count(backend, access_keys) == 3


# -- failure mid-transaction ----------------------------------------------------------------------


def test_a_failure_mid_transaction_leaves_nothing(backend: Backend) -> None:
    """On the faulty backend the driver fails the tag insert; elsewhere the caller raises there."""
    add_key(backend, "k-old")

    def write(conn: Connection) -> None:
        kms_repo.insert_key(conn, key_record("k-new"), material("k-new"))
        kms_repo.insert_alias(conn, alias_row("alias/new", "k-new"))
        kms_repo.put_tags(conn, "k-old", {"touched": "yes"})
        kms_repo.put_tags(conn, "k-new", {"t": "v"})

    if backend.faults is not None:
        backend.faults.fail_on(r"^INSERT INTO kms_tags", nth=2)
        with (
            pytest.raises(OperationalError, match="injected fault"),
            backend.engine.begin() as conn,
        ):
            write(conn)
        assert backend.faults.fired
    else:
        with pytest.raises(RuntimeError, match="boom"), backend.engine.begin() as conn:
            write(conn)
            raise RuntimeError("boom")

    with backend.engine.connect() as conn:
        assert kms_repo.get_key(conn, "k-new") is None
        assert kms_repo.get_alias(conn, ACCOUNT, REGION, "alias/new") is None
        assert kms_repo.list_tags(conn, "k-old") == []
    assert (count(backend, keys), count(backend, key_materials)) == (1, 1)
    assert (count(backend, aliases), count(backend, tags)) == (0, 0)


def test_import_tokens_are_per_region_and_migration_9_carries_them_over(
    backend: Backend,
) -> None:
    west = "eu-west-1"
    add_key(backend, "k-1")
    add_key(backend, "k-2", region=west)
    with backend.engine.begin() as conn:
        lifecycle_repo.set_import_token(conn, "k-1", REGION, "a" * 32)
        lifecycle_repo.set_import_token(conn, "k-1", west, "b" * 32)  # a replica's own
        lifecycle_repo.set_import_token(conn, "k-1", REGION, "c" * 32)  # a newer one
    with backend.engine.connect() as conn:
        assert lifecycle_repo.get_import_token(conn, "k-1", REGION) == "c" * 32
        assert lifecycle_repo.get_import_token(conn, "k-1", west) == "b" * 32
        assert lifecycle_repo.get_import_token(conn, "k-2", west) is None
    # a token of the former per-key table goes to its key's region
    with backend.engine.begin() as conn:
        conn.execute(delete(lifecycle_schema.regional_import_tokens))
        conn.execute(insert(lifecycle_schema.import_tokens).values(key_id="k-2", token_id="d" * 32))
        lifecycle_schema.migrate_regional_import_tokens(conn)
    with backend.engine.connect() as conn:
        assert lifecycle_repo.get_import_token(conn, "k-2", west) == "d" * 32
        assert lifecycle_repo.get_import_token(conn, "k-1", REGION) is None


def _grant(grant_id: str, key_id: str, region: str) -> grant_repo.GrantRow:
    return grant_repo.GrantRow(
        grant_id, key_id, None, "arn:aws:iam::111122223333:user/u", None, ACCOUNT,
        ("Encrypt",), None, T0, region,
    )  # fmt: skip


def test_grants_are_per_region_and_migration_10_fills_in_regions(backend: Backend) -> None:
    west = "eu-west-1"
    add_key(backend, "k-1", multi_region=True)
    add_key(backend, "k-2", region=west)
    with backend.engine.begin() as conn:
        grant_repo.insert_grant(conn, _grant("g-east", "k-1", REGION))
        grant_repo.insert_grant(conn, _grant("g-west", "k-1", west))
    with backend.engine.connect() as conn:
        assert [g.grant_id for g in grant_repo.list_grants(conn, "k-1", west)] == ["g-west"]
        assert grant_repo.count_grants(conn, "k-1", REGION) == 1
    with backend.engine.begin() as conn:  # the replica in eu-west-1 goes, with its grants
        grant_repo.delete_region_grants(conn, "k-1", west)
    with backend.engine.connect() as conn:
        assert grant_repo.list_grants(conn, "k-1", west) == []
        assert [g.grant_id for g in grant_repo.list_grants(conn, "k-1", REGION)] == ["g-east"]
    # a grant from before migration 10 (no region) gets its key's region
    with backend.engine.begin() as conn:
        grant_repo.insert_grant(conn, _grant("g-old", "k-2", west))
        conn.execute(update(grants).where(grants.c.grant_id == "g-old").values(region=None))
        grant_repo.migrate_regions(conn)
    with backend.engine.connect() as conn:
        assert [g.grant_id for g in grant_repo.list_grants(conn, "k-2", west)] == ["g-old"]
