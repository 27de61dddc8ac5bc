#!/usr/bin/env python3
"""Audit completeness and secret hygiene under load (reliability figures A1 and S9).

    .venv/bin/python scripts/audit_completeness.py [--requests 100000] [--seconds 900]
        [--threads 8] [--workers 2]

Starts its own ``strongroom serve`` (scripts/fuzz_serve.py: a free 127.0.0.1 port, a temporary
data dir, stopped by its PID) and sends ``--requests`` signed calls over keep-alive
connections, a mix in every ten: four Encrypts, two GenerateDataKeys and one Decrypt (each
plaintext a fresh canary), one Encrypt by a user with no permissions (denied), one without its
KeyId (invalid), one signed with a wrong secret key (refused before it reaches KMS). Then:

* **A1**: the trail (``strongroom audit export``) must hold exactly one record for each answer's
  request id (none missing, none twice) and no other record of the run;
* **S9**: no canary may appear anywhere it could leak: the trail, serve's log, ``/metrics``, or
  an error message. The canaries are every plaintext sent (as text and base64), every data key
  returned (base64 and hex), and both users' secret access keys.

Exit status 1 on any missing, duplicate or extra record or any canary found. Bounded by
``--requests`` and ``--seconds``; traffic only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import collections
import http.client
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_serve import Endpoint, http_connection, serve

REGION = "us-east-1"
_WORD = re.compile(r"[A-Za-z0-9+/=_-]+")
#: a plaintext canary, "canary-" and 32 hex digits, as text or as its 52 characters of base64
_PLAIN = re.compile(r"canary-[0-9a-f]{32}|Y2FuYXJ5LW[A-Za-z0-9+/]{42}")
TARGET = "TrentService."
STRONGROOM = str(Path(sys.executable).parent / "strongroom")


def kms_post(
    conn: http.client.HTTPConnection,
    endpoint: Endpoint,
    operation: str,
    body: dict[str, Any],
    creds: tuple[str, str],
) -> tuple[int, str, dict[str, Any]]:
    """One SigV4-signed KMS call on a kept-alive connection: (status, request id, JSON)."""
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + operation}
    request = AWSRequest("POST", f"{endpoint.url}/", headers, data)
    SigV4Auth(Credentials(*creds), "kms", REGION).add_auth(request)
    conn.request("POST", "/", body=data, headers=dict(request.headers.items()))
    resp = conn.getresponse()
    answer = resp.read()
    parsed = json.loads(answer) if answer else {}
    return resp.status, resp.getheader("x-amzn-RequestId", ""), parsed


class Canaries:
    """Every secret the run made, as the strings a leak would show."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.strings: set[str] = set()

    def plaintext(self) -> bytes:
        text = f"canary-{uuid.uuid4().hex}"
        with self.lock:
            self.strings.add(text)
        return text.encode()

    def secret(self, raw: bytes) -> None:
        with self.lock:
            self.strings.update({base64.b64encode(raw).decode(), raw.hex()})

    def text(self, value: str) -> None:
        with self.lock:
            self.strings.add(value)


class Run:
    """The load: what was sent, what came back."""

    def __init__(
        self, endpoint: Endpoint, canaries: Canaries, setup: tuple[str, str, tuple[str, str]]
    ) -> None:
        self.endpoint, self.canaries = endpoint, canaries
        self.key, self.blob, self.nobody = setup
        self.request_ids: list[str] = []
        self.messages: list[str] = []  # error messages, searched for canaries at the end
        self.statuses: collections.Counter[str] = collections.Counter()
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def call(self, n: int) -> tuple[str, dict[str, Any], tuple[str, str]]:
        """The n-th call of the mix: (operation, body, credentials to sign with)."""
        mine = (self.endpoint.akid, self.endpoint.secret)
        plain = base64.b64encode(self.canaries.plaintext()).decode()
        kind = n % 10
        if kind < 4:
            return "Encrypt", {"KeyId": self.key, "Plaintext": plain}, mine
        if kind < 6:
            return "GenerateDataKey", {"KeyId": self.key, "KeySpec": "AES_256"}, mine
        if kind == 6:
            return "Decrypt", {"CiphertextBlob": self.blob}, mine
        if kind == 7:
            return "Encrypt", {"KeyId": self.key, "Plaintext": plain}, self.nobody
        if kind == 8:
            return "Encrypt", {"Plaintext": plain}, mine
        return "Encrypt", {"KeyId": self.key, "Plaintext": plain}, (mine[0], "wrong" + mine[1])

    def worker(self, numbers: range, deadline: float) -> None:
        conn = http_connection(self.endpoint)
        for n in numbers:
            if time.monotonic() > deadline:
                break
            operation, body, creds = self.call(n)
            status, rid, parsed = kms_post(conn, self.endpoint, operation, body, creds)
            if operation == "GenerateDataKey" and "Plaintext" in parsed:
                self.canaries.secret(base64.b64decode(parsed["Plaintext"]))
            with self.lock:
                self.request_ids.append(rid)
                self.statuses[f"{operation} {status} {parsed.get('__type', '')}"] += 1
                if status >= 500 or not rid:
                    self.errors.append(f"call {n}: {status} {str(parsed)[:200]}")
                if "message" in parsed:
                    self.messages.append(str(parsed["message"]))
        conn.close()


def _setup(endpoint: Endpoint, canaries: Canaries) -> tuple[str, str, tuple[str, str]]:
    kms = boto3.client(
        "kms",
        endpoint_url=endpoint.url,
        region_name=REGION,
        aws_access_key_id=endpoint.akid,
        aws_secret_access_key=endpoint.secret,
    )
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    secret = canaries.plaintext()
    blob = base64.b64encode(kms.encrypt(KeyId=key, Plaintext=secret)["CiphertextBlob"]).decode()
    data = str(endpoint.data_dir)
    subprocess.run(
        [STRONGROOM, "iam", "create-user", "nobody", "--data-dir", data],
        check=True,
        capture_output=True,
    )
    made = subprocess.run(
        [STRONGROOM, "iam", "create-access-key", "nobody", "--data-dir", data],
        check=True,
        capture_output=True,
        text=True,
    )
    pair = json.loads(made.stdout)["AccessKey"]
    nobody = (pair["AccessKeyId"], pair["SecretAccessKey"])
    canaries.text(endpoint.secret)
    canaries.text(nobody[1])
    return key, blob, nobody


def _trail(data_dir: Path, since: float) -> list[dict[str, Any]]:
    out = subprocess.run(
        [STRONGROOM, "audit", "export", "--data-dir", str(data_dir), "--since", str(int(since))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def load_arguments(doc: str, requests: int, most: int, seconds: float) -> argparse.Namespace:
    """The options of a bounded load against a fresh serve: --requests (at most ``most``),
    --seconds, --threads (client threads) and --workers (serve's)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--requests", type=_count(most), default=requests, help=f"1..{most}")
    parser.add_argument("--seconds", type=float, default=seconds)
    parser.add_argument("--threads", type=_count(64), default=8, help="client threads, 1..64")
    parser.add_argument("--workers", type=_count(8), default=2, help="serve --workers, 1..8")
    return parser.parse_args()


def _count(most: int) -> Callable[[str], int]:
    """An argparse type: an integer within 1..``most``."""

    def parse(text: str) -> int:
        value = int(text)
        if not 1 <= value <= most:
            raise argparse.ArgumentTypeError(f"{value} is not within 1..{most}")
        return value

    return parse


def main() -> int:
    args = load_arguments(__doc__ or "", 100_000, 1_000_000, 900.0)
    with tempfile.TemporaryDirectory(prefix="strongroom-audit-") as tmp:
        log = Path(tmp) / "serve.log"
        with serve(log, workers=args.workers) as endpoint:
            assert endpoint.data_dir is not None
            canaries = Canaries()
            run = Run(endpoint, canaries, _setup(endpoint, canaries))
            time.sleep(1.1)  # the run's records start in a second of their own
            start = time.time()
            deadline = time.monotonic() + args.seconds
            per = -(-args.requests // args.threads)
            threads = [
                threading.Thread(
                    target=run.worker,
                    args=(range(i * per, min(args.requests, (i + 1) * per)), deadline),
                )
                for i in range(args.threads)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            took = time.time() - start
            url = f"{endpoint.url}/metrics"  # http://127.0.0.1:port, made above
            metrics = urllib.request.urlopen(url, timeout=30).read()  # noqa: S310
            records = _trail(endpoint.data_dir, start)
        served_log = log.read_text(errors="replace")
    return _report(run, records, took, metrics.decode(errors="replace"), served_log)


def _report(run: Run, records: list[dict[str, Any]], took: float, metrics: str, log: str) -> int:
    sent = collections.Counter(run.request_ids)
    recorded = collections.Counter(str(r.get("requestID", "")) for r in records)
    missing = [rid for rid in sent if rid not in recorded]
    twice = [rid for rid, count in recorded.items() if count > 1]
    extra = [rid for rid in recorded if rid not in sent]
    trail_text = "\n".join(json.dumps(r) for r in records)
    places = {
        "trail": trail_text,
        "serve log": log,
        "metrics": metrics,
        "error messages": "\n".join(run.messages),
    }
    # every word a leak could hide in (base64, hex, "canary-..." and the like), matched whole:
    # a canary is a whole JSON string or a whole word of a message or a log line
    # ... and the plaintext canaries (as text or base64) wherever they are, inside words too
    leaks = {
        place: len(run.canaries.strings & {*_WORD.findall(text), *_PLAIN.findall(text)})
        for place, text in places.items()
    }
    total = len(run.request_ids)
    print(f"{total} calls in {took:.1f} s ({total / took:,.0f}/s), {len(records)} trail records")
    for outcome, count in sorted(run.statuses.items()):
        print(f"  {count:>8}  {outcome}")
    print(f"A1: missing {len(missing)}, recorded twice {len(twice)}, extra {len(extra)}")
    print(f"S9: {len(run.canaries.strings)} canaries; found: {leaks}")
    for error in run.errors[:10]:
        print("  error:", error)
    bad = missing or twice or extra or any(leaks.values()) or run.errors
    print("FAILED" if bad else "OK")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
