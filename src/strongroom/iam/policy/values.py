"""Typed condition values: numbers, dates, booleans, base64 binaries and IP ranges.

Each ``parse_*`` function returns ``None`` for text that is not a value of its type; the condition
parser turns that into a :class:`PolicyError` for policy values, and the evaluator treats a request
value that does not parse as not matching.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache

__all__ = [
    "IpNetwork",
    "parse_base64",
    "parse_bool",
    "parse_date",
    "parse_ip_address",
    "parse_ip_network",
    "parse_number",
]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_EPOCH = re.compile(r"-?\d+(?:\.\d+)?")
_YEAR = re.compile(r"\d{4}")  # a bare four-digit value is the W3C year profile, not epoch time
# W3C "Date and Time Formats" (a profile of ISO 8601): YYYY, YYYY-MM, YYYY-MM-DD, and
# YYYY-MM-DDThh:mm[:ss[.s+]]TZD; a missing TZD is taken as UTC.
_W3C = re.compile(
    r"(?P<y>\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def parse_number(text: str) -> Decimal | None:
    """An integer or decimal number (``NumericEquals`` and friends)."""
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        return None


def _w3c_seconds(m: re.Match[str]) -> float | None:
    frac = m.group("f") or "0"
    try:
        moment = datetime(
            int(m.group("y")),
            int(m.group("mo") or 1),
            int(m.group("d") or 1),
            int(m.group("h") or 0),
            int(m.group("mi") or 0),
            int(m.group("s") or 0),
            int((frac + "000000")[:6]),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    tz = m.group("tz")
    offset = 0
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        hours, minutes = int(tz[1:3]), int(tz[4:6])
        if hours > 23 or minutes > 59:
            return None
        offset = sign * (hours * 3600 + minutes * 60)
    return moment.timestamp() - offset


def parse_date(text: str) -> float | None:
    """Epoch seconds from a W3C ISO 8601 date/time or epoch seconds (``YYYY`` is a year)."""
    if _EPOCH.fullmatch(text) and not _YEAR.fullmatch(text):
        return float(text)
    m = _W3C.fullmatch(text)
    return None if m is None else _w3c_seconds(m)


def parse_bool(text: str) -> bool | None:
    """``true`` or ``false``, in any case."""
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def parse_base64(text: str) -> bytes | None:
    """Standard, padded base64 (``BinaryEquals``)."""
    if not _BASE64.fullmatch(text):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:  # pragma: no cover - the pattern admits only valid base64
        return None


def parse_ip_network(text: str) -> IpNetwork | None:
    """A CIDR block, IPv4 or IPv6; an address without a prefix is a /32 (or /128)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def parse_ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """One IPv4 or IPv6 address (the request side of ``IpAddress``)."""
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None
