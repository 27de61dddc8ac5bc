"""A plain SigV4 signer for tests that need requests boto3 won't send (raw bodies, old dates)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import time
from typing import Any


def sign(
    body: bytes,
    target: str,
    akid: str,
    secret: str,
    *,
    host: str,
    region: str = "us-east-1",
    service: str = "kms",
    when: float | None = None,
    extra_headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """Headers for ``POST /`` signed with SigV4."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if when is None else when))
    date = stamp[:8]
    headers = {
        "content-type": "application/x-amz-json-1.1",
        "host": host,
        "x-amz-date": stamp,
        "x-amz-target": target,
        **{k.lower(): v for k, v in (extra_headers or {}).items()},
    }
    names = sorted(headers)
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            "".join(f"{n}:{headers[n].strip()}\n" for n in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.digest(key, part.encode(), hashlib.sha256)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={akid}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers


def post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any], bytes]:
    """Send a raw request; returns (status, response headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()
