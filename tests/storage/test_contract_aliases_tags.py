"""The storage contract for aliases and tags: every backend (SQLite, PostgreSQL, faulty SQLite)
behaves the same.

Aliases are inserted, read, counted, updated, deleted and listed (by key, paged in name order),
must target an existing key, and duplicates (aliases, key ids, material versions) are refused
leaving nothing; tags are put, overwritten and deleted; values at their documented maximum
lengths round-trip.

Each test runs once per backend through the ``backend`` fixture (``tests/storage/conftest.py``)
and talks to the repositories exactly as the service does: one connection per transaction; the
helpers are in :mod:`tests.storage.contract_support`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from strongroom.storage import kms_repo
from strongroom.storage.schema import aliases, key_materials, keys, tags
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
