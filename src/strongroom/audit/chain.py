"""The trail's hash chain and its signed digests: pure functions, shared by writer and verifier.

Entry ``n`` hashes as ``SHA-256(hash[n-1] || n as 8 bytes big-endian || kind || 0x0a || body)``
with ``hash[0]`` = 32 zero bytes, so changing, removing, inserting or reordering any entry
changes every later hash. A digest is canonical JSON naming the entries it covers
(``firstSeq``..``lastSeq``), the chain hash at ``lastSeq``, the previous digest's hash, the time
and the signing key's fingerprint; it is signed with the trail key, and its own hash
(``SHA-256(body || signature)``) is what the next digest names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ["GENESIS", "digest_body", "digest_hash", "entry_hash"]

GENESIS = "0" * 64
_encoder = msgspec.json.Encoder(order="sorted")


def entry_hash(prev_hex: str, seq: int, kind: str, body: bytes) -> str:
    h = hashlib.sha256(bytes.fromhex(prev_hex))
    h.update(seq.to_bytes(8, "big"))
    h.update(kind.encode("ascii") + b"\n")
    h.update(body)
    return h.hexdigest()


def digest_body(fields: Mapping[str, Any]) -> bytes:
    return _encoder.encode(dict(fields))


def digest_hash(body: bytes, signature_hex: str) -> str:
    return hashlib.sha256(body + bytes.fromhex(signature_hex)).hexdigest()
