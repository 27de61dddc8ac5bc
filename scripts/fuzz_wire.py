#!/usr/bin/env python3
"""Fuzz the wire edge of a real ``strongroom serve``: every answer to bad input must be an
AWS-shaped 4xx error, never a 5xx, a dropped connection, a traceback or a dead server.

    .venv/bin/python scripts/fuzz_wire.py [--seconds 60] [--cases 20000] [--seed N] [--workers N]
        [--database-url postgresql://127.0.0.1:5432/DB] [--tls]

Starts its own ``serve`` on a free 127.0.0.1 port in a temporary data dir (stopped by PID at
the end), creates real keys of every kind, a grant, an alias and ciphertexts, then sends signed
requests to every operation of the KMS, CloudTrail and CloudHSM models (botocore's), the bodies
made by scripts/fuzz_inputs.py: mostly well-formed (so calls reach the service), one thing broken
in many (a member of the wrong type, out of range, missing, deeply nested, a lone surrogate,
...), some not JSON at all; plus header faults (no or broken signature, unknown target, wrong
service in the credential scope, an oversized body) and STS Query requests. Each answer is
checked: status below 500, a request id, JSON 1.1 errors as ``{"__type": str, "message": str}``,
Query errors as XML. At the end the server must still answer and its log must hold no
traceback. Exit status 1 on any failure; each failure is printed with what reproduces it.
With ``--tls`` the server serves HTTPS (``--tls-self-signed``) and every request goes over TLS,
but for some raw ones sent onto TCP without it. Bounded by ``--cases`` and ``--seconds``;
traffic only to 127.0.0.1. The server itself: scripts/fuzz_serve.py.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import random
import re
import socket
import ssl
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from botocore.loaders import Loader

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz_inputs
from fuzz_serve import (
    Endpoint,
    http_connection,
    log_problems,
    open_socket,
    serve,
)

__all__ = ["Endpoint", "fuzz", "log_problems"]
REGION = "us-east-1"
JSON_TYPE = "application/x-amz-json-1.1"
IDLE_SECONDS = 4.0  # a keep-alive connection idle this long is opened anew
#: botocore model -> (X-Amz-Target prefix, signing name)
SERVICES = {
    "kms": ("TrentService", "kms"),
    "cloudtrail": ("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101", "cloudtrail"),
    "cloudhsmv2": ("BaldrApiService", "cloudhsm"),
}
#: operations that would start HSM node processes when they succeed
SKIP = {"cloudhsmv2": {"CreateHsm", "InitializeCluster"}}


@dataclass
class Report:
    cases: int = 0
    seconds: float = 0.0
    categories: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{self.cases} cases in {self.seconds:.1f} s, {len(self.failures)} failures"]
        out.append("statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items())))
        out.append(
            "categories: " + ", ".join(f"{k} {v}" for k, v in sorted(self.categories.items()))
        )
        out.append("top errors: " + ", ".join(f"{k} {v}" for k, v in self.codes.most_common(12)))
        return out + [f"FAILURE {f}" for f in self.failures[:50]]


class Wire:
    """One keep-alive HTTP connection that signs what it sends (or not, on purpose)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.conn = http_connection(endpoint)
        self.used = time.monotonic()

    def post(
        self, body: bytes, headers: dict[str, str], sign: str | None, region: str = REGION
    ) -> tuple[int, dict[str, str], bytes]:
        if sign is not None:
            request = AWSRequest("POST", f"{self.endpoint.url}/", headers, body)
            creds = Credentials(self.endpoint.akid, self.endpoint.secret)
            SigV4Auth(creds, sign, region).add_auth(request)
            headers = dict(request.headers.items())
        if time.monotonic() - self.used > IDLE_SECONDS:
            self.conn.close()  # as HTTP clients do: the server ends idle connections (5 s)
        self.used = time.monotonic()
        try:
            self.conn.request("POST", "/", body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        if resp.getheader("connection", "").lower() == "close":
            self.conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def check(status: int, headers: dict[str, str], data: bytes, query: bool) -> str:
    """What is wrong with an answer ('' if nothing)."""
    if status >= 500:
        return f"status {status}: {data[:300]!r}"
    if "x-amzn-requestid" not in headers and status != 413:
        return "no x-amzn-requestid header"
    if query:
        if status >= 400 and b"<Code>" not in data:
            return f"Query error without <Code>: {data[:300]!r}"
        return ""
    if headers.get("content-type") != JSON_TYPE:
        return f"content-type {headers.get('content-type')!r}"
    try:
        decoded = json.loads(data)
    except ValueError:
        return f"body is not JSON: {data[:300]!r}"
    if not isinstance(decoded, dict):
        return f"body is not a JSON object: {data[:300]!r}"
    if status >= 400 and not (
        isinstance(decoded.get("__type"), str) and isinstance(decoded.get("message"), str)
    ):
        return f"error body not AWS-shaped: {data[:300]!r}"
    return ""


def boto_client(endpoint: Endpoint, service: str = "kms") -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint.url,
        region_name=REGION,
        verify=endpoint.cafile or True,
        aws_access_key_id=endpoint.akid,
        aws_secret_access_key=endpoint.secret,
        config=BotoConfig(retries={"max_attempts": 1}),
    )


def json_case(
    rng: random.Random, inputs: dict[str, fuzz_inputs.Inputs]
) -> tuple[str, str, str, bytes]:
    """(category, signing name, target, body) of one JSON 1.1 request."""
    model = rng.choice(list(inputs))
    prefix, signing = SERVICES[model]
    gen = inputs[model]
    operation = rng.choice([o for o in gen.operations if o not in SKIP.get(model, ())])
    body = gen.body(operation)
    roll = rng.random()
    if roll < 0.35:
        return f"{model}:valid", signing, f"{prefix}.{operation}", json.dumps(body).encode()
    if roll < 0.9:
        what, broken = fuzz_inputs.mutate(body, rng)
        return f"{model}:{what}", signing, f"{prefix}.{operation}", fuzz_inputs.encode(broken)
    what, raw = rng.choice(fuzz_inputs.raw_bodies(rng))
    return f"raw:{what}", signing, f"{prefix}.{operation}", raw


AUTH_GARBAGE = [
    "AWS4-HMAC-SHA256",
    "Basic Zm9vOmJhcg==",
    "AWS4-HMAC-SHA256 Credential=/,,,",
    "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/kms/aws4_request, "
    "SignedHeaders=host, Signature=00",
    "\u00ff" * 100,
]
BAD_TARGETS = ["TrentService.Nope", "Nope.ListKeys", "TrentService.", ".", "\u00ff\u00fe"]


def header_case(rng: random.Random) -> tuple[str, dict[str, str], bytes, str | None]:
    """(category, headers, body, signing name or None) of a request with a header fault."""
    body = b'{"Limit": 1}'
    base = {"Content-Type": JSON_TYPE, "X-Amz-Target": "TrentService.ListKeys"}
    garbage = {**base, "Authorization": rng.choice(AUTH_GARBAGE)}
    target = {**base, "X-Amz-Target": rng.choice(BAD_TARGETS)}
    content_type = {**base, "Content-Type": rng.choice(["text/plain", "", "\u00e9"])}
    cases: list[tuple[str, dict[str, str], bytes, str | None]] = [
        ("unsigned", base, body, None),
        ("auth-garbage", garbage, body, None),
        ("no-target", {"Content-Type": JSON_TYPE}, body, "kms"),
        ("unknown-target", target, body, "kms"),
        ("scope-service", base, body, rng.choice(["sts", "cloudhsm", "s3", ""])),
        ("content-type", content_type, body, "kms"),
        ("oversized", base, b'{"Plaintext": "' + b"A" * 70_000 + b'"}', "kms"),
    ]
    return rng.choice(cases)


def http_case(rng: random.Random) -> tuple[str, bytes]:
    """(category, raw bytes) of a request broken at the HTTP level."""
    head = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: TrentService.ListKeys\r\n")  # fmt: skip
    chunk = b"8000\r\n" + b"a" * 0x8000 + b"\r\n"
    cases = [
        ("big-head", head + b"X-Big: " + b"a" * rng.choice([70_000, 1_000_000]) + b"\r\n\r\n"),
        ("many-headers", head + b"".join(b"X-%d: 1\r\n" % i for i in range(5000)) + b"\r\n"),
        ("bad-chunked", head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
        (
            "chunked-over-cap",
            head + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 3 + b"0\r\n\r\n",
        ),
        ("short-body", head + b"Content-Length: 100\r\n\r\n{}"),
        ("negative-length", head + b"Content-Length: -5\r\n\r\n{}"),
        ("both-lengths", head + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}"),
        ("garbage", rng.randbytes(rng.randrange(1, 300))),
        ("http10", b"POST / HTTP/1.0\r\n\r\n"),
        ("get-root", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("get-metrics", b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("pipelined", (head + b"Content-Length: 2\r\n\r\n{}") * 50),
    ]
    return rng.choice(cases)


def send_raw(endpoint: Endpoint, data: bytes, tls: bool = True) -> list[int]:
    """Send raw bytes on a new connection, close its write side, and read every status line.
    Over TLS when the endpoint is HTTPS (``tls`` False: the bytes go straight onto TCP)."""
    received = b""
    with open_socket(endpoint, tls) as sock:
        with contextlib.suppress(OSError):  # the server may refuse and close mid-send
            sock.sendall(data)
            if not isinstance(sock, ssl.SSLSocket):  # a TLS socket cannot half-close
                sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                received += chunk
    return [int(status) for status in re.findall(rb"HTTP/1\.[01] (\d{3}) ", received)]


def query_case(rng: random.Random, account: str) -> tuple[str, bytes]:
    action = rng.choice(["AssumeRole", "GetCallerIdentity", "GetSessionToken", "Nope", ""])
    params = {"Action": action, "Version": rng.choice(["2011-06-15", "1999-01-01", ""])}
    if rng.random() < 0.7:
        params["RoleArn"] = rng.choice([f"arn:aws:iam::{account}:role/none", "x", "\u00e9" * 300])
        params["RoleSessionName"] = rng.choice(["fuzz", "", "a" * 100, "bad name!"])
        params["DurationSeconds"] = rng.choice(["900", "-1", "99999999999", "x", ""])
    if rng.random() < 0.3:
        params["Policy"] = rng.choice(["{", "[]", "null", "x" * 3000])
    body = urllib.parse.urlencode(params).encode()
    if rng.random() < 0.1:
        body = rng.randbytes(rng.randrange(1, 200))
    return f"sts:{action or 'none'}", body


def fuzz(endpoint: Endpoint, account: str, seed: int, cases: int, seconds: float) -> Report:
    """Run up to ``cases`` requests or ``seconds``, whichever ends first."""
    rng = random.Random(seed)
    kms = boto_client(endpoint)
    pool = fuzz_inputs.build_pool(kms, account)
    loader = Loader()
    inputs = {
        name: fuzz_inputs.Inputs(loader.load_service_model(name, "service-2"), rng, pool)
        for name in SERVICES
    }
    report = Report()
    wire = Wire(endpoint)
    started = time.monotonic()
    while report.cases < cases and time.monotonic() - started < seconds:
        report.cases += 1
        if report.cases % 300 == 0:
            fuzz_inputs.repair(kms, pool)
        roll = rng.random()
        if roll > 0.98:
            http_round(rng, endpoint, report)
        elif not request_round(rng, roll, wire, inputs, account, report):
            wire = Wire(endpoint)
    report.seconds = time.monotonic() - started
    if not kms.list_keys(Limit=1)["Keys"]:
        report.failures.append("the server no longer lists keys after the run")
    return report


def http_round(rng: random.Random, endpoint: Endpoint, report: Report) -> None:
    """One request broken at the HTTP level, on a connection of its own; against HTTPS, some
    go onto the TCP connection without TLS (plain HTTP, bytes that are no handshake)."""
    category, raw = http_case(rng)
    plain = bool(endpoint.cafile) and rng.random() < 0.3
    if plain:
        category = f"no-tls:{category}"
        raw = raw if rng.random() < 0.5 else rng.randbytes(rng.randrange(1, 600))
    report.categories["http"] += 1
    try:
        statuses = send_raw(endpoint, raw, tls=not plain)
    except OSError as exc:
        report.failures.append(f"http:{category}: {exc!r}")
        return
    report.statuses.update(statuses)
    if any(status >= 500 for status in statuses):
        report.failures.append(f"http:{category} answered {statuses}: {raw[:300]!r}")


def request_round(
    rng: random.Random,
    roll: float,
    wire: Wire,
    inputs: dict[str, fuzz_inputs.Inputs],
    account: str,
    report: Report,
) -> bool:
    """One request on the keep-alive connection; False if the connection broke."""
    query = False
    sign: str | None
    if roll < 0.8:
        category, sign, target, body = json_case(rng, inputs)
        headers = {"Content-Type": JSON_TYPE, "X-Amz-Target": target}
    elif roll < 0.88:
        category, headers, body, sign = header_case(rng)
        category = f"header:{category}"
    else:
        category, body = query_case(rng, account)
        headers, sign, query = {"Content-Type": "application/x-www-form-urlencoded"}, "sts", True
    region = REGION if rng.random() < 0.9 else rng.choice(["eu-west-1", "xx-none-9"])
    report.categories[category.split(":")[0]] += 1
    repro = f"{category} headers={headers!r} body={body[:400]!r}"
    try:
        status, got, data = wire.post(body, headers, sign, region)
    except (OSError, http.client.HTTPException) as exc:
        report.failures.append(f"no answer ({exc!r}): {repro}")
        return False
    report.statuses[status] += 1
    with contextlib.suppress(ValueError, AttributeError):
        report.codes[str(json.loads(data).get("__type"))] += 1
    problem = check(status, got, data, query)
    if problem:
        report.failures.append(f"{problem}: {repro}")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    parser.add_argument("--log", type=Path, help="keep serve's log here")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers N")
    parser.add_argument("--tls", action="store_true", help="serve --tls-self-signed: HTTPS")
    parser.add_argument(
        "--database-url", default="", help="serve --database-url URL (a fresh database)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strongroom-fuzz-log-") as tmp:
        log = args.log or Path(tmp) / "serve.log"
        with serve(log, args.workers, args.database_url, args.tls) as endpoint:
            report = fuzz(endpoint, "111122223333", args.seed, args.cases, args.seconds)
        problems = log_problems(log.read_text(errors="replace"))
        print(f"seed {args.seed}")
        print("\n".join(report.lines()))
        for line in problems[:20]:
            print(f"LOG {line}")
    return 1 if report.failures or problems else 0


if __name__ == "__main__":
    sys.exit(main())
