"""SigV4 verification, property-based (hypothesis).

Any botocore-signed request verifies and no single flip of a signed byte does, for generated
bodies, headers, paths and queries; a session token in a presigned request's header must be
signed; the keyed HMAC states give HMAC-SHA256.

Every request is signed by botocore itself (``tests.api.sigv4_support``), then handed to the
verifier as an ASGI server would.
"""

from __future__ import annotations

import hmac
from dataclasses import replace
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.api import sigv4
from strongroom.api.sigv4 import SignedIdentity
from tests.api.sigv4_support import (
    AKID,
    ANY_REFUSAL,
    ENDPOINT,
    INCOMPLETE,
    KMS_HEADERS,
    TOKEN,
    expect,
    mutations,
    presign,
    presign_with_headers,
    rejected,
    sign,
    verify,
)

# --- property: botocore-signed requests verify; no single signed-byte flip does ---------------

_header_names = st.from_regex(r"x-[a-z0-9][a-z0-9-]{0,12}", fullmatch=True).filter(
    lambda n: n not in {"x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}
)
_header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"), max_size=40
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=300),
    extra=st.dictionaries(_header_names, _header_values, max_size=4),
    token=st.none() | st.text(alphabet="abcdefABCDEF0123456789/+=", min_size=1, max_size=30),
    data=st.data(),
)
def test_property_signed_requests_verify_and_flips_never_do(
    body: bytes, extra: dict[str, str], token: str | None, data: st.DataObject
) -> None:
    req = sign(body=body, headers={**KMS_HEADERS, **extra}, token=token)
    assert verify(req) == SignedIdentity(AKID, "us-east-1", "kms", token)

    signed = req.header(b"authorization").split(b"SignedHeaders=")[1].split(b",")[0].split(b";")
    targets: list[tuple[str, bytes, int]] = [("method", b"", i) for i in range(len(req.method))]
    targets += [("path", b"", i) for i in range(len(req.path))]
    targets += [("body", b"", i) for i in range(len(req.body))]
    targets += [("header", name, i) for name in signed for i in range(len(req.header(name)))]
    targets += [("header", b"authorization", i) for i in range(len(req.header(b"authorization")))]
    kind, name, i = data.draw(st.sampled_from(targets))
    if kind == "method":
        mutated = replace(req, method=dict(mutations(req.method.encode(), [i]))[i].decode())
    elif kind == "path":
        mutated = replace(req, path=dict(mutations(req.path.encode(), [i]))[i].decode())
    elif kind == "body":
        mutated = replace(req, body=dict(mutations(req.body, [i]))[i])
    else:
        mutated = req.with_header(name, dict(mutations(req.header(name), [i]))[i])
    assert rejected(mutated).code in ANY_REFUSAL


_segments = st.lists(
    st.text(alphabet="abcXYZ019-_.~ ", min_size=1, max_size=8).filter(
        lambda s: s not in {".", ".."}
    ),
    max_size=4,
)
_params = st.lists(
    st.tuples(
        st.text(alphabet="abcXYZ019-_.~/+=& %", min_size=1, max_size=6),
        st.text(max_size=10),
    ),
    max_size=4,
)


def _url(segments: list[str], params: list[tuple[str, str]]) -> str:
    path = "/" + "/".join(quote(segment, safe="~") for segment in segments)
    query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in params)
    return ENDPOINT + path + ("?" + query if query else "")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segments=_segments, params=_params, presigned=st.booleans(), data=st.data())
def test_property_paths_and_queries(
    segments: list[str], params: list[tuple[str, str]], presigned: bool, data: st.DataObject
) -> None:
    if presigned:
        req = presign(url=_url(segments, [(k, v) for k, v in params if not k.startswith("X-")]))
    else:
        req = sign(url=_url(segments, params))
    assert verify(req).access_key_id == AKID
    targets = [("path", i) for i in range(len(req.path))]
    targets += [("query", i) for i in range(len(req.query))]
    kind, i = data.draw(st.sampled_from(targets))
    if kind == "path":
        mutated = replace(req, path=dict(mutations(req.path.encode(), [i]))[i].decode())
    else:
        mutated = replace(req, query=dict(mutations(req.query, [i]))[i])
    assert rejected(mutated).code in ANY_REFUSAL


def test_presigned_token_in_a_header_must_be_signed() -> None:
    signed = presign_with_headers({"X-Amz-Security-Token": TOKEN})
    assert verify(signed).session_token == TOKEN
    unsigned = presign().adding_header(b"x-amz-security-token", TOKEN.encode())
    expect(
        unsigned,
        INCOMPLETE,
        "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
    )


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=60), st.binary(max_size=600))
def test_the_keyed_hmac_states_give_hmac_sha256(secret: str, message: bytes) -> None:
    key = ("AWS4" + secret).encode()
    for part in ("20261123", "us-east-1", "kms", "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    keyed = sigv4._derive_signing_key(secret, "20261123", "us-east-1", "kms")
    assert sigv4._hmac_hex(keyed, message) == hmac.digest(key, message, "sha256").hex()
    assert sigv4._hmac_hex(keyed, message) == sigv4._hmac_hex(keyed, message)  # states unspent
