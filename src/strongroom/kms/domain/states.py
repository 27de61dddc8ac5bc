"""Key states and the one table of which operation may run in which state.

``KEY_STATE_RULES[operation][state]`` is ``None`` when the operation may proceed, else the
kind of refusal AWS KMS gives (the DG key-state table, footnotes [1]–[15]; where the table
says "x2/3" the service answers [3], KMSInvalidStateException "... is pending deletion.").
Operations valid in every state are not listed. :func:`check_state` raises AWS's error.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from strongroom.errors import AwsError

__all__ = ["KEY_STATE_RULES", "KeyState", "Refusal", "check_state"]


class KeyState(enum.StrEnum):
    """AWS's ``KeyState`` enum."""

    CREATING = "Creating"
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PENDING_DELETION = "PendingDeletion"
    PENDING_IMPORT = "PendingImport"
    PENDING_REPLICA_DELETION = "PendingReplicaDeletion"
    UNAVAILABLE = "Unavailable"
    UPDATING = "Updating"


class Refusal(enum.Enum):
    """Why a state refuses an operation; each maps to one AWS error and message."""

    DISABLED = ("DisabledException", "is disabled.")
    PENDING_DELETION = ("KMSInvalidStateException", "is pending deletion.")
    NOT_PENDING_DELETION = ("KMSInvalidStateException", "is not pending deletion.")
    PENDING_IMPORT = ("KMSInvalidStateException", "is pending import.")
    UNAVAILABLE = ("KMSInvalidStateException", "is unavailable.")
    CREATING = ("KMSInvalidStateException", "is creating.")
    UPDATING = ("KMSInvalidStateException", "is updating.")


S = KeyState
R = Refusal

# Rows shared by several operations (DG key-state table).
_CRYPTO: Mapping[KeyState, Refusal | None] = {
    S.ENABLED: None,
    S.DISABLED: R.DISABLED,
    S.PENDING_DELETION: R.PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: R.PENDING_DELETION,
    S.PENDING_IMPORT: R.PENDING_IMPORT,
    S.UNAVAILABLE: R.UNAVAILABLE,
    S.CREATING: R.CREATING,
    S.UPDATING: None,
}
_EDIT: Mapping[KeyState, Refusal | None] = {
    **{s: None for s in KeyState},
    S.PENDING_DELETION: R.PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: R.PENDING_DELETION,
}
_ENABLE_DISABLE: Mapping[KeyState, Refusal | None] = {
    S.ENABLED: None,
    S.DISABLED: None,
    S.PENDING_DELETION: R.PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: R.PENDING_DELETION,
    S.PENDING_IMPORT: R.PENDING_IMPORT,
    S.UNAVAILABLE: None,
    S.CREATING: R.CREATING,
    S.UPDATING: R.UPDATING,
}
_CANCEL: Mapping[KeyState, Refusal | None] = {
    **{s: R.NOT_PENDING_DELETION for s in KeyState},
    S.PENDING_DELETION: None,
    S.PENDING_REPLICA_DELETION: None,
}
_SCHEDULE: Mapping[KeyState, Refusal | None] = {
    **{s: None for s in KeyState},
    S.PENDING_DELETION: R.PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: R.PENDING_DELETION,
    S.UPDATING: R.UPDATING,
}
_CREATE_GRANT: Mapping[KeyState, Refusal | None] = {**_CRYPTO, S.UNAVAILABLE: None}
# Rotation rows (footnotes [1], [3], [7], [14]); the origin checks ([6], [7]) come first.
_ROTATION: Mapping[KeyState, Refusal | None] = {
    **_CRYPTO,
    S.PENDING_DELETION: R.PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: R.PENDING_DELETION,
    S.PENDING_IMPORT: None,  # [6]: the origin check answers UnsupportedOperationException
}
_IMPORT: Mapping[KeyState, Refusal | None] = {
    **{s: None for s in KeyState},
    S.PENDING_DELETION: R.PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: R.PENDING_DELETION,
    S.UNAVAILABLE: R.UNAVAILABLE,
    S.CREATING: R.CREATING,
}
_DELETE_IMPORTED: Mapping[KeyState, Refusal | None] = {
    **{s: None for s in KeyState},
    S.CREATING: R.CREATING,
    S.UPDATING: R.UPDATING,
}
_REPLICATE: Mapping[KeyState, Refusal | None] = {**_CRYPTO, S.UPDATING: R.UPDATING}

KEY_STATE_RULES: Mapping[str, Mapping[KeyState, Refusal | None]] = {
    **dict.fromkeys(
        (
            "Encrypt",
            "Decrypt",
            "ReEncryptFrom",
            "ReEncryptTo",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "GenerateDataKeyPair",
            "GenerateDataKeyPairWithoutPlaintext",
            "GenerateMac",
            "VerifyMac",
            "Sign",
            "Verify",
            "GetPublicKey",
            "DeriveSharedSecret",
            "Encapsulate",
            "Decapsulate",
        ),
        _CRYPTO,
    ),
    **dict.fromkeys(
        (
            "CreateAlias",
            "UpdateAliasTarget",
            "TagResource",
            "UntagResource",
            "UpdateKeyDescription",
        ),
        _EDIT,
    ),
    "EnableKey": _ENABLE_DISABLE,
    "DisableKey": _ENABLE_DISABLE,
    "CancelKeyDeletion": _CANCEL,
    "ScheduleKeyDeletion": _SCHEDULE,
    "CreateGrant": _CREATE_GRANT,
    **dict.fromkeys(("EnableKeyRotation", "DisableKeyRotation", "RotateKeyOnDemand"), _ROTATION),
    "GetParametersForImport": {**_IMPORT, S.UPDATING: R.UPDATING},
    "ImportKeyMaterial": _IMPORT,
    "DeleteImportedKeyMaterial": _DELETE_IMPORTED,
    "ReplicateKey": _REPLICATE,
    "UpdatePrimaryRegion": _CRYPTO,
}


def check_state(operation: str, state: KeyState, key_arn: str) -> None:
    """Raise AWS's error if ``operation`` may not run on a key in ``state``."""
    row = KEY_STATE_RULES.get(operation)
    if row is None:
        return
    refusal = row[state]
    if refusal is not None:
        code, text = refusal.value
        raise AwsError(code, f"{key_arn} {text}")
