#!/usr/bin/env python3
"""Interop with real clients at volume (reliability figure C3).

    .venv/bin/python scripts/interop_counts.py [--esdk 1000] [--pairs 1000] [--oaep 1000]
        [--seed 0] [--threads 4] [--workers 2] [--seconds 1800]

Starts its own ``strongroom serve`` (scripts/fuzz_serve.py: a free 127.0.0.1 port, a temporary
data dir, stopped by its PID) and talks to it only through boto3 clients and the AWS Encryption
SDK for Python (botocore underneath), one client per thread, no retries:

* **ESDK**: ``--esdk`` encrypt/decrypt round trips (``EncryptionSDKClient``,
  REQUIRE_ENCRYPT_REQUIRE_DECRYPT, a ``StrictAwsKmsMasterKeyProvider`` on one KMS key) of
  messages from 0 B to 1 MiB (0, 1 and 1,048,576 bytes, the rest log-uniform in strata, fixed
  by ``--seed``), each with an encryption context: the bytes come back and both headers carry
  the context and the key. One message in 100 gets a bit flipped and must not decrypt.
* **Sign/verify**: every (KeySpec, SigningAlgorithm) of Strongroom's table (RSA x PSS/PKCS#1
  v1.5 x SHA-256/384/512, the four ECDSA curves, Ed25519 and Ed25519ph, ML-DSA-44/65/87),
  ``--pairs`` per algorithm and direction. *in->out*: KMS Sign, verified by ``cryptography``
  with the GetPublicKey SPKI (libsodium through PyNaCl for Ed25519ph, which ``cryptography``
  lacks). *out->in*: ``cryptography`` (libsodium) signs with a private key made outside and
  imported into an EXTERNAL KMS key (GetParametersForImport, ImportKeyMaterial with
  RSA_AES_KEY_WRAP_SHA_256), KMS Verify checks it. One pair in 4 sends MessageType DIGEST (RSA,
  ECDSA; Ed25519ph always; EXTERNAL_MU computed by ``cryptography`` for ML-DSA), the rest RAW
  (messages of 1-4096 bytes). One in 100 gets a bit flipped in the signature: refused outside,
  KMSInvalidSignatureException inside. ML-DSA has no out->in: Strongroom does not import
  ML-DSA material (UnsupportedOperationException, issue 4).
* **RSA-OAEP**: for RSA_2048/3072/4096 ENCRYPT_DECRYPT keys and RSAES_OAEP_SHA_1/SHA_256,
  ``--oaep`` encryptions by ``cryptography`` with the GetPublicKey key (1 byte, AWS's limit,
  then sizes up to the limit), each decrypted by KMS Decrypt; one in 100 gets a bit flipped and
  must be InvalidCiphertextException.

Prints test | count | passed | failed, the totals and the seconds of each part. Exit status 1
on any failure or any row that ran fewer cases than asked (``--seconds`` bounds the run: what
does not fit is reported as short). A count of 0 leaves a part out. Traffic only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import aws_encryption_sdk
import boto3
import botocore.session
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.key_providers.kms import StrictAwsKmsMasterKeyProvider
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit_completeness import REGION
from fuzz_serve import Endpoint, log_problems, serve
from interop_cases import (
    NEGATIVE_EVERY,
    Case,
    Mismatch,
    Tally,
    expect,
    flip,
    make_sign_key,
    oaep_cases,
    run_pool,
    sign_cases,
)

from strongroom.kms.domain.specs import SPECS

MIB = 1 << 20
NO_RETRIES = Config(retries={"max_attempts": 1}, read_timeout=120, connect_timeout=10)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", maxsplit=1)[0])
    for name, default, what in (
        ("--esdk", 1000, "ESDK round trips"),
        ("--pairs", 1000, "sign/verify pairs per algorithm and direction"),
        ("--oaep", 1000, "RSA-OAEP encryptions per key spec and algorithm"),
    ):
        parser.add_argument(name, type=_within(0, 100_000), default=default, help=what)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=_within(1, 64), default=4, help="client threads")
    parser.add_argument("--workers", type=_within(1, 8), default=2, help="serve --workers")
    parser.add_argument("--seconds", type=float, default=1800.0, help="bound on the whole run")
    return parser.parse_args()


def _within(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not within {low}..{high}")
        return value

    return parse


def _kms(endpoint: Endpoint) -> Any:
    return boto3.session.Session().client(
        "kms",
        endpoint_url=endpoint.url,
        region_name=REGION,
        aws_access_key_id=endpoint.akid,
        aws_secret_access_key=endpoint.secret,
        config=NO_RETRIES,
    )


# ---- the AWS Encryption SDK ------------------------------------------------------------------


def esdk_sizes(count: int, seed: int) -> list[int]:
    """``count`` message sizes: 0, 1 and 1 MiB, the rest log-uniform over 1 B..1 MiB, one in
    each of ``count - 3`` equal strata of the exponent; shuffled."""
    rng = random.Random(f"{seed}:esdk-sizes")
    fixed = [0, 1, MIB][:count]
    rest = max(0, count - 3)
    sizes = fixed + [min(MIB, int(2 ** (20 * (i + rng.random()) / rest))) for i in range(rest)]
    rng.shuffle(sizes)
    return sizes


def _esdk_client(endpoint: Endpoint, arn: str) -> tuple[Any, Any]:
    session = botocore.session.Session()
    session.set_credentials(endpoint.akid, endpoint.secret)
    session.set_config_variable("region", REGION)
    session.set_config_variable("max_attempts", 1)  # no retries: a failure shows
    sdk = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    return sdk, StrictAwsKmsMasterKeyProvider(key_ids=[arn], botocore_session=session)


def _esdk_round_trip(arn: str, size: int, seed: int, n: int, negative: bool, pair: Any) -> None:
    sdk, provider = pair
    rng = random.Random(f"{seed}:esdk:{n}")
    message = rng.randbytes(size)
    context = {"purpose": "strongroom-interop", "case": str(n), "size": str(size)}
    blob, header = sdk.encrypt(source=message, key_provider=provider, encryption_context=context)
    keys = [k.key_provider.key_info.decode() for k in header.encrypted_data_keys]
    expect(keys == [arn], f"encrypt header keys {keys}")
    expect(context.items() <= header.encryption_context.items(), "encrypt header context")
    if negative:
        try:
            sdk.decrypt(source=flip(blob, rng), key_provider=provider)
        except Exception:  # the SDK's errors (bad tag, header, signature or data key)
            return
        raise Mismatch("a message with a flipped bit decrypted")
    plain, back = sdk.decrypt(source=blob, key_provider=provider)
    expect(plain == message, f"{size} bytes decrypted to {len(plain)} other bytes")
    expect(context.items() <= back.encryption_context.items(), "decrypt header context")


def _esdk_cases(arn: str, count: int, seed: int) -> list[Case]:
    cases: list[Case] = []
    for n, size in enumerate(esdk_sizes(count, seed)):
        cases.append(
            ("ESDK round trip 0 B-1 MiB", partial(_esdk_round_trip, arn, size, seed, n, False))
        )
        if n % NEGATIVE_EVERY == NEGATIVE_EVERY - 1:
            check = partial(_esdk_round_trip, arn, size, seed, n, True)
            cases.append(("ESDK negatives (bit flip: no plaintext)", check))
    return cases


# ---- the run and its report ------------------------------------------------------------------


def _run(
    endpoint: Endpoint, args: argparse.Namespace, tally: Tally
) -> tuple[dict[str, float], list[str]]:
    """Each part in turn, within ``--seconds`` overall: (part -> seconds, notes)."""
    os.environ["AWS_ENDPOINT_URL"] = endpoint.url  # the SDK makes its own clients: point them here
    deadline = time.monotonic() + args.seconds
    kms = _kms(endpoint)
    seconds: dict[str, float] = {}
    notes = ["not run: ML-DSA out->in (Strongroom does not import ML-DSA material, issue 4)"]
    client = partial(_kms, endpoint)
    if args.esdk:
        start = time.monotonic()
        arn = kms.create_key(Description="interop esdk")["KeyMetadata"]["Arn"]
        cases = _esdk_cases(arn, args.esdk, args.seed)
        run_pool(cases, tally, args.threads, deadline, partial(_esdk_client, endpoint, arn))
        seconds["ESDK"] = time.monotonic() - start
        sizes = esdk_sizes(args.esdk, args.seed)
        notes.insert(
            0,
            f"ESDK messages: {min(sizes):,}-{max(sizes):,} B, median "
            f"{statistics.median(sizes):,.0f} B, {sum(sizes) / MIB:,.1f} MiB in all",
        )
    if args.pairs:
        start = time.monotonic()
        specs = [s for s, info in SPECS.items() if "SIGN_VERIFY" in info.usages]
        keys = [make_sign_key(kms, spec) for spec in specs]
        run_pool(sign_cases(keys, args.pairs, args.seed), tally, args.threads, deadline, client)
        seconds["sign/verify"] = time.monotonic() - start
    if args.oaep:
        start = time.monotonic()
        cases = oaep_cases(kms, args.oaep, args.seed)
        run_pool(cases, tally, args.threads, deadline, client)
        seconds["RSA-OAEP"] = time.monotonic() - start
    return seconds, notes


def _report(tally: Tally, run: tuple[dict[str, float], list[str]], wall: float, log: str) -> int:
    seconds, notes = run
    width = max(len(row) for row in tally.rows) if tally.rows else 10
    print(f"{'test':<{width}} | {'count':>6} | {'passed':>6} | {'failed':>6}")
    print(f"{'-' * width}-+-{'-' * 6}-+-{'-' * 6}-+-{'-' * 6}")
    short = []
    for row, (asked, passed, failed) in tally.rows.items():
        mark = "" if passed + failed >= asked else f"  (short: {asked} asked)"
        short += [row] if mark else []
        print(f"{row:<{width}} | {passed + failed:>6} | {passed:>6} | {failed:>6}{mark}")
    asked, passed, failed = (sum(r[i] for r in tally.rows.values()) for i in range(3))
    print(f"{'total':<{width}} | {passed + failed:>6} | {passed:>6} | {failed:>6}")
    parts = ", ".join(f"{part} {took:.1f} s" for part, took in seconds.items())
    print(f"wall time {wall:.1f} s ({parts})")
    for note in notes:
        print(note)
    for error in tally.errors:
        print("  error:", error)
    problems = log_problems(log)
    for line in problems[:5]:
        print("  serve log:", line)
    bad = failed or short or problems or asked == 0
    print("FAILED" if bad else "OK")
    return 1 if bad else 0


def main() -> int:
    args = _arguments()
    # the SDK logs each data key it cannot decrypt with a traceback: the negatives are meant to
    # fail, and every failure of a positive case is in the table and its errors anyway
    logging.getLogger("aws_encryption_sdk").setLevel(logging.CRITICAL)
    tally = Tally()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="strongroom-interop-") as tmp:
        log = Path(tmp) / "serve.log"
        with serve(log, workers=args.workers) as endpoint:
            run = _run(endpoint, args, tally)
        served = log.read_text(errors="replace")
    return _report(tally, run, time.monotonic() - start, served)


if __name__ == "__main__":
    sys.exit(main())
