"""Identity repositories: IAM users and their access keys (secrets stored wrapped)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select

from strongroom.storage.schema import access_keys, users

__all__ = [
    "AccessKeyRow",
    "UserRow",
    "delete_access_key",
    "delete_user",
    "get_access_key",
    "get_user",
    "insert_access_key",
    "insert_user",
    "list_access_keys",
    "list_users",
]


@dataclass(frozen=True, slots=True)
class UserRow:
    account_id: str
    user_name: str
    user_id: str
    created: float


@dataclass(frozen=True, slots=True)
class AccessKeyRow:
    access_key_id: str
    account_id: str
    user_name: str
    secret_wrapped: bytes
    status: str
    created: float


def _user(row: Any) -> UserRow:
    return UserRow(row.account_id, row.user_name, row.user_id, row.created)


def _key(row: Any) -> AccessKeyRow:
    return AccessKeyRow(
        row.access_key_id,
        row.account_id,
        row.user_name,
        row.secret_wrapped,
        row.status,
        row.created,
    )


def insert_user(conn: Connection, row: UserRow) -> None:
    conn.execute(
        insert(users).values(
            account_id=row.account_id,
            user_name=row.user_name,
            user_id=row.user_id,
            created=row.created,
        )
    )


def get_user(conn: Connection, account_id: str, user_name: str) -> UserRow | None:
    row = conn.execute(
        select(users).where(and_(users.c.account_id == account_id, users.c.user_name == user_name))
    ).first()
    return None if row is None else _user(row)


def list_users(conn: Connection, account_id: str) -> list[UserRow]:
    rows = conn.execute(
        select(users).where(users.c.account_id == account_id).order_by(users.c.user_name)
    ).all()
    return [_user(r) for r in rows]


def delete_user(conn: Connection, account_id: str, user_name: str) -> None:
    conn.execute(
        delete(users).where(and_(users.c.account_id == account_id, users.c.user_name == user_name))
    )


def insert_access_key(conn: Connection, row: AccessKeyRow) -> None:
    conn.execute(
        insert(access_keys).values(
            access_key_id=row.access_key_id,
            account_id=row.account_id,
            user_name=row.user_name,
            secret_wrapped=row.secret_wrapped,
            status=row.status,
            created=row.created,
        )
    )


def get_access_key(conn: Connection, access_key_id: str) -> AccessKeyRow | None:
    row = conn.execute(
        select(access_keys).where(access_keys.c.access_key_id == access_key_id)
    ).first()
    return None if row is None else _key(row)


def list_access_keys(
    conn: Connection, account_id: str, user_name: str | None
) -> list[AccessKeyRow]:
    cond = access_keys.c.account_id == account_id
    if user_name is not None:
        cond = and_(cond, access_keys.c.user_name == user_name)
    rows = conn.execute(select(access_keys).where(cond).order_by(access_keys.c.created)).all()
    return [_key(r) for r in rows]


def delete_access_key(conn: Connection, account_id: str, access_key_id: str) -> int:
    """Delete one access key of an account; returns the number of rows removed."""
    result = conn.execute(
        delete(access_keys).where(
            and_(
                access_keys.c.account_id == account_id, access_keys.c.access_key_id == access_key_id
            )
        )
    )
    return int(result.rowcount)
