"""The answer the engine gives: an :class:`Effect` and, for allows, how the caller was named."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Decision", "Effect"]


class Effect(Enum):
    """The outcome of evaluating one policy."""

    ALLOW = "Allow"
    DENY = "Deny"
    NONE = "None"  # no statement applies: an implicit deny


@dataclass(frozen=True, slots=True)
class Decision:
    """The effect, whether an allow is only delegated to IAM, and the deciding statement."""

    effect: Effect
    delegated: bool = False
    sid: str | None = None
    statement: int | None = None  # index of the deciding statement in the document

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW

    @property
    def denied(self) -> bool:
        """True for an explicit deny only."""
        return self.effect is Effect.DENY
