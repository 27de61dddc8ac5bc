"""Wildcard matching for Action, Resource and the String/ARN condition operators.

Patterns are compiled when the policy is parsed. A pattern without variables becomes a
:class:`Glob` that picks the cheapest test that is exact for it (always, equality, prefix, or a
compiled regular expression). A pattern with variables is resolved per request and its regular
expression is cached by source text.

ARN patterns (``Resource`` and ``ArnEquals``/``ArnLike``) are matched segment by segment, as the
IAM User Guide documents: the six colon-separated components are compared separately, so a
wildcard in one of the first five never spans a colon; the sixth (resource) component is the rest
of the ARN and may contain colons. A lone ``*`` matches everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from strongroom.iam.policy.variables import (
    Context,
    Escaped,
    Template,
    Text,
    Variable,
    resolve,
)

__all__ = [
    "ArnPattern",
    "Glob",
    "StringPattern",
    "glob_regex",
    "pattern_set_matches",
]

_ARN_SEGMENTS = 6


def glob_regex(parts: Iterable[Text | Escaped], *, star: str = ".*", one: str = ".") -> str:
    """Regular expression source for ``parts``: ``*``/``?`` in :class:`Text` are wildcards.

    The pieces between two stars have a fixed length, so the leftmost place each fits is as
    good as any (the classic wildcard match): each is found lazily in an atomic group that is
    never searched again. A plain ``.*a.*a.*b`` backtracks through every way to place its stars,
    so a policy of many stars could hold a request for minutes (found by
    scripts/fuzz_atheris.py); this form stays near linear. Only the piece after the last star
    is matched greedily, against the end.
    """
    chunks: list[list[str]] = [[]]
    for part in parts:
        if isinstance(part, Escaped):
            chunks[-1].append(re.escape(part.text))
            continue
        for c in part.text:
            if c == "*":
                chunks.append([])
            else:
                chunks[-1].append(one if c == "?" else re.escape(c))
    sources = ["".join(chunk) for chunk in chunks]
    if len(sources) == 1:
        return sources[0]
    first, *middle, last = sources
    inner = "".join(f"(?>{star}?{chunk})" for chunk in middle if chunk)
    return f"{first}{inner}{star}{last}"


@lru_cache(maxsize=4096)
def _compiled(source: str) -> re.Pattern[str]:
    return re.compile(source, re.DOTALL)


def _always(value: str) -> bool:
    return True


class Glob:
    """A variable-free wildcard pattern with the fastest exact test chosen at compile time."""

    __slots__ = ("match", "source")

    match: Callable[[str], bool]
    source: str

    def __init__(self, pattern: str) -> None:
        self.source = pattern
        body = pattern[:-1] if pattern.endswith("*") else pattern
        if pattern == "*":
            self.match = _always
        elif "*" not in pattern and "?" not in pattern:
            self.match = pattern.__eq__
        elif "*" not in body and "?" not in body:
            self.match = lambda value: value.startswith(body)
        else:
            regex = _compiled(glob_regex((Text(pattern),)))
            self.match = lambda value: regex.fullmatch(value) is not None

    def __repr__(self) -> str:
        return f"Glob({self.source!r})"


@dataclass(frozen=True, slots=True)
class StringPattern:
    """A ``StringLike``-style pattern: ``*`` and ``?`` anywhere, optionally with variables."""

    template: Template
    glob: Glob | None

    @classmethod
    def compile(cls, template: Template) -> StringPattern:
        literal = [p for p in template if not isinstance(p, Variable)]
        if len(literal) != len(template):
            return cls(template, None)
        if all(isinstance(p, Text) for p in literal):
            return cls(template, Glob("".join(p.text for p in literal)))
        return cls(template, _RegexGlob.of(glob_regex(literal)))

    def matches(self, value: str, context: Context) -> bool:
        if self.glob is not None:
            return self.glob.match(value)
        parts = resolve(self.template, context)
        if parts is None:
            return False
        return _compiled(glob_regex(parts)).fullmatch(value) is not None


class _RegexGlob(Glob):
    """A :class:`Glob` built from regular-expression source (escapes already applied)."""

    __slots__ = ()

    @classmethod
    def of(cls, source: str) -> Glob:
        glob = cls.__new__(cls)
        regex = _compiled(source)
        glob.source = source
        glob.match = lambda value: regex.fullmatch(value) is not None
        return glob


def _split_arn(parts: Sequence[Text | Escaped]) -> list[list[Text | Escaped]] | None:
    """Split at the first five colons of raw text; ``None`` when there are fewer than five."""
    segments: list[list[Text | Escaped]] = [[]]
    for part in parts:
        if isinstance(part, Escaped) or len(segments) == _ARN_SEGMENTS:
            segments[-1].append(part)
            continue
        pieces = part.text.split(":", _ARN_SEGMENTS - len(segments))
        segments[-1].append(Text(pieces[0]))
        segments.extend([Text(piece)] for piece in pieces[1:])
    return segments if len(segments) == _ARN_SEGMENTS else None


def _text_colons(template: Template) -> int:
    return sum(p.text.count(":") for p in template if isinstance(p, Text))


def _arn_regex(segments: list[list[Text | Escaped]]) -> str | None:
    """Regex for an ARN pattern; ``None`` when a literal colon sits in the first five segments."""
    head = segments[:-1]
    for segment in head:
        if any(isinstance(p, Escaped) and ":" in p.text for p in segment):
            return None
    sources = [glob_regex(seg, star="[^:]*", one="[^:]") for seg in head]
    sources.append(glob_regex(segments[-1]))
    return ":".join(sources)


@dataclass(frozen=True, slots=True)
class ArnPattern:
    """An ARN pattern for ``Resource``/``NotResource`` and the ``Arn*`` condition operators."""

    template: Template
    glob: Glob | None
    wellformed: bool

    @classmethod
    def compile(cls, template: Template) -> ArnPattern:
        if template == (Text("*"),):
            return cls(template, Glob("*"), True)
        if _text_colons(template) < _ARN_SEGMENTS - 1:
            return cls(template, None, False)
        literal = [p for p in template if not isinstance(p, Variable)]
        if len(literal) != len(template):
            return cls(template, None, True)
        segments = _split_arn(literal)
        source = None if segments is None else _arn_regex(segments)
        if source is None:
            return cls(template, None, False)
        return cls(template, _RegexGlob.of(source), True)

    def matches(self, value: str, context: Context) -> bool:
        if self.glob is not None:
            return self.glob.match(value)
        if not self.wellformed:
            return False
        parts = resolve(self.template, context)
        if parts is None:
            return False
        segments = _split_arn(parts)
        source = None if segments is None else _arn_regex(segments)
        return source is not None and _compiled(source).fullmatch(value) is not None


def pattern_set_matches(
    patterns: tuple[StringPattern | ArnPattern, ...], value: str, context: Context
) -> bool:
    """True when any of ``patterns`` matches ``value``."""
    return any(p.matches(value, context) for p in patterns)
