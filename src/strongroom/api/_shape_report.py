"""How a request body's problems are reported (private to :mod:`strongroom.api._shape_compile`).

Rendering member paths from a ``loc`` as AWS does, wording constraint violations as AWS words
them, and short Java-like renderings of the offending values; none of it runs on the happy path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from strongroom.errors import AwsError

__all__ = [
    "NULL_TEXT",
    "Checks",
    "Loc",
    "Problems",
    "json_kind",
    "mistyped",
    "path_of",
    "problem",
    "serialization_error",
    "short",
    "show_nothing",
    "show_scalar",
    "show_short",
]

Loc: TypeAlias = "str | tuple[Loc | None, str | int]"
Problems: TypeAlias = list[tuple[str, str]]
NULL_TEXT = "Member must not be null"


def path_of(loc: Loc | None) -> str:
    """Render a location as AWS does: ``tags.1.member.tagKey``, ``encryptionContext.<key>``."""
    if loc is None:
        return ""
    if isinstance(loc, str):
        return loc
    parent, seg = loc
    if isinstance(seg, int):
        return f"{path_of(parent)}.{seg + 1}.member"
    return f"{path_of(parent)}.{seg}"


def serialization_error(message: str) -> AwsError:
    """A SerializationException: the body does not deserialize into the operation's input."""
    return AwsError("SerializationException", message, 400)


def problem(problems: Problems, path: str, shown: str, text: str) -> None:
    """Record one constraint violation, worded as AWS words it."""
    problems.append((path, f"Value{shown} at '{path}' failed to satisfy constraint: {text}"))


def json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def mistyped(value: object, loc: Loc | None, problems: Problems, expected: str) -> None:
    """A value of the wrong JSON type: ``null`` is a validation problem, anything else fatal."""
    path = path_of(loc)
    if value is None:
        problem(problems, path, " null", NULL_TEXT)
        return None
    raise serialization_error(f"Value at '{path}' must be {expected}, not {json_kind(value)}")


def short(value: object, depth: int = 0) -> str:
    """A short, Java-like rendering of a JSON value for messages about lists and maps."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if len(value) <= 32 else value[:32] + "..."
    if isinstance(value, list):
        if depth:
            return "[...]"
        items = [short(v, 1) for v in value[:3]]
        return "[" + ", ".join(items + (["..."] if len(value) > 3 else [])) + "]"
    if isinstance(value, dict):
        if depth:
            return "{...}"
        pairs = [f"{k}={short(v, 1)}" for k, v in list(value.items())[:3]]
        return "{" + ", ".join(pairs + (["..."] if len(value) > 3 else [])) + "}"
    return str(value)


def show_scalar(value: object) -> str:
    if isinstance(value, bool):
        return " 'true'" if value else " 'false'"
    return f" '{value}'"


def show_short(value: object) -> str:
    return f" '{short(value)}'"


def show_nothing(value: object) -> str:
    return ""


@dataclass(frozen=True, slots=True)
class Checks:
    """The constraints of one shape, and how to report a value that breaks them."""

    lo: int | float
    hi: int | float
    enum: frozenset[str] | None
    match: Callable[[str], object] | None
    texts: tuple[str, str, str, str]  # min, max, enum, pattern
    show: Callable[[object], str]

    def failed(self, value: Any, measure: int | float) -> list[str]:
        """The constraint texts that ``value`` (of length or magnitude ``measure``) breaks."""
        out = []
        if measure < self.lo:
            out.append(self.texts[0])
        if measure > self.hi:
            out.append(self.texts[1])
        if self.enum is not None and value not in self.enum:
            out.append(self.texts[2])
        if self.match is not None and self.match(value) is None:
            out.append(self.texts[3])
        return out

    def report(self, value: Any, measure: int | float, loc: Loc | None, problems: Problems) -> None:
        path = path_of(loc)
        shown = self.show(value)
        for text in self.failed(value, measure):
            problem(problems, path, shown, text)
