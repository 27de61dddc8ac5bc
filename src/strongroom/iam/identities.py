"""The local identity store: IAM-style users and access keys, per account.

Access-key secrets are kept wrapped by the root key; the signature verifier looks them up
through :meth:`IdentityStore.lookup_secret`, which caches unwrapped secrets in memory and drops
the cache whenever the database may have changed (another process created or deleted a key).
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass

from sqlalchemy import Engine

from strongroom.clock import Clock
from strongroom.rootkey import RootKey
from strongroom.storage import identity_repo as repo
from strongroom.storage.engine import ChangeMonitor

__all__ = ["AccessKeyPair", "IdentityError", "IdentityStore", "Principal"]

_USER_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_ACCOUNT = re.compile(r"\d{12}")
_KEY_CHARS = string.ascii_uppercase + "234567"
_SECRET_CHARS = string.ascii_letters + string.digits + "+/"


class IdentityError(Exception):
    """A refused identity-store request (bad name, unknown user, conflict)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller a verified signature stands for."""

    account_id: str
    user_name: str
    access_key_id: str

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:user/{self.user_name}"


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
        self._cache: dict[str, tuple[str, Principal] | None] = {}

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
        with self._engine.begin() as conn:
            if repo.get_user(conn, account_id, user_name) is not None:
                raise IdentityError(f"user {user_name} already exists in account {account_id}")
            repo.insert_user(conn, row)
        return row

    def list_users(self, account_id: str) -> list[repo.UserRow]:
        with self._engine.connect() as conn:
            return repo.list_users(conn, account_id)

    def delete_user(self, account_id: str, user_name: str) -> None:
        with self._engine.begin() as conn:
            if repo.get_user(conn, account_id, user_name) is None:
                raise IdentityError(f"no user {user_name} in account {account_id}")
            if repo.list_access_keys(conn, account_id, user_name):
                raise IdentityError(f"user {user_name} still has access keys; delete them first")
            repo.delete_user(conn, account_id, user_name)
        self._cache.clear()

    def create_access_key(self, account_id: str, user_name: str) -> AccessKeyPair:
        akid = "AKIA" + _random(_KEY_CHARS, 16)
        secret = _random(_SECRET_CHARS, 40)
        now = self._clock.now()
        wrapped = self._root.wrap(secret.encode("ascii"), _purpose(akid))
        with self._engine.begin() as conn:
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
        with self._engine.begin() as conn:
            if repo.delete_access_key(conn, account_id, access_key_id) == 0:
                raise IdentityError(f"no access key {access_key_id} in account {account_id}")
        self._cache.clear()

    def _resolve(self, access_key_id: str) -> tuple[str, Principal] | None:
        if self._monitor is not None and self._monitor.changed():
            self._cache.clear()
        if access_key_id in self._cache:
            return self._cache[access_key_id]
        with self._engine.connect() as conn:
            row = repo.get_access_key(conn, access_key_id)
        entry = None
        if row is not None and row.status == "Active":
            secret = self._root.unwrap(row.secret_wrapped, _purpose(access_key_id)).decode("ascii")
            entry = (secret, Principal(row.account_id, row.user_name, access_key_id))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[access_key_id] = entry
        return entry

    def lookup_secret(self, access_key_id: str) -> str | None:
        """The secret of an active access key, or None (for the SigV4 verifier)."""
        entry = self._resolve(access_key_id)
        return None if entry is None else entry[0]

    def principal(self, access_key_id: str) -> Principal | None:
        entry = self._resolve(access_key_id)
        return None if entry is None else entry[1]


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))
