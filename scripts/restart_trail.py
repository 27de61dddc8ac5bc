#!/usr/bin/env python3
"""Reliability figure A4 for serve's trail at its count: restart ``strongroom serve`` again and
again on one data directory and check after every restart that the trail has no gap and that
each start of its writer began the next epoch.

    .venv/bin/python scripts/restart_trail.py [--restarts 100] [--workers 1] [--seed N]
        [--seconds 1800]

Each cycle starts serve (a process group of its own, a free 127.0.0.1 port, its trail on),
makes five Encrypt calls and one invalid call with boto3 (no retries), then stops it: by
SIGTERM (a graceful stop) or by SIGKILL of its whole group, chosen at random. After each stop:
``audit verify`` must pass (hash chain, signed digests, every sequence number from 1 with no
gap, epochs never going back); every call answered in the cycle, the refused one included,
must have its record (by request ID, ``audit export``); and ``audit_epochs`` must hold the
epochs 1..E with no gap, E at least the number of starts so far (one per start of the writer).
Exit status 1 on any failure. Bounded by ``--restarts`` and ``--seconds``; serve is stopped by
its PID, also on error.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import crash_kill as ck


def cycle(data: Path, log: Path, workers: int, key: str, graceful: bool) -> tuple[str, list[str]]:
    """One start, six calls and one stop; (the key, the answered calls' request IDs)."""
    answered: list[str] = []
    with ck.serve(data, workers, log, []) as (proc, port):
        kms = ck.aws_client("kms", data, port)
        deadline = time.monotonic() + 30
        while not key:
            try:
                made = kms.create_key()
                key = made["KeyMetadata"]["KeyId"]
                answered.append(made["ResponseMetadata"]["RequestId"])
            except ClientError as exc:  # the writer still starting: 503
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1) if exc.response["Error"]["Code"] else None
        for _ in range(5):
            answer = kms.encrypt(KeyId=key, Plaintext=b"restart")
            answered.append(answer["ResponseMetadata"]["RequestId"])
        try:
            kms.encrypt(KeyId=key, Plaintext=b"")  # too short: a ValidationException
        except ClientError as exc:
            answered.append(exc.response["ResponseMetadata"]["RequestId"])
        if graceful:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    return key, answered


def check(data: Path, answered: list[str], starts: int, since: float) -> list[str]:
    failures: list[str] = []
    where = ["--data-dir", str(data)]
    verify = subprocess.run(
        [str(ck.BIN), "audit", "verify", *where],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if verify.returncode != 0:
        failures.append(f"audit verify: {(verify.stdout + verify.stderr).strip()[-300:]}")
    export = subprocess.run(
        [str(ck.BIN), "audit", "export", *where, "--since", f"{since - 1:.0f}"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    recorded = {json.loads(line).get("requestID") for line in export.stdout.splitlines() if line}
    missing = [rid for rid in answered if rid not in recorded]
    if export.returncode != 0 or missing:
        failures.append(f"{len(missing)} answered calls without a record: {missing[:3]}")
    with sqlite3.connect(data / "audit.db") as db:
        epochs = [r[0] for r in db.execute("SELECT epoch FROM audit_epochs ORDER BY epoch")]
    if epochs != list(range(1, len(epochs) + 1)) or len(epochs) < starts:
        failures.append(f"after {starts} starts the epochs are {epochs[:3]}..{epochs[-3:]}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=100, help="1..5000")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers N (1..8)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=1800.0, help="stop starting cycles after")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    restarts = max(1, min(args.restarts, 5000))
    workers = max(1, min(args.workers, 8))
    began = time.monotonic()
    failures: list[str] = []
    key, starts, kills, calls = "", 0, 0, 0
    with tempfile.TemporaryDirectory(prefix="strongroom-restarts-") as tmp:
        data, log = Path(tmp) / "data", Path(tmp) / "serve.log"
        while starts < restarts and time.monotonic() - began < args.seconds:
            graceful = rng.random() < 0.5
            since = time.time()
            key, answered = cycle(data, log, workers, key, graceful)
            starts += 1
            kills += not graceful
            calls += len(answered)
            problems = check(data, answered, starts, since)
            failures += [f"start {starts}: {p}" for p in problems]
            if problems:
                print(f"start {starts}: " + "; ".join(problems), flush=True)
        with sqlite3.connect(data / "audit.db") as db:
            epochs = db.execute("SELECT max(epoch) FROM audit_epochs").fetchone()[0]
            records = db.execute("SELECT max(seq) FROM audit_events").fetchone()[0]
    print(
        f"seed {seed}: {starts} starts ({kills} by SIGKILL of the group, {starts - kills} by "
        f"SIGTERM) in {time.monotonic() - began:.0f} s; {calls} answered calls checked; "
        f"{records} records, epochs 1..{epochs}; failures {len(failures)}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
