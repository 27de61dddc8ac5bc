"""The storage contract for transactions and per-region rows: every backend (SQLite, PostgreSQL,
faulty SQLite) behaves the same.

A failure mid-transaction leaves nothing; import tokens and grants are per region, and
migrations 9 and 10 carry over the rows of the former per-key tables.

Each test runs once per backend through the ``backend`` fixture (``tests/storage/conftest.py``)
and talks to the repositories exactly as the service does: one connection per transaction; the
helpers are in :mod:`tests.storage.contract_support`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, delete, insert, update
from sqlalchemy.exc import OperationalError

from strongroom.storage import grant_repo, kms_repo, lifecycle_repo, lifecycle_schema
from strongroom.storage.schema import aliases, grants, key_materials, keys, tags
from tests.storage.conftest import T0, Backend
from tests.storage.contract_support import (
    ACCOUNT,
    REGION,
    add_key,
    alias_row,
    count,
    key_record,
    material,
)

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
