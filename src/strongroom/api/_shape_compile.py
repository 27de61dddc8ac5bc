"""Compile botocore shapes into request-body parsers (private to :mod:`strongroom.api.shapes`).

Every shape becomes one closure ``parse(value, loc, problems) -> converted value``. The closures
check JSON types (a mismatch raises ``SerializationException`` at once), convert blobs and
timestamps, and test the model's constraints with a single combined comparison on the happy path.
Only when that comparison fails does the slower reporting code run (:mod:`._shape_report`), which
renders the member path from ``loc`` and appends ``(path, message)`` to ``problems`` in AWS's
wording.

``loc`` is the location of ``value``: ``None`` for the request body itself, a member name for a
top-level member, or a ``(parent loc, segment)`` pair built as the parser descends, where a segment
is a member name, a map key, or a 0-based list index. Paths are only rendered when reporting.
"""

from __future__ import annotations

import binascii
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

from strongroom.api._shape_report import (
    NULL_TEXT,
    Checks,
    Loc,
    Problems,
    mistyped,
    path_of,
    problem,
    serialization_error,
    show_nothing,
    show_scalar,
    show_short,
)

__all__ = ["Loc", "Parser", "Problems", "ShapeCompiler", "path_of", "serialization_error"]

#: Compiles a pattern from the model (Java syntax) into a regex; its ``fullmatch`` is used.
PatternCompiler: TypeAlias = Callable[[str], "re.Pattern[str]"]

Parser: TypeAlias = Callable[[Any, "Loc | None", Problems], Any]

_WIRE_RANGE = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_NO_MAX = sys.maxsize


class ShapeCompiler:
    """Compiles the shapes of one botocore service model, each shape once."""

    def __init__(
        self, shapes: Mapping[str, Mapping[str, Any]], compile_pattern: PatternCompiler
    ) -> None:
        self._shapes = shapes
        self._compile_pattern = compile_pattern
        self._parsers: dict[str, Parser] = {}
        self._plain: dict[str, type] = {}  # shapes whose parse is a bare type check
        self._in_progress: set[str] = set()
        self._printable: dict[str, bool] = {}

    def compile(self, name: str) -> Parser:
        """The parser of shape ``name``."""
        parser = self._parsers.get(name)
        if parser is not None:
            return parser
        if name in self._in_progress:
            raise ValueError(f"shape {name!r} is recursive through a list or map")
        self._in_progress.add(name)
        shape = self._shapes[name]
        kind = shape["type"]
        if kind == "structure":
            parser = self._structure(name, shape)
        elif kind == "list":
            parser = self._list(name, shape)
        elif kind == "map":
            parser = self._map(name, shape)
        else:
            parser = self._scalar(name, shape)
        self._in_progress.discard(name)
        self._parsers[name] = parser
        return parser

    # -- reporting helpers -------------------------------------------------------------------

    def _is_printable(self, name: str) -> bool:
        """Whether values of the shape may appear in messages (no blob, nothing sensitive)."""
        known = self._printable.get(name)
        if known is not None:
            return known
        self._printable[name] = True  # provisional, breaks cycles
        shape = self._shapes[name]
        children = [m["shape"] for m in shape.get("members", {}).values()]
        children += [shape[k]["shape"] for k in ("member", "key", "value") if k in shape]
        ok = not shape.get("sensitive") and shape["type"] != "blob"
        ok = ok and all(self._is_printable(child) for child in children)
        self._printable[name] = ok
        return ok

    def _checks(self, name: str, shape: Mapping[str, Any], length: bool) -> Checks | None:
        kind = shape["type"]
        unbounded = (0, _NO_MAX) if length else (-float("inf"), float("inf"))
        lo, hi = _WIRE_RANGE.get(kind, unbounded)
        lo = shape.get("min", lo)
        hi = shape.get("max", hi)
        enum = shape.get("enum")
        pattern = shape.get("pattern")
        if "min" not in shape and "max" not in shape and enum is None and pattern is None:
            return None
        word = "length" if length else "value"
        texts = (
            f"Member must have {word} greater than or equal to {shape.get('min')}",
            f"Member must have {word} less than or equal to {shape.get('max')}",
            f"Member must satisfy enum value set: [{', '.join(enum or ())}]",
            f"Member must satisfy regular expression pattern: {pattern}",
        )
        if not self._is_printable(name):
            show = show_nothing
        elif kind in ("list", "map"):
            show = show_short
        else:
            show = show_scalar
        match = self._compile_pattern(pattern).fullmatch if pattern is not None else None
        return Checks(lo, hi, frozenset(enum) if enum else None, match, texts, show)

    # -- containers --------------------------------------------------------------------------

    def _structure(self, name: str, shape: Mapping[str, Any]) -> Parser:
        members: dict[str, tuple[str, Parser, str]] = {}

        def parse(value: Any, loc: Loc | None, problems: Problems) -> Any:
            if type(value) is not dict:
                return mistyped(value, loc, problems, "an object")
            out = {}
            for key, item in value.items():
                member = members.get(key)
                if member is None or item is None:
                    continue  # unknown members are ignored, null means absent
                out_name, member_parse, seg = member
                out[out_name] = member_parse(item, seg if loc is None else (loc, seg), problems)
            for out_name, seg in required:
                if out_name not in out:
                    path = path_of(seg if loc is None else (loc, seg))
                    problem(problems, path, " null", NULL_TEXT)
            return out

        # Registered before the members compile, so recursive structures refer to themselves.
        self._parsers[name] = parse
        self._in_progress.discard(name)
        required_names = set(shape.get("required", ()))
        req: list[tuple[str, str]] = []
        for member_name, ref in shape.get("members", {}).items():
            wire = ref.get("locationName", member_name)
            seg = member_name[:1].lower() + member_name[1:]
            members[wire] = (member_name, self.compile(ref["shape"]), seg)
            if member_name in required_names:
                req.append((member_name, seg))
        required = tuple(req)
        return parse

    def _list(self, name: str, shape: Mapping[str, Any]) -> Parser:
        element_shape = shape["member"]["shape"]
        element = self.compile(element_shape)
        plain = self._plain.get(element_shape)
        checks = self._checks(name, shape, length=True)
        lo, hi = (checks.lo, checks.hi) if checks else (0, _NO_MAX)

        def parse(value: Any, loc: Loc | None, problems: Problems) -> Any:
            if type(value) is not list:
                return mistyped(value, loc, problems, "a list")
            if plain is not None and all(type(item) is plain for item in value):
                out = list(value)
            else:
                out = [element(item, (loc, i), problems) for i, item in enumerate(value)]
            if checks is not None and not lo <= len(value) <= hi:
                checks.report(value, len(value), loc, problems)
            return out

        return parse

    def _map(self, name: str, shape: Mapping[str, Any]) -> Parser:
        key_shape, value_shape = shape["key"]["shape"], shape["value"]["shape"]
        self.compile(key_shape)  # a map key is a string; fail loudly on anything else
        if self._shapes[key_shape]["type"] != "string":
            raise ValueError(f"map key shape {key_shape!r} is not a string")
        key_checks = self._checks(key_shape, self._shapes[key_shape], length=True)
        element = self.compile(value_shape)
        plain = self._plain.get(value_shape)
        checks = self._checks(name, shape, length=True)
        lo, hi = (checks.lo, checks.hi) if checks else (0, _NO_MAX)
        fast = key_checks is None and plain is not None

        def bad_key(key: str, loc: Loc | None, problems: Problems) -> None:
            assert key_checks is not None
            failed = key_checks.failed(key, len(key))
            if failed:
                text = "Map keys must satisfy constraint: [" + ", ".join(failed) + "]"
                problem(problems, path_of(loc), key_checks.show(key), text)

        def parse(value: Any, loc: Loc | None, problems: Problems) -> Any:
            if type(value) is not dict:
                return mistyped(value, loc, problems, "an object")
            if fast and all(type(item) is plain for item in value.values()):
                out = dict(value)
            else:
                out = {}
                for key, item in value.items():
                    if key_checks is not None:
                        bad_key(key, loc, problems)
                    out[key] = element(item, (loc, key), problems)
            if checks is not None and not lo <= len(value) <= hi:
                checks.report(value, len(value), loc, problems)
            return out

        return parse

    # -- scalars -----------------------------------------------------------------------------

    def _scalar(self, name: str, shape: Mapping[str, Any]) -> Parser:
        kind = shape["type"]
        if kind == "string":
            return self._string(name, shape)
        if kind == "blob":
            return self._blob(name, shape)
        if kind in ("integer", "long"):
            return self._integer(name, shape)
        if kind in ("float", "double"):
            return self._number(name, shape)
        if kind == "boolean":
            self._plain[name] = bool
            return _boolean
        if kind == "timestamp":
            return _timestamp
        raise ValueError(f"shape {name!r} has unsupported type {kind!r}")

    def _string(self, name: str, shape: Mapping[str, Any]) -> Parser:
        checks = self._checks(name, shape, length=True)
        if checks is None:
            self._plain[name] = str
            return _string
        lo, hi, enum, match = checks.lo, checks.hi, checks.enum, checks.match

        def parse(value: Any, loc: Loc | None, problems: Problems) -> Any:
            if type(value) is not str:
                return mistyped(value, loc, problems, "a string")
            if (
                lo <= len(value) <= hi
                and (enum is None or value in enum)
                and (match is None or match(value) is not None)
            ):
                return value
            checks.report(value, len(value), loc, problems)
            return value

        return parse

    def _blob(self, name: str, shape: Mapping[str, Any]) -> Parser:
        checks = self._checks(name, shape, length=True)
        lo, hi = (checks.lo, checks.hi) if checks else (0, _NO_MAX)
        decode = binascii.a2b_base64

        def parse(value: Any, loc: Loc | None, problems: Problems) -> Any:
            if type(value) is not str:
                return mistyped(value, loc, problems, "a base64 string")
            try:
                data = decode(value, strict_mode=True)
            except (binascii.Error, ValueError):
                path = path_of(loc)
                raise serialization_error(f"Value at '{path}' is not valid base64") from None
            if checks is not None and not lo <= len(data) <= hi:
                checks.report(data, len(data), loc, problems)
            return data

        return parse

    def _integer(self, name: str, shape: Mapping[str, Any]) -> Parser:
        wire_lo, wire_hi = _WIRE_RANGE[shape["type"]]
        checks = self._checks(name, shape, length=False)
        lo, hi = (checks.lo, checks.hi) if checks else (wire_lo, wire_hi)

        def parse(value: Any, loc: Loc | None, problems: Problems) -> Any:
            if type(value) is not int:
                return mistyped(value, loc, problems, "an integer")
            if lo <= value <= hi:
                return value
            if not wire_lo <= value <= wire_hi:
                kind = shape["type"]
                raise serialization_error(f"Value at '{path_of(loc)}' is out of range for {kind}")
            assert checks is not None
            checks.report(value, value, loc, problems)
            return value

        return parse

    def _number(self, name: str, shape: Mapping[str, Any]) -> Parser:
        checks = self._checks(name, shape, length=False)
        lo, hi = (checks.lo, checks.hi) if checks else (-float("inf"), float("inf"))

        def parse(value: Any, loc: Loc | None, problems: Problems) -> Any:
            kind = type(value)
            if kind is not float and kind is not int:
                return mistyped(value, loc, problems, "a number")
            if checks is not None and not lo <= value <= hi:
                checks.report(value, value, loc, problems)
            return value

        return parse


def _string(value: Any, loc: Loc | None, problems: Problems) -> Any:
    if type(value) is not str:
        return mistyped(value, loc, problems, "a string")
    return value


def _boolean(value: Any, loc: Loc | None, problems: Problems) -> Any:
    if type(value) is not bool:
        return mistyped(value, loc, problems, "a boolean")
    return value


def _timestamp(value: Any, loc: Loc | None, problems: Problems) -> Any:
    kind = type(value)
    try:
        if kind is int or kind is float:
            return float(value)
        if kind is str:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    except (ValueError, OverflowError):
        raise serialization_error(f"Value at '{path_of(loc)}' is not a valid timestamp") from None
    return mistyped(value, loc, problems, "a timestamp")
