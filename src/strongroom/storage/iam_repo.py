"""IAM roles, inline identity policies and STS sessions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select

from strongroom.storage.schema import (
    role_policies,
    roles,
    session_attributes,
    sessions,
    user_policies,
)

__all__ = [
    "RoleRow",
    "SessionAttributes",
    "SessionRow",
    "delete_policy",
    "delete_role",
    "expire_sessions",
    "get_policy",
    "get_role",
    "get_session",
    "get_session_attributes",
    "insert_role",
    "insert_session",
    "insert_session_attributes",
    "list_policies",
    "list_roles",
    "policy_documents",
    "put_policy",
]


@dataclass(frozen=True, slots=True)
class RoleRow:
    account_id: str
    role_name: str
    role_id: str
    trust_policy: str
    max_session_duration: int
    created: float


@dataclass(frozen=True, slots=True)
class SessionRow:
    access_key_id: str
    account_id: str
    role_name: str
    session_name: str
    secret_wrapped: bytes
    token_hash: str
    expiration: float
    source_identity: str


def _role(row: Any) -> RoleRow:
    return RoleRow(
        row.account_id,
        row.role_name,
        row.role_id,
        row.trust_policy,
        row.max_session_duration,
        row.created,
    )


def insert_role(conn: Connection, row: RoleRow) -> None:
    conn.execute(insert(roles).values(**_role_values(row)))


def _role_values(row: RoleRow) -> dict[str, Any]:
    return {
        "account_id": row.account_id,
        "role_name": row.role_name,
        "role_id": row.role_id,
        "trust_policy": row.trust_policy,
        "max_session_duration": row.max_session_duration,
        "created": row.created,
    }


def get_role(conn: Connection, account_id: str, role_name: str) -> RoleRow | None:
    row = conn.execute(
        select(roles).where(and_(roles.c.account_id == account_id, roles.c.role_name == role_name))
    ).first()
    return None if row is None else _role(row)


def list_roles(conn: Connection, account_id: str) -> list[RoleRow]:
    rows = conn.execute(
        select(roles).where(roles.c.account_id == account_id).order_by(roles.c.role_name)
    ).all()
    return [_role(r) for r in rows]


def delete_role(conn: Connection, account_id: str, role_name: str) -> None:
    conn.execute(
        delete(role_policies).where(
            and_(role_policies.c.account_id == account_id, role_policies.c.role_name == role_name)
        )
    )
    conn.execute(
        delete(roles).where(and_(roles.c.account_id == account_id, roles.c.role_name == role_name))
    )


def _policy_table(kind: str) -> tuple[Any, Any]:
    if kind == "user":
        return user_policies, user_policies.c.user_name
    return role_policies, role_policies.c.role_name


def put_policy(
    conn: Connection, kind: str, account_id: str, owner: str, name: str, document: str
) -> None:
    """Create or replace an inline policy of a user (``kind="user"``) or role."""
    delete_policy(conn, kind, account_id, owner, name)
    table, owner_col = _policy_table(kind)
    conn.execute(
        insert(table).values(
            {
                "account_id": account_id,
                owner_col.name: owner,
                "policy_name": name,
                "document": document,
            }
        )
    )


def delete_policy(conn: Connection, kind: str, account_id: str, owner: str, name: str) -> int:
    table, owner_col = _policy_table(kind)
    result = conn.execute(
        delete(table).where(
            and_(table.c.account_id == account_id, owner_col == owner, table.c.policy_name == name)
        )
    )
    return int(result.rowcount)


def get_policy(conn: Connection, kind: str, account_id: str, owner: str, name: str) -> str | None:
    table, owner_col = _policy_table(kind)
    return conn.execute(
        select(table.c.document).where(
            and_(table.c.account_id == account_id, owner_col == owner, table.c.policy_name == name)
        )
    ).scalar_one_or_none()


def list_policies(conn: Connection, kind: str, account_id: str, owner: str) -> list[str]:
    table, owner_col = _policy_table(kind)
    return list(
        conn.execute(
            select(table.c.policy_name)
            .where(and_(table.c.account_id == account_id, owner_col == owner))
            .order_by(table.c.policy_name)
        ).scalars()
    )


def policy_documents(conn: Connection, kind: str, account_id: str, owner: str) -> list[str]:
    table, owner_col = _policy_table(kind)
    return list(
        conn.execute(
            select(table.c.document)
            .where(and_(table.c.account_id == account_id, owner_col == owner))
            .order_by(table.c.policy_name)
        ).scalars()
    )


def insert_session(conn: Connection, row: SessionRow) -> None:
    conn.execute(
        insert(sessions).values(
            access_key_id=row.access_key_id,
            account_id=row.account_id,
            role_name=row.role_name,
            session_name=row.session_name,
            secret_wrapped=row.secret_wrapped,
            token_hash=row.token_hash,
            expiration=row.expiration,
            source_identity=row.source_identity,
        )
    )


def get_session(conn: Connection, access_key_id: str) -> SessionRow | None:
    row = conn.execute(select(sessions).where(sessions.c.access_key_id == access_key_id)).first()
    if row is None:
        return None
    return SessionRow(
        row.access_key_id,
        row.account_id,
        row.role_name,
        row.session_name,
        row.secret_wrapped,
        row.token_hash,
        row.expiration,
        row.source_identity,
    )


def expire_sessions(conn: Connection, now: float) -> int:
    """Delete sessions that expired before ``now``, and their attributes."""
    gone = int(conn.execute(delete(sessions).where(sessions.c.expiration < now)).rowcount)
    if gone:
        live = select(sessions.c.access_key_id)
        extra = session_attributes.c.access_key_id
        conn.execute(delete(session_attributes).where(extra.not_in(live)))
    return gone


@dataclass(frozen=True, slots=True)
class SessionAttributes:
    """What AssumeRole gave a session beyond its role."""

    policy: str | None = None
    source_identity: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    transitive_tag_keys: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.policy or self.source_identity or self.tags)


def insert_session_attributes(
    conn: Connection, access_key_id: str, attributes: SessionAttributes
) -> None:
    conn.execute(
        insert(session_attributes).values(
            access_key_id=access_key_id,
            policy=attributes.policy,
            source_identity=attributes.source_identity,
            tags=json.dumps(dict(attributes.tags)) if attributes.tags else None,
            transitive_tag_keys=json.dumps(list(attributes.transitive_tag_keys))
            if attributes.transitive_tag_keys
            else None,
        )
    )


def get_session_attributes(conn: Connection, access_key_id: str) -> SessionAttributes:
    """A session's attributes (all empty for a session given none)."""
    row = conn.execute(
        select(session_attributes).where(session_attributes.c.access_key_id == access_key_id)
    ).first()
    if row is None:
        return SessionAttributes()
    tags = json.loads(row.tags) if row.tags else {}
    keys = json.loads(row.transitive_tag_keys) if row.transitive_tag_keys else []
    return SessionAttributes(
        row.policy, row.source_identity, tuple(sorted(tags.items())), tuple(keys)
    )
