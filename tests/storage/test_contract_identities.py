"""The storage contract for identities: every backend (SQLite, PostgreSQL, faulty SQLite)
behaves the same.

IAM users and access keys are inserted, read, listed and deleted.

Each test runs once per backend through the ``backend`` fixture (``tests/storage/conftest.py``)
and talks to the repositories exactly as the service does: one connection per transaction; the
helpers are in :mod:`tests.storage.contract_support`.
"""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from strongroom.storage import identity_repo
from strongroom.storage.schema import access_keys
from tests.storage.conftest import T0, Backend
from tests.storage.contract_support import ACCOUNT, OTHER_ACCOUNT, count

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
