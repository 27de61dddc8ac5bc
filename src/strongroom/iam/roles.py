"""Roles, inline identity policies and role sessions of the local identity store.

Policy documents are validated when stored (the policy engine's grammar); a malformed one is
refused with the reason, never stored. Role sessions are what AssumeRole hands out: an
``ASIA...`` access key, a secret and a session token, of which only a hash is kept.
"""

from __future__ import annotations

import base64
import hashlib
import re
import string
from dataclasses import dataclass

from sqlalchemy import Engine

from strongroom.clock import Clock
from strongroom.crypto import rng
from strongroom.iam.identities import SESSION_KEY_PREFIX, IdentityError, IdentityStore
from strongroom.iam.policy import PolicyError, parse_policy
from strongroom.rootkey import RootKey
from strongroom.storage import iam_repo
from strongroom.storage import identity_repo as users_repo
from strongroom.storage.engine import ChangeMonitor, write_transaction

__all__ = ["RoleStore", "SessionCredentials"]

_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}")
_KEY_CHARS = string.ascii_uppercase + "234567"
_SECRET_CHARS = string.ascii_letters + string.digits + "+/"
MAX_INLINE_POLICY = 10_240


@dataclass(frozen=True, slots=True)
class SessionCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: float


class RoleStore:
    """Roles, inline policies and sessions, over the same database as the identity store."""

    def __init__(
        self,
        engine: Engine,
        root: RootKey,
        clock: Clock,
        identities: IdentityStore,
        monitor: ChangeMonitor | None = None,
    ) -> None:
        self._engine = engine
        self._monitor = monitor
        self._generation = -1
        self._root = root
        self._clock = clock
        self._identities = identities
        self._policy_cache: dict[tuple[str, str], tuple[str, ...]] = {}

    # -- roles ----------------------------------------------------------------------------------

    def create_role(
        self, account_id: str, name: str, trust_policy: str, max_session_duration: int = 3600
    ) -> iam_repo.RoleRow:
        IdentityStore.check_account(account_id)
        _check_name(name, "role name")
        _check_document(trust_policy, "trust")
        if not 3600 <= max_session_duration <= 43_200:
            raise IdentityError("max session duration must be 3600-43200 seconds")
        row = iam_repo.RoleRow(
            account_id,
            name,
            "AROA" + _random(_KEY_CHARS, 17),
            trust_policy,
            max_session_duration,
            self._clock.now(),
        )
        with write_transaction(self._engine) as conn:
            if iam_repo.get_role(conn, account_id, name) is not None:
                raise IdentityError(f"role {name} already exists in account {account_id}")
            iam_repo.insert_role(conn, row)
        return row

    def get_role(self, account_id: str, name: str) -> iam_repo.RoleRow | None:
        with self._engine.connect() as conn:
            return iam_repo.get_role(conn, account_id, name)

    def list_roles(self, account_id: str) -> list[iam_repo.RoleRow]:
        with self._engine.connect() as conn:
            return iam_repo.list_roles(conn, account_id)

    def delete_role(self, account_id: str, name: str) -> None:
        with write_transaction(self._engine) as conn:
            if iam_repo.get_role(conn, account_id, name) is None:
                raise IdentityError(f"no role {name} in account {account_id}")
            iam_repo.delete_role(conn, account_id, name)
        self.invalidate()

    # -- inline policies ------------------------------------------------------------------------

    def put_policy(self, kind: str, account_id: str, owner: str, name: str, document: str) -> None:
        """Create or replace an inline policy of a user (``kind="user"``) or a role."""
        if not _POLICY_NAME.fullmatch(name):
            raise IdentityError(f"policy name must be 1-128 of letters, digits, +=,.@_-: {name!r}")
        if len(document) > MAX_INLINE_POLICY:
            raise IdentityError(f"an inline policy is limited to {MAX_INLINE_POLICY} characters")
        _check_document(document, "identity")
        with write_transaction(self._engine) as conn:
            self._require_owner(conn, kind, account_id, owner)
            iam_repo.put_policy(conn, kind, account_id, owner, name, document)
        self.invalidate()

    def delete_policy(self, kind: str, account_id: str, owner: str, name: str) -> None:
        with write_transaction(self._engine) as conn:
            if iam_repo.delete_policy(conn, kind, account_id, owner, name) == 0:
                raise IdentityError(f"no policy {name} on {kind} {owner}")
        self.invalidate()

    def get_policy(self, kind: str, account_id: str, owner: str, name: str) -> str:
        with self._engine.connect() as conn:
            doc = iam_repo.get_policy(conn, kind, account_id, owner, name)
        if doc is None:
            raise IdentityError(f"no policy {name} on {kind} {owner}")
        return doc

    def list_policies(self, kind: str, account_id: str, owner: str) -> list[str]:
        with self._engine.connect() as conn:
            self._require_owner(conn, kind, account_id, owner)
            return iam_repo.list_policies(conn, kind, account_id, owner)

    def documents(self, kind: str, account_id: str, owner: str) -> tuple[str, ...]:
        """Every inline policy document of a user or role (cached until a change)."""
        if self._monitor is not None:
            generation = self._monitor.generation()
            if generation != self._generation:
                self._policy_cache.clear()
                self._generation = generation
        key = (kind, f"{account_id}/{owner}")
        found = self._policy_cache.get(key)
        if found is None:
            with self._engine.connect() as conn:
                found = tuple(iam_repo.policy_documents(conn, kind, account_id, owner))
            self._policy_cache[key] = found
        return found

    def user_exists(self, account_id: str, name: str) -> bool:
        with self._engine.connect() as conn:
            return users_repo.get_user(conn, account_id, name) is not None

    def invalidate(self) -> None:
        self._policy_cache.clear()
        self._identities.invalidate()

    def _require_owner(self, conn: object, kind: str, account_id: str, owner: str) -> None:
        from sqlalchemy import Connection

        assert isinstance(conn, Connection)
        exists = (
            users_repo.get_user(conn, account_id, owner)
            if kind == "user"
            else iam_repo.get_role(conn, account_id, owner)
        )
        if exists is None:
            raise IdentityError(f"no {kind} {owner} in account {account_id}")

    # -- sessions -------------------------------------------------------------------------------

    def create_session(
        self,
        role: iam_repo.RoleRow,
        session_name: str,
        duration: int,
        source_identity: str,
        extra: iam_repo.SessionAttributes | None = None,
    ) -> SessionCredentials:
        akid = SESSION_KEY_PREFIX + _random(_KEY_CHARS, 16)
        secret = _random(_SECRET_CHARS, 40)
        token = base64.b64encode(rng.random_bytes(96)).decode("ascii")
        expiration = round(self._clock.now() + duration, 0)
        row = iam_repo.SessionRow(
            akid,
            role.account_id,
            role.role_name,
            session_name,
            self._root.wrap(secret.encode("ascii"), f"iam-access-key:{akid}"),
            hashlib.sha256(token.encode("ascii")).hexdigest(),
            expiration,
            source_identity,
        )
        with write_transaction(self._engine) as conn:
            iam_repo.expire_sessions(conn, self._clock.now() - 86_400)
            iam_repo.insert_session(conn, row)
            if extra:
                iam_repo.insert_session_attributes(conn, akid, extra)
        return SessionCredentials(akid, secret, token, expiration)


def _check_name(name: str, what: str) -> None:
    if not _NAME.fullmatch(name):
        raise IdentityError(f"{what} must be 1-64 of letters, digits and +=,.@_-: {name!r}")


def _check_document(document: str, kind: str) -> None:
    try:
        parse_policy(document, kind=kind)  # type: ignore[arg-type]
    except PolicyError as exc:
        raise IdentityError(f"malformed policy document: {exc}") from exc


def _random(alphabet: str, length: int) -> str:
    return rng.choice_string(alphabet, length)
