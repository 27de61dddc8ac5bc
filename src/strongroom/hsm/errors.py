"""HSM error codes, shared by the node, the wire protocol, the client and the CLI.

Codes 157 and 163 are CloudHSM's own (unknown user, login failure); the others are Strongroom's.
Messages name what went wrong and never carry key material, plaintexts or passwords.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ErrorCode", "HsmError"]


class ErrorCode(IntEnum):
    """Result codes on the wire and in the audit log (0 is success)."""

    SUCCESS = 0
    INVALID_REQUEST = 1
    UNSUPPORTED_VERSION = 2
    UNKNOWN_OPERATION = 3
    NOT_LOGGED_IN = 4
    PERMISSION_DENIED = 5
    ALREADY_ACTIVATED = 6
    NOT_ACTIVATED = 7
    USER_EXISTS = 8
    USER_LOCKED = 9
    USER_LOGGED_IN = 10
    USER_OWNS_KEYS = 11
    KEY_NOT_FOUND = 12
    ATTRIBUTE_READ_ONLY = 13
    ATTRIBUTE_INVALID = 14
    KEY_FUNCTION_NOT_PERMITTED = 15
    KEY_NOT_EXTRACTABLE = 16
    NOT_KEY_OWNER = 17
    CRYPTO_FAILED = 18
    CERTIFICATE_INVALID = 19
    SESSION_EXPIRED = 20
    ALREADY_LOGGED_IN = 21
    LIMIT_EXCEEDED = 22
    INTERNAL = 99
    USER_NOT_FOUND = 157
    LOGIN_FAILURE = 163

    @property
    def text(self) -> str:
        """CloudHSM-style response text, e.g. ``163:HSM Error: RET_USER_LOGIN_FAILURE``."""
        if self is ErrorCode.SUCCESS:
            return "0:HSM Return: SUCCESS"
        return f"{int(self)}:HSM Error: {self.name}"


class HsmError(Exception):
    """An operation refused or failed on the HSM; safe to show to the caller."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"
