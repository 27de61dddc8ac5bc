"""The local identity store: IAM-style users and access keys, per account.

Access-key secrets are kept wrapped by the root key; the signature verifier looks them up
through :meth:`IdentityStore.lookup_secret`, which caches unwrapped secrets in memory and drops
the cache whenever the database may have changed (another process created or deleted a key).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import string
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from strongroom.clock import Clock
from strongroom.crypto import rng
from strongroom.errors import AwsError
from strongroom.iam.principal import Principal
from strongroom.rootkey import RootKey
from strongroom.storage import iam_repo
from strongroom.storage import identity_repo as repo
from strongroom.storage.engine import ChangeMonitor, write_transaction

__all__ = [
    "INVALID_TOKEN",
    "SESSION_KEY_PREFIX",
    "AccessKeyPair",
    "IdentityError",
    "IdentityStore",
    "Principal",
]

INVALID_TOKEN = "The security token included in the request is invalid."
SESSION_KEY_PREFIX = "ASIA"

_USER_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_ACCOUNT = re.compile(r"\d{12}")
_KEY_CHARS = string.ascii_uppercase + "234567"
_SECRET_CHARS = string.ascii_letters + string.digits + "+/"


class IdentityError(Exception):
    """A refused identity-store request (bad name, unknown user, conflict)."""


@dataclass(frozen=True, slots=True)
class AccessKeyPair:
    account_id: str
    user_name: str
    access_key_id: str
    secret_access_key: str
    status: str
    created: float


def _purpose(access_key_id: str) -> str:
    return f"iam-access-key:{access_key_id}"


class IdentityStore:
    """Users and access keys over the database, with a coherent in-memory secret cache."""

    def __init__(
        self, engine: Engine, root: RootKey, clock: Clock, monitor: ChangeMonitor | None = None
    ) -> None:
        self._engine = engine
        self._root = root
        self._clock = clock
        self._monitor = monitor
        self._generation = -1
        self._cache: dict[str, _Credential | None] = {}

    @staticmethod
    def check_account(account_id: str) -> None:
        if not _ACCOUNT.fullmatch(account_id):
            raise IdentityError(f"account id must be 12 digits: {account_id!r}")

    def create_user(self, account_id: str, user_name: str) -> repo.UserRow:
        self.check_account(account_id)
        if not _USER_NAME.fullmatch(user_name):
            raise IdentityError(
                f"user name must be 1-64 characters of letters, digits and +=,.@_-: {user_name!r}"
            )
        row = repo.UserRow(
            account_id, user_name, "AIDA" + _random(_KEY_CHARS, 17), self._clock.now()
        )
        with write_transaction(self._engine) as conn:
            if repo.get_user(conn, account_id, user_name) is not None:
                raise IdentityError(f"user {user_name} already exists in account {account_id}")
            repo.insert_user(conn, row)
        return row

    def list_users(self, account_id: str) -> list[repo.UserRow]:
        with self._engine.connect() as conn:
            return repo.list_users(conn, account_id)

    def delete_user(self, account_id: str, user_name: str) -> None:
        with write_transaction(self._engine) as conn:
            if repo.get_user(conn, account_id, user_name) is None:
                raise IdentityError(f"no user {user_name} in account {account_id}")
            if repo.list_access_keys(conn, account_id, user_name):
                raise IdentityError(f"user {user_name} still has access keys; delete them first")
            for name in iam_repo.list_policies(conn, "user", account_id, user_name):
                iam_repo.delete_policy(conn, "user", account_id, user_name, name)
            repo.delete_user(conn, account_id, user_name)
        self.invalidate()

    def create_access_key(self, account_id: str, user_name: str) -> AccessKeyPair:
        akid = "AKIA" + _random(_KEY_CHARS, 16)
        secret = _random(_SECRET_CHARS, 40)
        now = self._clock.now()
        wrapped = self._root.wrap(secret.encode("ascii"), _purpose(akid))
        with write_transaction(self._engine) as conn:
            if repo.get_user(conn, account_id, user_name) is None:
                raise IdentityError(f"no user {user_name} in account {account_id}")
            repo.insert_access_key(
                conn, repo.AccessKeyRow(akid, account_id, user_name, wrapped, "Active", now)
            )
        return AccessKeyPair(account_id, user_name, akid, secret, "Active", now)

    def list_access_keys(self, account_id: str, user_name: str | None) -> list[repo.AccessKeyRow]:
        with self._engine.connect() as conn:
            return repo.list_access_keys(conn, account_id, user_name)

    def delete_access_key(self, account_id: str, access_key_id: str) -> None:
        with write_transaction(self._engine) as conn:
            if repo.delete_access_key(conn, account_id, access_key_id) == 0:
                raise IdentityError(f"no access key {access_key_id} in account {account_id}")
        self._cache.clear()

    def _resolve(self, access_key_id: str) -> _Credential | None:
        if self._monitor is not None:
            generation = self._monitor.generation()
            if generation != self._generation:
                self.invalidate()
                self._generation = generation
        if access_key_id in self._cache:
            return self._cache[access_key_id]
        with self._engine.connect() as conn:
            if access_key_id.startswith(SESSION_KEY_PREFIX):
                entry = self._session_credential(conn, access_key_id)
            else:
                entry = self._user_credential(conn, access_key_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[access_key_id] = entry
        return entry

    def _user_credential(self, conn: Connection, access_key_id: str) -> _Credential | None:
        row = repo.get_access_key(conn, access_key_id)
        if row is None or row.status != "Active":
            return None
        user = repo.get_user(conn, row.account_id, row.user_name)
        if user is None:
            return None
        secret = self._root.unwrap(row.secret_wrapped, _purpose(access_key_id)).decode("ascii")
        principal = Principal(row.account_id, "User", row.user_name, user.user_id, access_key_id)
        return _Credential(secret, principal, None)

    def _session_credential(self, conn: Connection, access_key_id: str) -> _Credential | None:
        row = iam_repo.get_session(conn, access_key_id)
        if row is None:
            return None
        role = iam_repo.get_role(conn, row.account_id, row.role_name)
        if role is None:
            return None
        secret = self._root.unwrap(row.secret_wrapped, _purpose(access_key_id)).decode("ascii")
        extra = iam_repo.get_session_attributes(conn, access_key_id)
        principal = Principal(
            row.account_id,
            "AssumedRole",
            row.role_name,
            f"{role.role_id}:{row.session_name}",
            access_key_id,
            session_name=row.session_name,
            expiration=row.expiration,
            session_policy=extra.policy,
            source_identity=extra.source_identity,
            session_tags=extra.tags,
            transitive_tag_keys=extra.transitive_tag_keys,
        )
        return _Credential(secret, principal, row.token_hash)

    def invalidate(self) -> None:
        self._cache.clear()

    def lookup_secret(self, access_key_id: str) -> str | None:
        """The secret of an active access key or live session, or None (for SigV4)."""
        entry = self._resolve(access_key_id)
        return None if entry is None else entry.secret

    def principal(self, access_key_id: str) -> Principal | None:
        entry = self._resolve(access_key_id)
        return None if entry is None else entry.principal

    def authenticate(self, access_key_id: str, session_token: str | None) -> Principal:
        """The principal behind a verified signature, with its session token checked."""
        entry = self._resolve(access_key_id)
        if entry is None:
            raise AwsError("UnrecognizedClientException", INVALID_TOKEN)
        if entry.token_hash is None:
            if session_token is not None:
                raise AwsError("UnrecognizedClientException", INVALID_TOKEN)
            return entry.principal
        if session_token is None or not hmac.compare_digest(
            hashlib.sha256(session_token.encode("utf-8")).hexdigest(), entry.token_hash
        ):
            raise AwsError("UnrecognizedClientException", INVALID_TOKEN)
        expiration = entry.principal.expiration
        if expiration is not None and expiration <= self._clock.now():
            raise AwsError(
                "ExpiredTokenException", "The security token included in the request is expired"
            )
        return entry.principal


@dataclass(frozen=True, slots=True)
class _Credential:
    secret: str
    principal: Principal
    token_hash: str | None


def _random(alphabet: str, length: int) -> str:
    return rng.choice_string(alphabet, length)
