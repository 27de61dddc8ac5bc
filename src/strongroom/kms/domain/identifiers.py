"""Key identifiers in every form AWS accepts: key id, key ARN, alias name, alias ARN."""

from __future__ import annotations

import re
from dataclasses import dataclass

from strongroom.errors import AwsError

__all__ = ["KeyRef", "alias_arn", "parse_key_ref"]

_KEY_ID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}"
)
_ARN = re.compile(r"arn:([a-z-]+):kms:([a-z0-9-]*):(\d*):(.*)")


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A parsed KeyId parameter: a key id, or an alias name, in an account and region."""

    account_id: str
    region: str
    key_id: str | None = None
    alias_name: str | None = None


def alias_arn(region: str, account_id: str, alias_name: str) -> str:
    return f"arn:aws:kms:{region}:{account_id}:{alias_name}"


ALIASES_NOT_SUPPORTED = "Key Aliases are not supported for this operation."


def parse_key_ref(value: str, account_id: str, region: str, *, allow_alias: bool) -> KeyRef:
    """Parse a KeyId as given by a caller of ``account_id`` in ``region``.

    Raises NotFoundException for an id that cannot name a key (or an alias name where this
    parameter takes none) and InvalidArnException for a malformed ARN, or an alias ARN where
    this parameter takes no alias, as AWS KMS does (its message for CreateGrant with an alias
    ARN, as services that call it on a user's behalf quote it: "Key Aliases are not supported
    for this operation.").
    """
    if value.startswith("arn:"):
        return _parse_arn(value, region, allow_alias=allow_alias)
    if value.startswith("alias/"):
        if not allow_alias:
            raise AwsError("NotFoundException", f"Invalid keyId {value}")
        return KeyRef(account_id, region, alias_name=value)
    if not _KEY_ID.fullmatch(value):
        raise AwsError("NotFoundException", f"Invalid keyId {value}")
    return KeyRef(account_id, region, key_id=value)


def _parse_arn(value: str, region: str, *, allow_alias: bool) -> KeyRef:
    match = _ARN.fullmatch(value)
    if match is None or not match.group(2) or len(match.group(3)) != 12:
        raise AwsError("InvalidArnException", f"Invalid arn {value}")
    arn_region, account, resource = match.group(2), match.group(3), match.group(4)
    if resource.startswith("key/"):
        key_id = resource[4:]
        if not _KEY_ID.fullmatch(key_id):
            raise AwsError("NotFoundException", f"Invalid keyId {value}")
        if arn_region != region:
            raise AwsError("NotFoundException", f"Key '{value}' does not exist")
        return KeyRef(account, region, key_id=key_id)
    if resource.startswith("alias/"):
        if not allow_alias:
            raise AwsError("InvalidArnException", ALIASES_NOT_SUPPORTED)
        if arn_region != region:
            raise AwsError("NotFoundException", f"Alias {value} is not found.")
        return KeyRef(account, region, alias_name=resource)
    raise AwsError("InvalidArnException", f"Invalid arn {value}")
