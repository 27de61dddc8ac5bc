"""Request validation compiled from a botocore service model (AWS JSON 1.1 request bodies).

:meth:`ServiceShapes.load` reads botocore's ``service-2`` model of a service (``kms``,
``cloudhsmv2``, ...) and compiles, once, one parser per operation. :meth:`ServiceShapes.parse_input`
then checks a decoded JSON body against the operation's input shape and returns a new dict of the
input members: blobs base64-decoded to ``bytes``, timestamps as float epoch seconds (numbers and
ISO-8601 strings are accepted), everything else as given. JSON ``null`` means "absent"; members the
model does not know are ignored, as AWS does.

Errors, as AWS answers them:

* ``SerializationException`` (400) when the body is not a JSON object, a member has the wrong JSON
  type (``bool`` is not an integer; ``1.5`` and ``"1"`` are not integers either), an
  ``integer``/``long`` does not fit 32/64 bits, a blob is not padded standard base64, or a
  timestamp is not a number or an ISO-8601 string. The first such problem is raised at once.
* ``ValidationException`` listing every constraint the model states and the body breaks:
  required members (missing or ``null``), ``min``/``max`` (length of strings in code points, of
  blobs in bytes, of lists and maps in entries; value of numbers), ``enum`` and ``pattern``.
  Patterns are Java regexes, matched against the whole value; see :func:`java_regex`.
  Problems are listed in order of member path.

Member paths start with the member name, first letter lower-cased (``keyId``). Nested members
are joined with ``.``: structure members by name, list elements as ``<list>.<n>.member`` with
``n`` counted from 1 (``tags.1.member.tagKey``), map values as ``<map>.<key>``
(``encryptionContext.purpose``). A map key that breaks its constraints is reported once at the
map's own path, AWS-style: ``Value 'k' at 'filters' failed to satisfy constraint: Map keys must
satisfy constraint: [Member must ...]``.

Messages quote the offending value (``Value 'FOO' at 'keySpec'``), except for blobs and shapes the
model marks ``sensitive`` (``Value at 'plaintext'``); lists and maps are shown shortened (three
entries, strings cut at 32 characters) unless they contain blobs or sensitive shapes.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from botocore.loaders import Loader

from strongroom.api._shape_compile import (
    Loc,
    Parser,
    Problems,
    ShapeCompiler,
    serialization_error,
)
from strongroom.errors import AwsError, validation_error

__all__ = ["ServiceShapes", "java_regex"]


class ServiceShapes:
    """The compiled input validators of one AWS service's operations."""

    __slots__ = ("_parsers", "operations", "service_name")

    def __init__(self, service_name: str, parsers: Mapping[str, Parser]) -> None:
        self.service_name = service_name
        self._parsers = dict(parsers)
        #: the names of the service's operations (``Encrypt``, ``CreateKey``, ...)
        self.operations = frozenset(self._parsers)

    @classmethod
    def load(cls, service_name: str) -> ServiceShapes:
        """Compile the operations of botocore's model of ``service_name`` (e.g. ``"kms"``)."""
        model = Loader().load_service_model(service_name, "service-2")
        return cls.from_model(service_name, model)

    @classmethod
    def from_model(cls, service_name: str, model: Mapping[str, Any]) -> ServiceShapes:
        """Compile the operations of a service model already loaded (``service-2`` layout)."""
        compiler = ShapeCompiler(model["shapes"], java_regex)
        parsers: dict[str, Parser] = {}
        for operation, spec in model["operations"].items():
            ref = spec.get("input")
            parsers[operation] = compiler.compile(ref["shape"]) if ref else _no_input
        return cls(service_name, parsers)

    def parse_input(self, operation: str, body: object) -> dict[str, Any]:
        """Check ``body`` (decoded JSON) against ``operation``'s input; return its members."""
        parse = self._parsers.get(operation)
        if parse is None:
            raise AwsError(
                "UnknownOperationException",
                f"Operation {operation} is not part of {self.service_name}",
                400,
            )
        if type(body) is not dict:
            raise serialization_error("The request body must be a JSON object")
        problems: Problems = []
        out: dict[str, Any] = parse(body, None, problems)
        if problems:
            problems.sort(key=_path_order)
            raise validation_error([message for _, message in problems])
        return out


def _no_input(value: Any, loc: Loc | None, problems: Problems) -> Any:
    return {}


def _path_order(problem: tuple[str, str]) -> list[tuple[int, int, str]]:
    return [(0, int(s), "") if s.isdigit() else (1, 0, s) for s in problem[0].split(".")]


# -- Java regular expressions ---------------------------------------------------------------

_LINE_END = "\\n\\r\\u0085\\u2028\\u2029"
_HORIZONTAL = "\\t \\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000"
_VERTICAL = "\\n\\x0b\\f\\r\\x85\\u2028\\u2029"
_POSIX = {  # Java's POSIX classes are ASCII-only unless UNICODE_CHARACTER_CLASS is set
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7f",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "\\x21-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7e",
    "Graph": "\\x21-\\x7e",
    "Print": "\\x20-\\x7e",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1f\\x7f",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0b\\f\\r",
}


@functools.cache
def java_regex(pattern: str) -> re.Pattern[str]:
    """Compile a model ``pattern`` (Java syntax) to an equivalent Python regex.

    Translated: ``\\p{..}``/``\\P{..}`` for Unicode general categories (``L``, ``Lu``, ``IsN``,
    ``gc=Z``) and Java's POSIX classes; ``.`` (which in Java stops at every line terminator);
    ``\\h``, ``\\v``, ``\\e``, ``\\x{..}``, ``\\z``, ``\\Z``, ``\\Q..\\E``; ``(?<name>``. ``\\w``,
    ``\\d``, ``\\s`` and ``\\b`` are ASCII, as in Java. Class unions and intersections
    (``[a[b]]``, ``&&``) are rejected with :class:`ValueError`. Use ``fullmatch``, as AWS does.
    """
    return re.compile(_translate(pattern), re.ASCII)


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            text, i = _escape(pattern, i + 1, in_class)
            out.append(text)
        elif in_class:
            if ch == "[" or pattern.startswith("&&", i):
                raise ValueError(f"unsupported character class syntax in {pattern!r}")
            in_class = ch != "]"
            out.append(ch)
            i += 1
        elif ch == "[":
            out.append("[")
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("\\]")
                i += 1
            in_class = True
        elif ch == ".":
            out.append(f"[^{_LINE_END}]")
            i += 1
        elif pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!"):
            out.append("(?P<")
            i += 3
        else:
            out.append(ch)
            i += 1
    if in_class:
        raise ValueError(f"unterminated character class in {pattern!r}")
    return "".join(out)


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """Translate the escape whose letter is at ``pattern[i]``; return it and the next index."""
    if i >= len(pattern):
        raise ValueError(f"trailing backslash in {pattern!r}")
    esc = pattern[i]
    i += 1
    if esc in "pP":
        if pattern.startswith("{", i):
            end = pattern.find("}", i)
            if end < 0:
                raise ValueError(f"unterminated \\{esc}{{ in {pattern!r}")
            name, i = pattern[i + 1 : end], end + 1
        else:
            name, i = pattern[i : i + 1], i + 1
        return _set(_property(name), esc == "P", in_class), i
    if esc in "hHvV":
        return _set(_HORIZONTAL if esc in "hH" else _VERTICAL, esc.isupper(), in_class), i
    if esc == "Q":
        end = pattern.find("\\E", i)
        literal = pattern[i:] if end < 0 else pattern[i:end]
        return re.escape(literal), len(pattern) if end < 0 else end + 2
    if esc == "x" and pattern.startswith("{", i):
        end = pattern.find("}", i)
        return f"\\U{int(pattern[i + 1 : end], 16):08x}", end + 1
    simple = {"z": "\\Z", "Z": f"(?=[{_LINE_END}]?\\Z)", "e": "\\x1b"}
    if esc in simple and not (in_class and esc in "zZ"):
        return simple[esc], i
    if esc in "RXGkc0zZ":
        raise ValueError(f"unsupported escape \\{esc} in {pattern!r}")
    return "\\" + esc, i


def _set(body: str, negate: bool, in_class: bool) -> str:
    if not negate:
        return body if in_class else f"[{body}]"
    if in_class:
        raise ValueError("a negated property inside a character class is not supported")
    return f"[^{body}]"


def _property(name: str) -> str:
    """The character-class body of a Java ``\\p{name}``."""
    if name in _POSIX:
        return _POSIX[name]
    for prefix in ("general_category=", "gc=", "Is"):
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix) :]
            break
    ranges = _category_ranges(name)
    if not ranges:
        raise ValueError(f"unsupported regex property \\p{{{name}}}")
    return "".join(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges)


@functools.cache
def _category_ranges(name: str) -> tuple[tuple[int, int], ...]:
    """Code point ranges of a general category (``Lu``) or category group (``L``)."""
    if len(name) not in (1, 2):
        return ()
    merged: list[tuple[int, int]] = []
    for category, ranges in _categories().items():
        if category.startswith(name):
            merged.extend(ranges)
    merged.sort()
    out: list[tuple[int, int]] = []
    for lo, hi in merged:
        if out and out[-1][1] + 1 == lo:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


@functools.cache
def _categories() -> dict[str, list[tuple[int, int]]]:
    table: dict[str, list[tuple[int, int]]] = {}
    start, current = 0, unicodedata.category("\0")
    for cp in range(1, 0x110000):
        category = unicodedata.category(chr(cp))
        if category != current:
            table.setdefault(current, []).append((start, cp - 1))
            start, current = cp, category
    table.setdefault(current, []).append((start, 0x10FFFF))
    return table
