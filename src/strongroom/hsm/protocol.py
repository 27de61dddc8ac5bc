"""Wire protocol between HSM clients and nodes (documented in docs/hsm-protocol.md).

Over one TLS connection both sides exchange frames: a 4-byte big-endian length, then a MessagePack
array. A request is ``[version, id, op, token, args]``; a response is ``[id, code, message,
result]``. Request ids are chosen by the client; responses may come back in any order, so one
connection carries many concurrent requests.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

__all__ = [
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "FrameReader",
    "FrameTooLarge",
    "RequestIn",
    "RequestOut",
    "ResponseIn",
    "ResponseOut",
    "frame",
]

PROTOCOL_VERSION = 1
MAX_FRAME = 16 * 1024 * 1024
_LEN = struct.Struct(">I")


class RequestOut(msgspec.Struct, array_like=True):
    """A request as the client encodes it."""

    v: int
    id: int
    op: str
    token: bytes | None
    args: Any


class RequestIn(msgspec.Struct, array_like=True):
    """A request as the node decodes it (arguments decoded later, by operation)."""

    v: int
    id: int
    op: str
    token: bytes | None
    args: msgspec.Raw


class ResponseOut(msgspec.Struct, array_like=True):
    """A response as the node encodes it."""

    id: int
    code: int
    message: str
    result: Any


class ResponseIn(msgspec.Struct, array_like=True):
    """A response as the client decodes it (result decoded later, by operation)."""

    id: int
    code: int
    message: str
    result: msgspec.Raw


class FrameTooLarge(Exception):
    """A peer announced a frame over :data:`MAX_FRAME`."""


def frame(payload: bytes) -> bytes:
    """Length-prefix a payload."""
    return _LEN.pack(len(payload)) + payload


class FrameReader:
    """Accumulates received bytes and yields complete frame payloads."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every payload now complete."""
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size > MAX_FRAME:
                raise FrameTooLarge(f"frame of {size} bytes")
            if end - pos - 4 < size:
                break
            out.append(bytes(buf[pos + 4 : pos + 4 + size]))
            pos += 4 + size
        if pos:
            del buf[:pos]
        return out
