"""Policy variables (IAM User Guide, "IAM policy elements: Variables and tags").

A policy string is parsed once into a :data:`Template`: raw text (in which ``*`` and ``?`` are
wildcards where the element allows them), escaped characters from ``${*}``, ``${?}`` and ``${$}``
(always literal), and variables ``${key}`` / ``${key, 'default'}`` looked up in the request context
at evaluation. Variables exist only in policies with ``"Version": "2012-10-17"``; in older policies
``${...}`` is literal text, as AWS documents.

A variable resolves only when its key has exactly one value in the request context (multivalued
keys cannot be variables); otherwise its default is used, and without a default the template does
not resolve and the value that contains it matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "Context",
    "Escaped",
    "Part",
    "Template",
    "Text",
    "Variable",
    "has_variables",
    "literal_text",
    "parse_template",
    "resolve",
    "resolve_string",
]

Context = Mapping[str, tuple[str, ...]]
"""A request context: lower-cased condition key names to their (non-empty) string values."""

_ESCAPES = frozenset("*?$")


@dataclass(frozen=True, slots=True)
class Text:
    """Policy text as written; ``*`` and ``?`` in it are wildcards where wildcards apply."""

    text: str


@dataclass(frozen=True, slots=True)
class Escaped:
    """Literal text, never a wildcard: from ``${*}``, ``${?}``, ``${$}`` or a resolved variable."""

    text: str


@dataclass(frozen=True, slots=True)
class Variable:
    """``${key}`` or ``${key, 'default'}``; ``key`` is lower-cased (key names ignore case)."""

    key: str
    default: str | None


Part = Text | Escaped | Variable
Template = tuple[Part, ...]


def _parse_default(raw: str, pos: int) -> tuple[str, int] | None:
    """Parse ``'text'`` (``''`` is a quote) at ``pos``; return the text and the index after it."""
    if pos >= len(raw) or raw[pos] != "'":
        return None
    out: list[str] = []
    i = pos + 1
    while i < len(raw):
        if raw[i] == "'":
            if raw.startswith("''", i):
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        out.append(raw[i])
        i += 1
    return None


def _parse_variable(raw: str, start: int) -> tuple[Part, int] | None:
    """Parse the variable whose ``${`` is at ``start``; ``None`` when it is not well formed."""
    i = start + 2
    end_name = i
    while end_name < len(raw) and raw[end_name] not in ",}":
        end_name += 1
    if end_name >= len(raw):
        return None
    name = raw[i:end_name].strip()
    if not name or any(c.isspace() for c in name):
        return None
    if raw[end_name] == "}":
        if name in _ESCAPES:
            return Escaped(name), end_name + 1
        return Variable(name.lower(), None), end_name + 1
    j = end_name + 1
    while j < len(raw) and raw[j] == " ":
        j += 1
    parsed = _parse_default(raw, j)
    if parsed is None or name in _ESCAPES:
        return None
    default, j = parsed
    while j < len(raw) and raw[j] == " ":
        j += 1
    if j >= len(raw) or raw[j] != "}":
        return None
    return Variable(name.lower(), default), j + 1


def parse_template(raw: str, *, variables: bool) -> Template:
    """Split ``raw`` into text, escapes and variables; malformed ``${`` stays literal text."""
    if not variables or "${" not in raw:
        return (Text(raw),) if raw else ()
    parts: list[Part] = []
    buf: list[str] = []
    i = 0
    while i < len(raw):
        if raw.startswith("${", i):
            parsed = _parse_variable(raw, i)
            if parsed is not None:
                if buf:
                    parts.append(Text("".join(buf)))
                    buf = []
                parts.append(parsed[0])
                i = parsed[1]
                continue
        buf.append(raw[i])
        i += 1
    if buf:
        parts.append(Text("".join(buf)))
    return tuple(parts)


def has_variables(template: Template) -> bool:
    """True when evaluation must consult the request context to know the value."""
    return any(isinstance(p, Variable) for p in template)


def _lookup(var: Variable, context: Context) -> str | None:
    values = context.get(var.key)
    if values is not None and len(values) == 1:
        return values[0]
    return var.default


def resolve(template: Template, context: Context) -> tuple[Text | Escaped, ...] | None:
    """Replace variables by their (literal) values; ``None`` when one cannot be resolved."""
    out: list[Text | Escaped] = []
    for part in template:
        if isinstance(part, Variable):
            value = _lookup(part, context)
            if value is None:
                return None
            out.append(Escaped(value))
        else:
            out.append(part)
    return tuple(out)


def literal_text(template: Template) -> str | None:
    """The template's text when it has no variables (escapes are literal), else ``None``."""
    out: list[str] = []
    for part in template:
        if isinstance(part, Variable):
            return None
        out.append(part.text)
    return "".join(out)


def resolve_string(template: Template, context: Context) -> str | None:
    """The template as a plain string (no wildcards), or ``None`` when it cannot be resolved."""
    parts = resolve(template, context)
    if parts is None:
        return None
    return "".join(p.text for p in parts)
