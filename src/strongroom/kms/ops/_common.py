"""Helpers shared by the KMS operation families: handler type, pagination, dry runs, tags."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any

from strongroom.errors import AwsError
from strongroom.kms.service import Kms, RequestContext

__all__ = [
    "Handler",
    "Request",
    "Response",
    "check_dry_run",
    "check_tag_key",
    "check_tags",
    "decode_marker",
    "encode_marker",
    "page_limit",
]

Request = dict[str, Any]
Response = dict[str, Any]
Handler = Callable[[Kms, RequestContext, Request], Response]

MAX_TAGS = 50
_MARKER = "strongroom/v1/"
_MARKER_CHARS = re.compile(rb"[A-Za-z0-9_-]+=*")


def check_dry_run(req: Mapping[str, Any]) -> None:
    """After every check has passed: a dry run stops here, as AWS answers it."""
    if req.get("DryRun"):
        raise AwsError(
            "DryRunOperationException",
            "The request would have succeeded, but the DryRun option is set.",
        )


def page_limit(req: Mapping[str, Any], default: int, maximum: int) -> int:
    """The Limit of a list call; above the documented maximum it is clamped as AWS does."""
    limit = req.get("Limit")
    return default if limit is None else min(int(limit), maximum)


def encode_marker(kind: str, position: str) -> str:
    """An opaque pagination marker for a position in a listing of ``kind``."""
    return base64.urlsafe_b64encode(f"{_MARKER}{kind}:{position}".encode()).decode("ascii")


def decode_marker(kind: str, marker: str | None) -> str | None:
    """The position a marker of a ``kind`` listing stands for; InvalidMarkerException for any
    marker this listing did not issue."""
    if marker is None:
        return None
    try:
        text = base64.urlsafe_b64decode(_strict(marker)).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise AwsError("InvalidMarkerException", "Invalid marker") from exc
    prefix = f"{_MARKER}{kind}:"
    if not text.startswith(prefix) or len(text) == len(prefix):
        raise AwsError("InvalidMarkerException", "Invalid marker")
    return text[len(prefix) :]


def _strict(marker: str) -> bytes:
    raw = marker.encode("ascii")
    if not _MARKER_CHARS.fullmatch(raw) or len(raw) % 4:
        raise ValueError("not a marker")
    return raw


def check_tag_key(key: str) -> None:
    """TagException for a tag key with the reserved prefix ``aws:``, in any letter case (AWS
    reserves ``aws:``, ``AWS:`` and every mix of cases)."""
    if key[:4].lower() == "aws:":
        raise AwsError("TagException", "Tags beginning with aws: are reserved")


def check_tags(tags: list[Mapping[str, str]] | None) -> dict[str, str]:
    """Tags of a request as a dict; TagException for reserved or repeated keys."""
    result: dict[str, str] = {}
    for tag in tags or []:
        key, value = tag["TagKey"], tag["TagValue"]
        check_tag_key(key)
        if key in result:
            raise AwsError("TagException", f"Duplicate tag key {key}")
        result[key] = value
    return result
