"""AWS Signature Version 4 verification for Strongroom's AWS-compatible endpoints.

:class:`Verifier` checks a request signed the way botocore's ``SigV4Auth`` (``Authorization``
header) or ``SigV4QueryAuth`` (presigned query string) signs it, and returns the
:class:`SignedIdentity` it proves. It is pure: no I/O, no clock (the caller passes ``now``), and
its only state is a bounded LRU cache of derived signing keys owned by the instance.

Canonical form, as AWS documents it for services other than S3 and as botocore computes it:

* URI: the path as sent, dot segments and empty segments removed, then URI-encoded once more
  (so ``%`` becomes ``%25``); an empty path is ``/``.
* Query: every ``name=value`` pair percent-decoded to bytes, re-encoded with the unreserved set
  ``A-Z a-z 0-9 - _ . ~``, sorted by name then value (``+`` is a literal plus, never a space).
* Headers: the names listed in SignedHeaders, in that order; repeated values joined with ``,``;
  each value stripped and its inner runs of whitespace collapsed to one space.
* Payload: hex SHA-256 of the body, or the value of ``X-Amz-Content-SHA256`` when sent
  (``UNSIGNED-PAYLOAD`` or a hex hash that must then match the body).

What the request claims (its Authorization header or presigned query string) is read by
:mod:`strongroom.api._sigv4_claim`, which also lists the error choices where AWS leaves room.
Messages never carry the secret, the expected signature or the canonical request.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

from strongroom.api._sigv4_claim import (
    ALGORITHM,
    TERMINATOR,
    Claim,
    basic,
    clip,
    incomplete,
    invalid,
    read_claim,
    signed_names,
)
from strongroom.errors import AwsError

__all__ = ["SignedIdentity", "Verifier"]

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_UNRESERVED = "-_.~"


@dataclass(frozen=True, slots=True)
class SignedIdentity:
    """Who signed a verified request, and for which credential scope."""

    access_key_id: str
    region: str  # from the credential scope
    service: str  # from the credential scope
    session_token: str | None  # X-Amz-Security-Token if present (verified later by the caller)


def _payload_hash(headers: dict[str, list[str]], body: bytes) -> tuple[str, bool]:
    """The payload line of the canonical request, and whether it is a hash to check."""
    declared = headers.get("x-amz-content-sha256")
    if declared is None:
        return hashlib.sha256(body).hexdigest(), False
    value = ",".join(declared)
    if value == UNSIGNED_PAYLOAD:
        return value, False
    if _HEX_SHA256.fullmatch(value) is None:
        raise incomplete("x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.")
    return value, True


def _derive_signing_key(secret: str, date: str, region: str, service: str) -> _Keyed:
    """The scope's signing key, as HMAC-SHA256 states with the key already absorbed."""
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, TERMINATOR):
        key = hmac.digest(key, part.encode(), "sha256")
    block = key.ljust(64, b"\0")  # a 32-byte key, padded to SHA-256's block (RFC 2104)
    return hashlib.sha256(block.translate(_IPAD)), hashlib.sha256(block.translate(_OPAD))


#: (inner, outer): SHA-256 states after the key XOR ipad / opad blocks
_Keyed = tuple["hashlib._Hash", "hashlib._Hash"]
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


def _hmac_hex(keyed: _Keyed, message: bytes) -> str:
    """HMAC-SHA256 of ``message`` under a derived key: two state copies instead of keying a
    fresh HMAC (4.1 -> 1.6 us a request, timeit), the same bytes as :func:`hmac.digest`."""
    inner = keyed[0].copy()
    inner.update(message)
    outer = keyed[1].copy()
    outer.update(inner.digest())
    return outer.hexdigest()


def _collect_headers(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    collected: dict[str, list[str]] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        values = collected.get(name)
        if values is None:
            collected[name] = [raw_value.decode("latin-1")]
        else:
            values.append(raw_value.decode("latin-1"))
    return collected


def _parse_query(query_string: bytes) -> list[tuple[bytes, bytes]]:
    pairs = []
    for piece in query_string.split(b"&"):
        if piece:
            name, _, value = piece.partition(b"=")
            pairs.append((unquote_to_bytes(name), unquote_to_bytes(value)))
    return pairs


def _canonical_query(pairs: list[tuple[bytes, bytes]], presigned: bool) -> str:
    encoded = sorted(
        (quote_from_bytes(name, _UNRESERVED), quote_from_bytes(value, _UNRESERVED))
        for name, value in pairs
        if not (presigned and name == b"X-Amz-Signature")
    )
    return "&".join(f"{name}={value}" for name, value in encoded)


def _canonical_uri(raw_path: str) -> str:
    if not raw_path or raw_path == "/":  # every JSON-protocol request
        return "/"
    segments: list[str] = []
    for segment in raw_path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    lead = "/" if raw_path.startswith("/") else ""
    trail = "/" if raw_path.endswith("/") and segments else ""
    return quote(lead + "/".join(segments) + trail, safe="/~")


def _canonical_headers(names: list[str], headers: dict[str, list[str]]) -> str:
    lines = []
    for name in names:
        values = headers.get(name)
        if values is None:
            raise invalid()
        lines.append(
            _canonical_line(name, values[0])
            if len(values) == 1 and len(values[0]) <= 512  # the cache holds at most ~0.5 MB
            else name + ":" + ",".join(" ".join(value.split()) for value in values)
        )
    return "\n".join(lines)


#: what SigV4's "trimall" collapses: ASCII white space only. ``str.split()`` would also take
#: U+00A0, U+0085 and U+001C-U+001F, so a signed value could gain them and still verify
#: (found by scripts/fuzz_atheris.py).
_ASCII_SPACE = re.compile(r"[ \t\n\r\x0b\x0c]+")


@functools.lru_cache(maxsize=1024)  # host, content-type, x-amz-target, ... repeat per caller
def _canonical_line(name: str, value: str) -> str:
    """One header's line of the canonical request (inner runs of whitespace made one space)."""
    return name + ":" + _ASCII_SPACE.sub(" ", value).strip(" ")


class Verifier:
    """Verifies AWS SigV4 signatures against secrets found by access key id.

    ``lookup_secret`` maps an access key id to its secret access key, or ``None`` when unknown.
    ``services`` are the credential-scope service names this endpoint accepts. Derived signing
    keys are kept in an LRU cache of ``cache_size`` entries keyed by (secret, date, region,
    service), so a rotated secret never reuses a stale key.
    """

    def __init__(
        self,
        lookup_secret: Callable[[str], str | None],
        services: frozenset[str],
        max_skew_seconds: float = 300.0,
        cache_size: int = 1024,
    ) -> None:
        if not services:
            raise ValueError("services must name at least one credential-scope service")
        self._lookup_secret = lookup_secret
        self._services = services
        self._expected_service = sorted(services)[0]
        self._max_skew = max_skew_seconds
        self._skew_minutes = f"{max_skew_seconds / 60:g}"  # for the skew error messages
        self._signing_key = functools.lru_cache(maxsize=max(cache_size, 0))(_derive_signing_key)

    def verify(
        self,
        method: str,
        raw_path: str,
        query_string: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        now: float,
    ) -> SignedIdentity:
        """Verify one request's signature; raise :class:`AwsError` in AWS's terms if it fails.

        ``raw_path`` is the path exactly as sent (percent-encoded, no query); ``headers`` are the
        raw ASGI pairs; ``now`` is the server's Unix time.
        """
        header_map = _collect_headers(headers)
        pairs = _parse_query(query_string)
        claim = read_claim(pairs, header_map)
        access_key_id, date, region, service = self._check_scope(claim)
        self._check_time(claim, now)
        names = signed_names(claim)
        secret = self._lookup_secret(access_key_id)
        if secret is None:
            raise AwsError(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        payload_hash, check_body = _payload_hash(header_map, body)
        canonical_request = "\n".join(
            (
                method,
                _canonical_uri(raw_path),
                _canonical_query(pairs, claim.presigned),
                _canonical_headers(names, header_map) + "\n",
                claim.signed_headers,
                payload_hash,
            )
        )
        string_to_sign = "\n".join(
            (
                ALGORITHM,
                claim.timestamp,
                f"{date}/{region}/{service}/{TERMINATOR}",
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            )
        )
        keyed = self._signing_key(secret, date, region, service)
        expected = _hmac_hex(keyed, string_to_sign.encode())
        if not hmac.compare_digest(expected.encode(), claim.signature.encode()):
            raise invalid()
        if check_body and not hmac.compare_digest(payload_hash, hashlib.sha256(body).hexdigest()):
            raise AwsError(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        return SignedIdentity(access_key_id, region, service, claim.session_token)

    def _check_scope(self, claim: Claim) -> tuple[str, str, str, str]:
        parts = claim.credential.split("/")
        if len(parts) != 5:
            raise incomplete(
                "Credential must have exactly 5 slash-delimited elements, "
                f"e.g. keyid/date/region/service/term, got '{clip(claim.credential, 256)}'"
            )
        access_key_id, date, region, service, terminator = parts
        if terminator != TERMINATOR:
            raise invalid(
                f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
                f"not '{clip(terminator, 64)}'."
            )
        if service not in self._services:
            raise invalid(
                f"Credential should be scoped to correct service: '{self._expected_service}'. "
            )
        if date != claim.timestamp[:8]:
            raise invalid(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                f"from HTTP: '{clip(date, 64)}' != '{claim.timestamp[:8]}', "
                f"from '{claim.timestamp}'."
            )
        if not region:
            raise invalid("Credential should be scoped to a valid region. ")
        return access_key_id, date, region, service

    def _check_time(self, claim: Claim, now: float) -> None:
        minutes = self._skew_minutes
        if claim.epoch - now > self._max_skew:
            raise invalid(
                f"Signature not yet current: {claim.timestamp} is still later than "
                f"{basic(now + self._max_skew)} ({basic(now)} + {minutes} min.)"
            )
        if claim.expires is not None:
            if now - claim.epoch > claim.expires:
                raise AwsError("AccessDeniedException", "Request has expired")
        elif now - claim.epoch > self._max_skew:
            raise invalid(
                f"Signature expired: {claim.timestamp} is now earlier than "
                f"{basic(now - self._max_skew)} ({basic(now)} - {minutes} min.)"
            )
