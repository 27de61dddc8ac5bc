#!/usr/bin/env python3
"""Per-message key and IV uniqueness under one KMS key (reliability figure C7).

    .venv/bin/python scripts/nonce_uniqueness.py [--requests 1000000] [--seconds 1200]
        [--threads 8] [--workers 2]

Starts its own ``strongroom serve`` (scripts/fuzz_serve.py: a free 127.0.0.1 port, a temporary
data dir, stopped by its PID), creates one symmetric key and sends ``--requests`` Encrypt calls
under it over kept-alive connections. Each ciphertext blob's header holds the salt its message
key was derived from (HKDF-SHA256 of the key material and the salt) and its GCM IV
(:mod:`strongroom.kms.domain.ciphertext`): no salt may repeat (a repeat would repeat the
derived key) and no (salt, IV) pair may repeat. A sample of the blobs is decrypted, to show
they are the service's real output. Exit status 1 on any repeat or error. Bounded by
``--requests`` and ``--seconds``; traffic only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit_completeness import kms_post, load_arguments
from fuzz_serve import Endpoint, http_connection, serve

from strongroom.kms.domain.ciphertext import parse_blob

SAMPLE = 1000  # blobs decrypted at the end


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.salts: set[bytes] = set()
        self.pairs: set[bytes] = set()
        self.repeated_salts = self.repeated_pairs = self.calls = 0
        self.errors: list[str] = []
        self.sample: list[tuple[str, bytes]] = []

    def add(self, blob_b64: str, plain: bytes) -> None:
        header = parse_blob(base64.b64decode(blob_b64))
        with self.lock:
            self.calls += 1
            if header.salt in self.salts:
                self.repeated_salts += 1
            if header.salt + header.nonce in self.pairs:
                self.repeated_pairs += 1
            self.salts.add(header.salt)
            self.pairs.add(header.salt + header.nonce)
            if len(self.sample) < SAMPLE:
                self.sample.append((blob_b64, plain))


def _worker(endpoint: Endpoint, key: str, numbers: range, deadline: float, tally: Tally) -> None:
    conn = http_connection(endpoint)
    creds = (endpoint.akid, endpoint.secret)
    for n in numbers:
        if time.monotonic() > deadline:
            break
        plain = n.to_bytes(8, "big")
        body = {"KeyId": key, "Plaintext": base64.b64encode(plain).decode()}
        status, _, answer = kms_post(conn, endpoint, "Encrypt", body, creds)
        if status != 200:
            with tally.lock:
                tally.errors.append(f"Encrypt {n}: {status} {answer}")
            continue
        tally.add(answer["CiphertextBlob"], plain)
    conn.close()


def _run(endpoint: Endpoint, args: argparse.Namespace, tally: Tally) -> tuple[float, int]:
    """The load, then the sample decrypted: (seconds the load took, wrong decryptions)."""
    conn = http_connection(endpoint)
    creds = (endpoint.akid, endpoint.secret)
    key = kms_post(conn, endpoint, "CreateKey", {}, creds)[2]["KeyMetadata"]["KeyId"]
    start = time.monotonic()
    deadline = start + args.seconds
    per = -(-args.requests // args.threads)
    threads = []
    for i in range(args.threads):
        numbers = range(i * per, min(args.requests, (i + 1) * per))
        worker_args = (endpoint, key, numbers, deadline, tally)
        threads.append(threading.Thread(target=_worker, args=worker_args))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - start
    conn.close()
    conn = http_connection(endpoint)  # the first one idled past serve's keep-alive meanwhile
    wrong = 0
    for blob, plain in tally.sample:
        status, _, answer = kms_post(conn, endpoint, "Decrypt", {"CiphertextBlob": blob}, creds)
        wrong += status != 200 or base64.b64decode(answer["Plaintext"]) != plain
    return took, wrong


def main() -> int:
    args = load_arguments(__doc__ or "", 1_000_000, 5_000_000, 1200.0)
    tally = Tally()
    with (
        tempfile.TemporaryDirectory(prefix="strongroom-nonce-") as tmp,
        serve(Path(tmp) / "serve.log", workers=args.workers) as endpoint,
    ):
        took, wrong = _run(endpoint, args, tally)
    print(
        f"{tally.calls} Encrypt calls under one key in {took:.1f} s ({tally.calls / took:,.0f}/s)"
    )
    print(
        f"repeated salts (derived keys): {tally.repeated_salts}; repeated (salt, IV): "
        f"{tally.repeated_pairs}; errors: {len(tally.errors)}; "
        f"sample of {len(tally.sample)} decrypted, {wrong} wrong"
    )
    for error in tally.errors[:10]:
        print("  error:", error)
    bad = tally.repeated_salts or tally.repeated_pairs or tally.errors or wrong
    bad = bad or tally.calls < args.requests
    print("FAILED" if bad else "OK")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
