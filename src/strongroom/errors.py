"""The one exception type that crosses the wire edge, and the one table of HTTP statuses.

Domain code raises :class:`AwsError` carrying the AWS error code (the wire ``__type``) and the
message in AWS's wording. The wire adapter turns it into ``{"__type": code, "message": message}``
with the status from :data:`HTTP_STATUS` (400 unless listed). The statuses are those the AWS
services answer on the wire (client errors 400, server faults 5xx); clients map errors by
``__type``, the status only steers retries. Messages never carry plaintexts, keys or secrets.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["HTTP_STATUS", "AwsError", "validation_error"]

HTTP_STATUS: Mapping[str, int] = {
    "KMSInternalException": 500,
    "KeyUnavailableException": 500,
    "InternalFailure": 500,
    "CloudHsmInternalFailureException": 500,
    "DependencyTimeoutException": 503,
    "ServiceUnavailableException": 503,
    "DryRunOperationException": 412,
    "RequestEntityTooLargeException": 413,
    "AccessDeniedException": 400,
}


class AwsError(Exception):
    """An error answered to the client as an AWS JSON error."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = HTTP_STATUS.get(code, 400) if status is None else status


def validation_error(problems: list[str]) -> AwsError:
    """A ValidationException listing constraint violations in AWS's wording."""
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return AwsError(
        "ValidationException",
        f"{count} validation {noun} detected: " + "; ".join(problems),
    )
