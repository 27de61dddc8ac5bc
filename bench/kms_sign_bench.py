"""Benchmark Strongroom's Sign (RSA_2048, ECC_NIST_P256) next to raw `cryptography` signing.

In one run: a fresh ``strongroom serve --workers N`` (same process handling as bench/kms_bench.py),
an RSA_2048 and an ECC_NIST_P256 SIGN_VERIFY key created with boto3, N distinct pre-signed Sign
requests (random 32-byte messages, MessageType RAW) replayed with wrk for a bounded time, then
right after it the raw rate of `cryptography` signing the same way (same algorithm, same message
size) in N processes for the same duration; ``--rounds`` such pairs per spec, taking turns, so
that a shared machine's drift (±15 % from one minute to the next on the 2-CPU VM) reaches both
sides of a ratio alike. Prints the medians over the rounds: requests/s, the raw signatures/s
and their ratio, and each round's ratio (wrk shares the machine with the server, not with the
raw run, so the ratio is a lower bound on a 2-CPU machine; the "per CPU-s" column compares
requests per CPU-second of the server's processes with raw signatures per CPU-second, the
client's share left out). Goal: RSA_2048 at least 0.8 of raw.

    .venv/bin/python bench/kms_sign_bench.py [--duration 6] [--rounds 3] [--workers 2] [--pin]
                                             [--no-trail] [--bare]

``--no-trail`` serves with ``--insecure-no-audit-trail``: not the goal's terms (the default
server keeps its trail), but it shows how much of the gap the trail accounts for.

``--bare`` adds a third load to every round: the same request files replayed against
bench/bare_sign_server.py in N processes, the least a Python server on this stack does for a
Sign (HTTP with httptools on uvloop, JSON, base64, the signature; no SigV4, authorization,
trail or metrics). Its ratio to raw is what no Python server on the machine gets past; the
gap between it and Strongroom's is Strongroom's own request path.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import multiprocessing
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from statistics import median
from typing import NamedTuple

import boto3
import kms_bench as kb
from bare_sign_server import signer
from botocore.config import Config as BotoConfig
from kms_report import LoadResult

CASES = {"RSA_2048": "RSASSA_PKCS1_V1_5_SHA_256", "ECC_NIST_P256": "ECDSA_SHA_256"}


def create_key(server: kb.Server, spec: str) -> str:
    client = boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=kb.REGION,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=BotoConfig(retries={"max_attempts": 1}),
    )
    key_id = client.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    client.sign(KeyId=key_id, Message=b"warm", SigningAlgorithm=CASES[spec])
    return str(key_id)


def sign_requests(server: kb.Server, key_id: str, algorithm: str, count: int, path: Path) -> None:
    """``count`` distinct signed Sign requests (random 32-byte messages, MessageType RAW)."""
    bodies = (
        {"KeyId": key_id, "Message": base64.b64encode(secrets.token_bytes(32)).decode(),
         "SigningAlgorithm": algorithm}
        for _ in range(count)
    )  # fmt: skip
    kb.write_signed(server, "Sign", bodies, path)


class Round(NamedTuple):
    """One round of one spec: the server's load, then the raw rate right after it (and the
    bare server's load after that, with ``--bare``)."""

    load: LoadResult
    raw: float
    raw_per_cpu: float
    bare: LoadResult | None = None


@contextlib.contextmanager
def bare_server(spec: str, processes: int, log: Path) -> Iterator[kb.Server]:
    """bench/bare_sign_server.py on a free port, stopped by its PID (it stops its forks)."""
    port = kb.free_port()
    argv = [sys.executable, str(Path(__file__).with_name("bare_sign_server.py")),
            "--port", str(port), "--spec", spec, "--processes", str(processes)]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out)
    try:
        kb.wait_for_port(proc, port, log)
        yield kb.Server(f"bare-{spec}", proc, port, "", "")
    finally:
        kb.stop(proc)


def run_load(
    server: kb.Server, spec: str, key_id: str, settings: kb.Settings, duration: int, workdir: Path
) -> LoadResult:
    reqfile = workdir / f"sign-{spec}.req"
    sign_requests(server, key_id, CASES[spec], settings.signed, reqfile)
    return kb.replay(server, f"Sign {spec}", reqfile, settings, duration)


def bare_load(
    bare: kb.Server, spec: str, settings: kb.Settings, duration: int, workdir: Path
) -> LoadResult:
    """The requests of the last :func:`run_load` of ``spec``, replayed against ``bare``."""
    return kb.replay(bare, f"Sign {spec}", workdir / f"sign-{spec}.req", settings, duration)


def _raw_worker(spec: str, duration: float) -> tuple[int, float]:
    sign = signer(spec)  # the bare server's: both sign exactly alike
    count, start, cpu0 = 0, time.monotonic(), time.process_time()
    while time.monotonic() - start < duration:
        for _ in range(20):
            sign(os.urandom(32))
        count += 20
    return count, time.process_time() - cpu0


def raw_rate(spec: str, processes: int, duration: float) -> tuple[float, float]:
    """(signatures/s over ``processes`` processes, signatures per CPU second)."""
    with multiprocessing.Pool(processes) as pool:
        start = time.monotonic()
        parts = pool.starmap(_raw_worker, [(spec, duration)] * processes)
        wall = time.monotonic() - start
    total = sum(p[0] for p in parts)
    cpu = sum(p[1] for p in parts)
    return total / min(wall, duration), total / cpu if cpu else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=6, help="seconds per load (1..120)")
    parser.add_argument("--rounds", type=int, default=3, help="server/raw pairs per spec (1..20)")
    parser.add_argument("--workers", type=int, default=2, help="serve --workers / raw processes")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--signed", type=int, default=2000, help="distinct signed requests")
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, wrk on CPU 1")
    parser.add_argument(
        "--no-trail",
        action="store_true",
        help="serve with --insecure-no-audit-trail (how much of the gap is the trail's)",
    )
    parser.add_argument(
        "--bare",
        action="store_true",
        help="also replay against bench/bare_sign_server.py (what any Python server gets)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 120 or not 1 <= args.workers <= 16 or not 1 <= args.rounds <= 20:
        parser.error("--duration must be 1..120, --workers 1..16 and --rounds 1..20")
    kb.wrk_binary()
    settings = kb.make_settings(
        argparse.Namespace(
            threads=args.threads, connections=args.connections, duration=args.duration,
            warmup=0, signed=args.signed, pin=args.pin, workers=args.workers,
        )
    )  # fmt: skip
    rounds: dict[str, list[Round]] = {spec: [] for spec in CASES}
    with tempfile.TemporaryDirectory(prefix="kms-sign-bench-") as tmp:
        workdir = Path(tmp)
        extra = ("--insecure-no-audit-trail",) if args.no_trail else ()
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(
                kb.strongroom(settings, workdir / "serve.log", extra=extra)
            )
            bares = {
                spec: stack.enter_context(
                    bare_server(spec, args.workers, workdir / f"bare-{spec}.log")
                )
                for spec in (CASES if args.bare else ())
            }
            keys = {spec: create_key(server, spec) for spec in CASES}
            for spec in CASES:
                run_load(server, spec, keys[spec], settings, 2, workdir)  # warm-up
                if spec in bares:
                    bare_load(bares[spec], spec, settings, 2, workdir)
            # server and raw take turns, so that the machine's drift reaches both alike
            for _ in range(args.rounds):
                for spec in CASES:
                    load = run_load(server, spec, keys[spec], settings, args.duration, workdir)
                    raw, raw_per_cpu = raw_rate(spec, args.workers, args.duration)
                    bare = None
                    if spec in bares:
                        bare = bare_load(bares[spec], spec, settings, args.duration, workdir)
                    rounds[spec].append(Round(load, raw, raw_per_cpu, bare))
    trail = " --insecure-no-audit-trail" if args.no_trail else ""
    print(f"Sign via strongroom serve --workers {args.workers}{trail} (wrk -t{args.threads} "
          f"-c{args.connections} -d{args.duration}s) vs raw cryptography in {args.workers} "
          f"processes, {args.rounds} alternating rounds; "
          f"{'; '.join(settings.notes) or 'no pinning'}")  # fmt: skip
    print(f"{'spec':<14}{'server req/s':>14}{'p50 ms':>9}{'non2xx':>8}{'raw sig/s':>12}"
          f"{'ratio':>8}{'srv CPU':>9}{'per CPU-s':>11}  ratio per round")  # fmt: skip
    failed = False
    for spec, runs in rounds.items():
        ratios = [r.load.rps / r.raw for r in runs]
        per_cpu = [r.load.rps_per_cpu / r.raw_per_cpu if r.raw_per_cpu else 0.0 for r in runs]
        loads = [r.load for r in runs]
        print(f"{spec:<14}{median(x.rps for x in loads):>14,.0f}"
              f"{median(x.p50_ms for x in loads):>9.2f}{sum(x.non2xx for x in loads):>8}"
              f"{median(r.raw for r in runs):>12,.0f}{median(ratios):>8.2f}"
              f"{median(x.server_cpu_pct for x in loads):>8.0f}%{median(per_cpu):>11.2f}  "
              f"{'/'.join(f'{x:.2f}' for x in ratios)}")  # fmt: skip
        bare_loads = [r.bare for r in runs if r.bare is not None]
        if bare_loads:
            bare_ratios = [r.bare.rps / r.raw for r in runs if r.bare is not None]
            bare_per_cpu = [
                r.bare.rps_per_cpu / r.raw_per_cpu if r.raw_per_cpu else 0.0
                for r in runs
                if r.bare is not None
            ]
            print(f"{'  bare server':<14}{median(x.rps for x in bare_loads):>14,.0f}"
                  f"{median(x.p50_ms for x in bare_loads):>9.2f}"
                  f"{sum(x.non2xx for x in bare_loads):>8}"
                  f"{'':>12}{median(bare_ratios):>8.2f}"
                  f"{median(x.server_cpu_pct for x in bare_loads):>8.0f}%"
                  f"{median(bare_per_cpu):>11.2f}  "
                  f"{'/'.join(f'{x:.2f}' for x in bare_ratios)}")  # fmt: skip
        failed |= any(x.non2xx > 0 or x.socket_errors > 0 for x in loads + bare_loads)
    print(
        "medians over the rounds; ratio: server requests/s over raw signatures/s in the same "
        "round; per CPU-s: server requests per server CPU-second over raw signatures per "
        "CPU-second (the client's CPU left out)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
