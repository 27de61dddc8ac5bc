"""The one exception type that crosses the wire edge.

Domain code raises :class:`AwsError` (or a subclass) carrying the AWS error code (the wire
``__type``), the message in AWS's wording, and the HTTP status. The wire adapter turns it into
``{"__type": code, "message": message}``. Messages never carry plaintexts, key material or secrets.
"""

from __future__ import annotations

__all__ = ["AwsError", "validation_error"]


class AwsError(Exception):
    """An error answered to the client as an AWS JSON error."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def validation_error(problems: list[str]) -> AwsError:
    """A ValidationException listing constraint violations in AWS's wording."""
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return AwsError(
        "ValidationException",
        f"{count} validation {noun} detected: " + "; ".join(problems),
    )
