"""On-HSM users: names, password rules, Argon2id hashes, the lockout counter.

Usernames are case-insensitive (stored lowercase), at most 31 letters, digits or ``_``. Passwords
are 8–32 characters. Five consecutive failed logins lock a user until an admin sets a new password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from strongroom.hsm.errors import ErrorCode, HsmError
from strongroom.hsm.roles import Role

__all__ = [
    "ADMIN_USERNAME",
    "APPLIANCE_USERNAME",
    "LOCKOUT_THRESHOLD",
    "Argon2Params",
    "Passwords",
    "UserRecord",
    "UserTable",
    "check_password",
    "normalize_username",
]

LOCKOUT_THRESHOLD = 5
ADMIN_USERNAME = "admin"
APPLIANCE_USERNAME = "app_user"
_USERNAME_RE = re.compile(r"[A-Za-z0-9_]{1,31}")
_PASSWORD_MIN, _PASSWORD_MAX = 8, 32


class UserRecord(msgspec.Struct):
    """One user as stored (sealed) on the node."""

    user_id: int
    username: str
    role: str
    password_hash: str
    failures: int = 0
    locked: bool = False

    @property
    def role_enum(self) -> Role:
        """The role as an enum."""
        return Role(self.role)


def normalize_username(name: str) -> str:
    """The canonical (lowercase) username, or INVALID_REQUEST."""
    if not _USERNAME_RE.fullmatch(name):
        raise HsmError(
            ErrorCode.INVALID_REQUEST,
            "username must be 1-31 characters: letters, digits and _",
        )
    return name.lower()


def check_password(password: str) -> None:
    """Raise INVALID_REQUEST unless the password has 8–32 characters."""
    if not _PASSWORD_MIN <= len(password) <= _PASSWORD_MAX:
        raise HsmError(ErrorCode.INVALID_REQUEST, "password must be 8-32 characters")


@dataclass(frozen=True, slots=True)
class Argon2Params:
    """Argon2id cost parameters (memory in KiB)."""

    time_cost: int = 2
    memory_cost: int = 19456
    parallelism: int = 1


class Passwords:
    """Argon2id hashing and checking; a dummy check keeps unknown-user timing alike."""

    def __init__(self, params: Argon2Params) -> None:
        self._hasher = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_cost,
            parallelism=params.parallelism,
            type=Type.ID,
        )
        self._dummy = self._hasher.hash("strongroom-dummy-password")

    def hash(self, password: str) -> str:
        """A fresh Argon2id hash string."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True if ``password`` matches; with no hash, spend the same time and return False."""
        try:
            self._hasher.verify(password_hash or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        return password_hash is not None


class UserTable:
    """The users of one node, keyed by lowercase username."""

    def __init__(self, users: list[UserRecord] | None = None) -> None:
        self._users = {u.username: u for u in users or []}

    def records(self) -> list[UserRecord]:
        """All users in id order (for sealing and listing)."""
        return sorted(self._users.values(), key=lambda u: u.user_id)

    def get(self, username: str) -> UserRecord | None:
        """The user named ``username`` (any case), if any."""
        return self._users.get(username.lower())

    def require(self, username: str, role: Role | None = None) -> UserRecord:
        """The user, or USER_NOT_FOUND (also if ``role`` is given and differs)."""
        user = self.get(username)
        if user is None or (role is not None and user.role_enum is not role):
            raise HsmError(ErrorCode.USER_NOT_FOUND, "no such user with that role")
        return user

    def add(self, username: str, role: Role, password_hash: str) -> UserRecord:
        """Create a user with the next id; USER_EXISTS if the name is taken."""
        name = normalize_username(username)
        if name in self._users:
            raise HsmError(ErrorCode.USER_EXISTS, "a user with that name exists")
        next_id = max((u.user_id for u in self._users.values()), default=0) + 1
        user = UserRecord(next_id, name, str(role), password_hash)
        self._users[name] = user
        return user

    def remove(self, username: str) -> None:
        """Delete a user."""
        del self._users[username.lower()]

    def insert(self, user: UserRecord) -> None:
        """Insert or replace a user record as-is (cloning between nodes)."""
        self._users[user.username] = user

    @staticmethod
    def record_failure(user: UserRecord) -> bool:
        """Count a failed login; True if this failure locked the user."""
        user.failures += 1
        if user.failures >= LOCKOUT_THRESHOLD and not user.locked:
            user.locked = True
            return True
        return False

    @staticmethod
    def record_success(user: UserRecord) -> None:
        """A successful login clears the consecutive-failure count."""
        user.failures = 0

    @staticmethod
    def set_password(user: UserRecord, password_hash: str) -> None:
        """New password; an admin reset also unlocks."""
        user.password_hash = password_hash
        user.failures = 0
        user.locked = False
