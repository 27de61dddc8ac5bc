"""The one error the policy engine raises: a policy document that cannot be accepted."""

from __future__ import annotations

__all__ = ["PolicyError"]


class PolicyError(Exception):
    """A malformed or unsupported policy document.

    ``message`` is worded for AWS's ``MalformedPolicyDocumentException`` and is safe to send to
    the client as is.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
