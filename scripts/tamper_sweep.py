#!/usr/bin/env python3
"""Every single-bit flip and every truncation of ciphertext blobs is refused (reliability C4).

    .venv/bin/python scripts/tamper_sweep.py [--blobs 20] [--seconds 900] [--threads 8]
        [--workers 2]

Starts its own ``strongroom serve`` (scripts/fuzz_serve.py: a free 127.0.0.1 port, a temporary
data dir, stopped by its PID), creates two symmetric keys and makes ``--blobs`` ciphertext
blobs through the API: Encrypt of plaintexts of 1 to 300 bytes, with and without an encryption
context, GenerateDataKey and ReEncrypt blobs, under both keys. Then, through Decrypt:

* every blob with each one of its bits flipped, and cut short at every length;
* every blob with its encryption context changed: a value altered, a pair added, a pair
  removed, no context at all;
* every blob with the other key named as KeyId (a swapped key id).

Each must be refused with InvalidCiphertextException (IncorrectKeyException for the swapped key
id), also where a flip rewrites the key id in the blob's header: no plaintext may come back,
and nothing else may answer. The untouched blobs must decrypt. Exit status 1 on any
other outcome. Bounded by the mutation count and ``--seconds``; traffic only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import collections
import queue
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit_completeness import kms_post
from fuzz_serve import Endpoint, http_connection, serve

LENGTHS = (1, 16, 32, 64, 100, 128, 200, 256, 300)


@dataclass(frozen=True)
class Blob:
    blob: bytes
    plaintext: bytes
    context: dict[str, str]
    key_arn: str
    other_key_arn: str


@dataclass(frozen=True)
class Case:
    kind: str  # "bit", "cut", "context", "key", "untouched"
    body: dict[str, Any]
    expected: frozenset[str]  # error codes that pass; empty: it must decrypt
    plaintext: bytes


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    outcomes: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    plaintexts_returned: int = 0
    done: int = 0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_blobs(endpoint: Endpoint, count: int) -> list[Blob]:
    """``count`` blobs of the kinds the docstring names, made through the API."""
    conn = http_connection(endpoint)
    creds = (endpoint.akid, endpoint.secret)

    def call(operation: str, body: dict[str, Any]) -> dict[str, Any]:
        status, _, answer = kms_post(conn, endpoint, operation, body, creds)
        if status != 200:
            raise RuntimeError(f"{operation}: {status} {answer}")
        return answer

    keys = [call("CreateKey", {})["KeyMetadata"]["Arn"] for _ in range(2)]
    blobs: list[Blob] = []
    for n in range(count):
        key, other = keys[n % 2], keys[(n + 1) % 2]
        context = {"purpose": "tamper-sweep", "n": str(n)} if n % 2 == 0 else {}
        extra = {"EncryptionContext": context} if context else {}
        if n % 5 == 3:  # a data key's blob
            answer = call("GenerateDataKey", {"KeyId": key, "NumberOfBytes": 32, **extra})
            plain = base64.b64decode(answer["Plaintext"])
            blob = answer["CiphertextBlob"]
        else:
            plain = bytes((n + i) % 256 for i in range(LENGTHS[n % len(LENGTHS)]))
            blob = call("Encrypt", {"KeyId": other, "Plaintext": _b64(plain), **extra})[
                "CiphertextBlob"
            ]
            if n % 5 == 4:  # moved to ``key`` by ReEncrypt
                moved = {"CiphertextBlob": blob, "DestinationKeyId": key}
                if context:
                    moved |= {"SourceEncryptionContext": context}
                    moved |= {"DestinationEncryptionContext": context}
                blob = call("ReEncrypt", moved)["CiphertextBlob"]
            else:
                key, other = other, key
        blobs.append(Blob(base64.b64decode(blob), plain, context, key, other))
    conn.close()
    return blobs


def cases(blob: Blob) -> list[Case]:
    """Every mutation of one blob, and the blob itself."""
    data, plain, ctx = blob.blob, blob.plaintext, blob.context
    invalid = frozenset({"InvalidCiphertextException"})

    def body(raw: bytes, context: dict[str, str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"CiphertextBlob": _b64(raw)}
        context = ctx if context is None else context
        return out | ({"EncryptionContext": context} if context else {})

    out = [Case("untouched", body(data), frozenset(), plain)]
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        out.append(Case("bit", body(bytes(flipped)), invalid, plain))
    out += [Case("cut", body(data[:size]), invalid, plain) for size in range(1, len(data))]
    altered: list[dict[str, str]] = [{"added": "pair"}]
    if ctx:
        first = next(iter(ctx))
        altered = [
            {**ctx, first: ctx[first] + "x"},  # a value altered
            {**ctx, "added": "pair"},  # a pair added
            {k: v for k, v in ctx.items() if k != first},  # a pair removed
        ]
    out += [Case("context", body(data, c), invalid, plain) for c in altered]
    if ctx:
        out.append(Case("context", {"CiphertextBlob": _b64(data)}, invalid, plain))
    swapped = body(data) | {"KeyId": blob.other_key_arn}
    out.append(Case("key", swapped, frozenset({"IncorrectKeyException"}), plain))
    return out


def _worker(
    endpoint: Endpoint, work: queue.SimpleQueue[Case], deadline: float, tally: Tally
) -> None:
    conn = http_connection(endpoint)
    creds = (endpoint.akid, endpoint.secret)
    while time.monotonic() < deadline:
        try:
            case = work.get_nowait()
        except queue.Empty:
            break
        status, _, answer = kms_post(conn, endpoint, "Decrypt", case.body, creds)
        code = "OK" if status == 200 else str(answer.get("__type", status))
        with tally.lock:
            tally.done += 1
            tally.outcomes[(case.kind, code)] += 1
            if status == 200 and case.expected:
                tally.plaintexts_returned += 1
                tally.failures.append(f"{case.kind}: a plaintext came back")
            elif status == 200:
                if base64.b64decode(answer["Plaintext"]) != case.plaintext:
                    tally.failures.append("untouched: a wrong plaintext")
            elif code not in case.expected:
                tally.failures.append(f"{case.kind}: {status} {answer}")
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--blobs", type=int, default=20, help="blobs to mutate, 1..200")
    parser.add_argument("--seconds", type=float, default=900.0)
    parser.add_argument("--threads", type=int, default=8, help="client threads, 1..64")
    parser.add_argument("--workers", type=int, default=2, help="serve --workers, 1..8")
    args = parser.parse_args()
    for name, most in (("blobs", 200), ("threads", 64), ("workers", 8)):
        if not 1 <= getattr(args, name) <= most:
            parser.error(f"--{name} must be within 1..{most}")
    tally = Tally()
    with (
        tempfile.TemporaryDirectory(prefix="strongroom-tamper-") as tmp,
        serve(Path(tmp) / "serve.log", workers=args.workers) as endpoint,
    ):
        blobs = make_blobs(endpoint, args.blobs)
        work: queue.SimpleQueue[Case] = queue.SimpleQueue()
        total = 0
        for blob in blobs:
            for case in cases(blob):
                work.put(case)
                total += 1
        start = time.monotonic()
        threads = [
            threading.Thread(target=_worker, args=(endpoint, work, start + args.seconds, tally))
            for _ in range(args.threads)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.monotonic() - start
    sizes = sorted(len(b.blob) for b in blobs)
    print(
        f"{len(blobs)} blobs of {sizes[0]}-{sizes[-1]} bytes; {tally.done} of {total} Decrypt "
        f"calls in {took:.1f} s"
    )
    for (kind, code), count in sorted(tally.outcomes.items()):
        print(f"  {kind:9} {code:28} {count:7}")
    print(f"plaintexts returned for a mutation: {tally.plaintexts_returned}")
    for failure in tally.failures[:10]:
        print("  failure:", failure)
    bad = tally.failures or tally.done < total
    print("FAILED" if bad else "OK")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
