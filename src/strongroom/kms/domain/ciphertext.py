"""The symmetric ciphertext blob: versioned, self-describing, parsed with every length checked.

Layout (all integers big-endian)::

    0       1 byte   format version (1)
    1       1 byte   key store kind (1 = Strongroom software store, 2 = CloudHSM key store)
    2       1 byte   n = length of the key id (ASCII)
    3       n bytes  key id
    3+n     4 bytes  key material version
    7+n    16 bytes  per-message salt
    23+n   12 bytes  nonce
    35+n    rest     AES-256-GCM ciphertext || 16-byte tag

Everything before the ciphertext is the *header*. The header and the canonical encoding of the
encryption context (``canonical_context``) are the AAD, so no header byte can change unnoticed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "FORMAT_VERSION",
    "KIND_CLOUDHSM",
    "KIND_SOFTWARE",
    "BlobHeader",
    "MalformedBlob",
    "canonical_context",
    "encode_header",
    "parse_blob",
]

FORMAT_VERSION = 1
KIND_SOFTWARE = 1
KIND_CLOUDHSM = 2
_SALT = 16
_NONCE = 12
_TAG = 16
_U32 = struct.Struct(">I")


class MalformedBlob(Exception):
    """The bytes are not a Strongroom ciphertext blob."""


@dataclass(frozen=True, slots=True)
class BlobHeader:
    """The parsed, authenticated-but-not-yet-verified header of a blob."""

    kind: int
    key_id: str
    material_version: int
    salt: bytes
    nonce: bytes
    header: bytes
    body: bytes


def encode_header(
    kind: int, key_id: str, material_version: int, salt: bytes, nonce: bytes
) -> bytes:
    """The header bytes of a new blob (the caller appends ciphertext and tag)."""
    kid = key_id.encode("ascii")
    if len(kid) > 255 or len(salt) != _SALT or len(nonce) != _NONCE:
        raise ValueError("bad header field size")
    return (
        bytes((FORMAT_VERSION, kind, len(kid))) + kid + _U32.pack(material_version) + salt + nonce
    )


def parse_blob(blob: bytes) -> BlobHeader:
    """Split a blob into header fields and body; raise :class:`MalformedBlob` if it is not one."""
    if len(blob) < 3 or blob[0] != FORMAT_VERSION or blob[1] not in (KIND_SOFTWARE, KIND_CLOUDHSM):
        raise MalformedBlob("unknown blob format")
    n = blob[2]
    end = 3 + n + 4 + _SALT + _NONCE
    if n == 0 or len(blob) < end + _TAG:
        raise MalformedBlob("blob too short")
    try:
        key_id = blob[3 : 3 + n].decode("ascii")
    except UnicodeDecodeError as exc:
        raise MalformedBlob("bad key id") from exc
    (version,) = _U32.unpack_from(blob, 3 + n)
    salt_at = 7 + n
    return BlobHeader(
        kind=blob[1],
        key_id=key_id,
        material_version=version,
        salt=blob[salt_at : salt_at + _SALT],
        nonce=blob[salt_at + _SALT : end],
        header=blob[:end],
        body=blob[end:],
    )


def canonical_context(context: dict[str, str] | None) -> bytes:
    """An injective byte encoding of an encryption context.

    Pairs are sorted by the UTF-8 bytes of their keys; each key and value is length-prefixed,
    and the pair count leads, so ``{"ab": "c"}`` and ``{"a": "bc"}`` never encode alike and pair
    order does not matter. The empty and the absent context encode alike, as in AWS KMS.
    """
    if not context:
        return b"\x00\x00\x00\x00"
    items = sorted(
        (k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass"))
        for k, v in context.items()
    )
    parts = [_U32.pack(len(items))]
    for key, value in items:
        parts += (_U32.pack(len(key)), key, _U32.pack(len(value)), value)
    return b"".join(parts)
