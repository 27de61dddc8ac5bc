"""Key objects on the HSM: the record, who may see and use it, filters, and its public view.

A key is owned by the crypto user that created it; shared users may use it in crypto operations
but not delete, wrap, share or change it. Public keys are usable by every crypto user. The public
view (:func:`describe`) never contains key material.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec

from strongroom.hsm.attributes import AttrValue, parse_bool
from strongroom.hsm.errors import ErrorCode, HsmError
from strongroom.hsm.roles import Role

__all__ = ["FIRST_REF", "KeyObject", "KeyTable", "describe", "format_ref", "parse_ref"]

FIRST_REF = 0x100001


class KeyObject(msgspec.Struct):
    """One key as stored (sealed) on the node. ``material`` never leaves the node in clear."""

    ref: int
    key_class: str
    key_type: str
    owner: str
    shared: list[str]
    attrs: dict[str, AttrValue]
    facts: dict[str, str | int]
    material: bytes
    pair: int = 0
    local: bool = True
    never_extractable: bool = False
    always_sensitive: bool = False
    session: int = 0

    def is_usable_by(self, username: str) -> bool:
        """Owner, shared user, or anyone for a public key."""
        return self.key_class == "public-key" or self.owner == username or username in self.shared


def format_ref(ref: int) -> str:
    """``0x`` and 16 hex digits, as CloudHSM CLI shows key references."""
    return f"0x{ref:016x}"


def parse_ref(text: str) -> int:
    """Key reference from ``0x…`` hex or decimal; INVALID_REQUEST if malformed."""
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        raise HsmError(ErrorCode.INVALID_REQUEST, "malformed key reference") from None


def describe(key: KeyObject, verbose: bool = True) -> dict[str, Any]:
    """CloudHSM CLI's JSON view of a key (no material)."""
    attrs: dict[str, Any] = {"label": key.attrs["label"]}
    if verbose:
        attrs = {"key-type": key.key_type, "class": key.key_class, **key.attrs}
        attrs.update(
            local=key.local,
            **{
                "never-extractable": key.never_extractable,
                "always-sensitive": key.always_sensitive,
            },
            **key.facts,
        )
    owners = [] if key.owner == "" else [{"username": key.owner, "key-coverage": "full"}]
    return {
        "key-reference": format_ref(key.ref),
        "key-info": {
            "key-owners": owners,
            "shared-users": [{"username": u, "key-coverage": "full"} for u in key.shared],
            "cluster-coverage": "full",
        },
        "attributes": attrs,
    }


def _matches(key: KeyObject, name: str, wanted: str) -> bool:
    if name == "key-reference":
        return key.ref == parse_ref(wanted)
    attr = name.removeprefix("attr.")
    if attr in ("class", "key-type"):
        return (key.key_class if attr == "class" else key.key_type) == wanted
    if attr in key.attrs:
        value = key.attrs[attr]
        return value == (parse_bool(wanted) if isinstance(value, bool) else wanted)
    if attr in key.facts:
        return str(key.facts[attr]) == wanted
    raise HsmError(ErrorCode.INVALID_REQUEST, f"unknown filter {name!r}")


class KeyTable:
    """All keys of one node (token and session), by reference."""

    def __init__(self, keys: list[KeyObject] | None = None) -> None:
        self._keys = {k.ref: k for k in keys or []}

    def __len__(self) -> int:
        return len(self._keys)

    def next_ref(self) -> int:
        """A fresh reference, random so that keys made on different nodes of one cluster at
        the same time do not collide when they are replicated."""
        while True:
            ref = FIRST_REF + secrets.randbelow(1 << 40)
            if ref not in self._keys:
                return ref

    def all(self) -> list[KeyObject]:
        """Every key, by reference."""
        return [self._keys[r] for r in sorted(self._keys)]

    def add(self, key: KeyObject) -> None:
        """Insert (or replace, when cloning) a key."""
        self._keys[key.ref] = key

    def remove(self, ref: int) -> KeyObject:
        """Delete and return a key."""
        return self._keys.pop(ref)

    def get(self, ref: int) -> KeyObject | None:
        """The key with reference ``ref``."""
        return self._keys.get(ref)

    def visible(self, username: str, role: Role) -> list[KeyObject]:
        """Keys a user can see: all for admins and the appliance user, else usable ones."""
        if role in (Role.ADMIN, Role.APPLIANCE_USER):
            return self.all()
        return [k for k in self.all() if k.is_usable_by(username)]

    def find(self, username: str, role: Role, filters: dict[str, str]) -> list[KeyObject]:
        """Visible keys matching every ``name=value`` in ``filters``."""
        return [
            k
            for k in self.visible(username, role)
            if all(_matches(k, n, v) for n, v in filters.items())
        ]

    def usable(self, ref: int, username: str) -> KeyObject:
        """A key the user may use (owner, shared, or public), else KEY_NOT_FOUND."""
        key = self._keys.get(ref)
        if key is None or not key.is_usable_by(username):
            raise HsmError(ErrorCode.KEY_NOT_FOUND, f"no usable key {format_ref(ref)}")
        return key

    def owned(self, ref: int, username: str) -> KeyObject:
        """A key the user owns; NOT_KEY_OWNER for a shared user, else KEY_NOT_FOUND."""
        key = self.usable(ref, username)
        if key.owner != username:
            raise HsmError(ErrorCode.NOT_KEY_OWNER, "only the key's owner may do this")
        return key

    def owned_count(self, username: str) -> int:
        """How many keys ``username`` owns."""
        return sum(1 for k in self._keys.values() if k.owner == username)

    def session_keys(self, session: int) -> list[int]:
        """References of the session keys of ``session``."""
        return [r for r, k in self._keys.items() if k.session == session]
