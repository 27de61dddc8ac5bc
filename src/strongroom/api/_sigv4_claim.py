"""What a SigV4-signed request claims about its signature, read before anything is checked.

:func:`read_claim` takes the ``Authorization`` header (botocore's ``SigV4Auth``) or the
presigned query string (``SigV4QueryAuth``) apart into a :class:`Claim`;
:class:`~strongroom.api.sigv4.Verifier` then checks the scope, the time and the signature.

Error choices where AWS leaves room (all status 400, codes as AWS uses them):

* No date header at all -> ``IncompleteSignatureException`` (listed with any missing
  Authorization parameter); an ``X-Amz-Date`` or ``Date`` that does not parse ->
  ``IncompleteSignatureException`` ("Date must be in ISO-8601 'basic format'. Got ...").
* ``host`` missing from SignedHeaders, or an ``X-Amz-Security-Token`` header that is not signed,
  or both header and query-string authentication in one request -> ``IncompleteSignatureException``.
* A header named in SignedHeaders but absent from the request -> ``InvalidSignatureException``.
* Presigned request past ``X-Amz-Date + X-Amz-Expires`` -> ``AccessDeniedException``
  "Request has expired". A presigned request without ``X-Amz-Expires`` gets the header window
  (``max_skew_seconds`` either side).
* ``X-Amz-Content-SHA256`` not matching the body -> ``XAmzContentSHA256Mismatch`` (S3's code and
  text), checked after the signature.

Echoed Authorization headers have their Signature value redacted.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from time import gmtime, strftime
from typing import NamedTuple

from strongroom.errors import AwsError

__all__ = [
    "ALGORITHM",
    "MAX_PRESIGN_EXPIRES",
    "TERMINATOR",
    "Claim",
    "basic",
    "clip",
    "incomplete",
    "invalid",
    "read_claim",
    "signed_names",
]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
MAX_PRESIGN_EXPIRES = 604_800  # one week, AWS's ceiling for X-Amz-Expires

_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
_AMZ_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")
_SIGNATURE_VALUE = re.compile(r"(Signature\s*=\s*)[^,\s]*")
_QUERY_AUTH_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")


class Claim(NamedTuple):
    """What the request claims about its signature, before anything is checked (a named
    tuple: one is made per request, and a frozen dataclass takes longer to build)."""

    credential: str
    signed_headers: str
    signature: str
    timestamp: str  # ISO-8601 basic, as it enters the string to sign
    epoch: int
    expires: int | None  # presigned only
    session_token: str | None
    token_from_header: bool  # then x-amz-security-token must be a signed header
    presigned: bool


def incomplete(message: str) -> AwsError:
    return AwsError("IncompleteSignatureException", message)


def invalid(message: str = _MISMATCH) -> AwsError:
    return AwsError("InvalidSignatureException", message)


def clip(text: str, limit: int = 512) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _redact(authorization: str) -> str:
    return clip(_SIGNATURE_VALUE.sub(r"\1<redacted>", authorization))


def basic(epoch: float) -> str:
    return strftime("%Y%m%dT%H%M%SZ", gmtime(epoch))


@functools.lru_cache(maxsize=64)  # the requests of one second share their X-Amz-Date
def _parse_amz_date(value: str) -> int:
    match = _AMZ_DATE.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        year, month, day, hour, minute, second = map(int, match.groups())
        return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp())
    except ValueError:
        raise incomplete(
            f"Date must be in ISO-8601 'basic format'. Got '{clip(value, 64)}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None


def _parse_http_date(value: str) -> int:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise incomplete(
            f"Date must be in RFC 7231 'IMF-fixdate' format. Got '{clip(value, 64)}'."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


_AUTH_PARAMS = frozenset(("Credential", "Signature", "SignedHeaders"))


def _header_claim(authorization: str, headers: dict[str, list[str]]) -> Claim:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise incomplete(f"Unsupported AWS 'algorithm': '{clip(algorithm, 64)}'.")
    params: dict[str, str] = {}
    for item in rest.split(","):
        key, equals, value = item.strip().partition("=")
        if not key and not equals:
            continue
        if not equals:
            raise incomplete(
                f"'{clip(key, 64)}' not a valid key=value pair (missing equal-sign) "
                f"in Authorization header: '{_redact(authorization)}'."
            )
        if key in params:
            raise incomplete(
                f"Authorization header has duplicate '{clip(key, 64)}' parameter. "
                f"Authorization={_redact(authorization)}"
            )
        params[key] = value.strip()
    dates = headers.get("x-amz-date") or headers.get("date")
    if dates is None or not params.keys() >= _AUTH_PARAMS:
        problems = [
            f"Authorization header requires '{name}' parameter."
            for name in ("Credential", "Signature", "SignedHeaders")
            if name not in params
        ]
        if dates is None:
            problems.append(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                "header."
            )
        raise incomplete(" ".join(problems) + f" Authorization={_redact(authorization)}")
    if "x-amz-date" in headers:
        timestamp = ",".join(dates)
        epoch = _parse_amz_date(timestamp)
    else:
        epoch = _parse_http_date(",".join(dates))
        timestamp = basic(epoch)
    tokens = headers.get("x-amz-security-token")
    return Claim(
        credential=params["Credential"],
        signed_headers=params["SignedHeaders"],
        signature=params["Signature"],
        timestamp=timestamp,
        epoch=epoch,
        expires=None,
        session_token=",".join(tokens) if tokens is not None else None,
        token_from_header=tokens is not None,
        presigned=False,
    )


def _query_claim(pairs: list[tuple[bytes, bytes]], headers: dict[str, list[str]]) -> Claim:
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name.decode("utf-8", "replace"), []).append(
            value.decode("utf-8", "replace")
        )

    def single(name: str, required: bool = True) -> str | None:
        values = params.get(name)
        if values is None and not required:
            return None
        if values is None or len(values) != 1:
            raise incomplete(
                f"AWS query-string parameters must include '{name}' exactly once. "
                "Re-examine the query-string parameters."
            )
        return values[0]

    algorithm = single("X-Amz-Algorithm")
    if algorithm != ALGORITHM:
        raise incomplete(f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    credential, signed_headers, signature, timestamp = (
        str(single(name))
        for name in ("X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Date")
    )
    expires_text = single("X-Amz-Expires", required=False)
    expires = None
    if expires_text is not None:
        if not expires_text.isdigit() or not expires_text.isascii():
            raise incomplete("X-Amz-Expires must be a non-negative integer")
        expires = int(expires_text)
        if expires > MAX_PRESIGN_EXPIRES:
            raise incomplete(
                f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES}"
            )
    token = single("X-Amz-Security-Token", required=False)
    token_from_header = token is None and "x-amz-security-token" in headers
    if token_from_header:
        token = ",".join(headers["x-amz-security-token"])
    return Claim(
        credential=credential,
        signed_headers=signed_headers,
        signature=signature,
        timestamp=timestamp,
        epoch=_parse_amz_date(timestamp),
        expires=expires,
        session_token=token,
        token_from_header=token_from_header,
        presigned=True,
    )


def read_claim(pairs: list[tuple[bytes, bytes]], headers: dict[str, list[str]]) -> Claim:
    query_auth = any(name.decode("latin-1") in _QUERY_AUTH_PARAMS for name, _ in pairs)
    authorization = ",".join(headers.get("authorization", ())).strip()
    if authorization and query_auth:
        raise incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter "
            "or the Authorization header should be specified"
        )
    if authorization:
        return _header_claim(authorization, headers)
    if query_auth:
        return _query_claim(pairs, headers)
    raise AwsError("MissingAuthenticationTokenException", "Missing Authentication Token")


def signed_names(claim: Claim) -> list[str]:
    names = claim.signed_headers.split(";")
    if "host" not in names:
        raise incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    if claim.token_from_header and "x-amz-security-token" not in names:
        raise incomplete(
            "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization."
        )
    return names
