"""Key attributes (cloudhsm.md §3.2): names, defaults, which apply to which key, change rules.

Attributes are kept as ``dict[str, bool | str]`` under CloudHSM CLI's names. Facts fixed at
creation (class, key-type, sizes, curve, local, never-extractable, always-sensitive) are not
attributes a caller can set.
"""

from __future__ import annotations

from strongroom.hsm.errors import ErrorCode, HsmError
from strongroom.hsm.roles import Role

__all__ = [
    "BOOL_ATTRIBUTES",
    "STRING_ATTRIBUTES",
    "AttrValue",
    "check_change",
    "creation_attributes",
    "parse_bool",
    "parse_value",
]

AttrValue = bool | str

USAGE = ("encrypt", "decrypt", "sign", "verify", "wrap", "unwrap", "derive")
BOOL_ATTRIBUTES = (
    *USAGE,
    "extractable",
    "sensitive",
    "token",
    "modifiable",
    "destroyable",
    "trusted",
    "wrap-with-trusted",
    "private",
)
STRING_ATTRIBUTES = ("label", "id")
_READ_ONLY = frozenset({"extractable", "private"})

# Usage attributes that may be true, by (class, key type).
_APPLICABLE: dict[tuple[str, str], frozenset[str]] = {
    ("secret-key", "aes"): frozenset(USAGE),
    ("secret-key", "generic-secret"): frozenset({"sign", "verify", "derive"}),
    ("private-key", "rsa"): frozenset({"decrypt", "sign", "unwrap"}),
    ("public-key", "rsa"): frozenset({"encrypt", "verify", "wrap"}),
    ("private-key", "ec"): frozenset({"sign", "derive"}),
    ("public-key", "ec"): frozenset({"verify"}),
}


def parse_bool(value: str | bool) -> bool:
    """``true``/``false`` (any case), or ATTRIBUTE_INVALID."""
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise HsmError(ErrorCode.ATTRIBUTE_INVALID, f"not a boolean: {value!r}")


def parse_value(name: str, value: str | bool) -> AttrValue:
    """Typed value of attribute ``name``; ATTRIBUTE_INVALID for unknown names."""
    if name in BOOL_ATTRIBUTES:
        return parse_bool(value)
    if name in STRING_ATTRIBUTES:
        text = str(value)
        if len(text) > 127:
            raise HsmError(ErrorCode.ATTRIBUTE_INVALID, f"{name} is limited to 127 characters")
        return text
    raise HsmError(ErrorCode.ATTRIBUTE_INVALID, f"unknown or read-only attribute {name!r}")


def _defaults(key_class: str, key_type: str) -> dict[str, AttrValue]:
    attrs: dict[str, AttrValue] = dict.fromkeys(BOOL_ATTRIBUTES, False)
    attrs.update(label="", id="", extractable=True, token=True, modifiable=True)
    attrs.update(destroyable=True, private=key_class != "public-key")
    attrs["sensitive"] = key_class != "public-key"
    attrs["sign"] = key_type == "aes"
    return attrs


def _check_applicable(key_class: str, key_type: str, attrs: dict[str, AttrValue]) -> None:
    allowed = _APPLICABLE[(key_class, key_type)]
    for name in USAGE:
        if attrs[name] and name not in allowed:
            raise HsmError(
                ErrorCode.ATTRIBUTE_INVALID, f"{name} cannot be true on a {key_type} {key_class}"
            )


def creation_attributes(
    key_class: str, key_type: str, requested: dict[str, str | bool]
) -> dict[str, AttrValue]:
    """Defaults overlaid with ``requested``; enforces what may be set at creation."""
    attrs = _defaults(key_class, key_type)
    for name, raw in requested.items():
        value = parse_value(name, raw)
        if name == "trusted" and value:
            raise HsmError(ErrorCode.PERMISSION_DENIED, "only an admin can set trusted")
        if name == "private" and value != attrs["private"]:
            raise HsmError(ErrorCode.ATTRIBUTE_READ_ONLY, "private cannot be set")
        if name == "sensitive" and key_class != "private-key" and value != attrs[name]:
            raise HsmError(ErrorCode.ATTRIBUTE_READ_ONLY, "sensitive is set only on private keys")
        attrs[name] = value
    _check_applicable(key_class, key_type, attrs)
    return attrs


def _check_one_way(name: str, old: AttrValue, new: AttrValue) -> None:
    if old == new:
        return
    one_way = {"modifiable": False, "token": True, "sensitive": True, "wrap-with-trusted": True}
    if name in one_way and new != one_way[name]:
        raise HsmError(ErrorCode.ATTRIBUTE_READ_ONLY, f"{name} can only change to {one_way[name]}")


def check_change(
    key_class: str,
    key_type: str,
    attrs: dict[str, AttrValue],
    name: str,
    raw_value: str | bool,
    role: Role,
) -> AttrValue:
    """Validate changing ``name`` to ``raw_value``; returns the typed new value."""
    value = parse_value(name, raw_value)
    if name == "trusted":
        if role is not Role.ADMIN:
            raise HsmError(ErrorCode.PERMISSION_DENIED, "only an admin can set trusted")
        return value
    if role is not Role.CRYPTO_USER:
        raise HsmError(ErrorCode.PERMISSION_DENIED, "an admin can only change trusted")
    if name in _READ_ONLY:
        raise HsmError(ErrorCode.ATTRIBUTE_READ_ONLY, f"{name} cannot change after creation")
    if not attrs["modifiable"]:
        raise HsmError(ErrorCode.ATTRIBUTE_READ_ONLY, "the key is not modifiable")
    if name == "sensitive" and key_class == "public-key" and value:
        raise HsmError(ErrorCode.ATTRIBUTE_INVALID, "public keys are never sensitive")
    _check_one_way(name, attrs[name], value)
    _check_applicable(key_class, key_type, {**attrs, name: value})
    return value
