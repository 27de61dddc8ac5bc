"""How long ``strongroom serve`` takes from launch until it answers a signed KMS call.

Reliability figure P3 (shared/reference/reliability-figures.md: start-up time, proposal
<= 3 s). Each run launches ``serve`` on a fresh data dir (the first start: the root key, the
credentials, the schema and the trail's signing key are created), times it until a signed
``ListKeys`` from boto3 succeeds, stops it by its PID (timing the stop too), then starts it
again on the same data dir (a restart) and times that. Prints the median and the maximum of
each over ``--runs`` runs.

    .venv/bin/python bench/startup_bench.py [--runs 5] [--workers 1]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import boto3
import kms_bench as kb
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

THRESHOLD_S = 3.0  # P3, a proposal
START_TIMEOUT_S = 60.0


class _Probe:
    """A signed ListKeys against one endpoint, its client made once the credentials exist."""

    def __init__(self, endpoint: str, credentials: Path) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.client: Any = None

    def answering(self) -> bool:
        """True once a signed ListKeys succeeds (False while the port or the data is not
        ready)."""
        if self.client is None:
            if not self.credentials.exists():
                return False
            try:
                ak, sk = kb.read_credentials(self.credentials)
            except KeyError:  # being written
                return False
            self.client = boto3.client(
                "kms",
                endpoint_url=self.endpoint,
                region_name=kb.REGION,
                aws_access_key_id=ak,
                aws_secret_access_key=sk,
                config=BotoConfig(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5),
            )
        try:
            self.client.list_keys()
        except (BotoCoreError, ClientError):
            return False
        return True


def timed_start(data_dir: Path, workers: int, log: Path) -> tuple[float, float]:
    """(seconds until a signed call succeeds, seconds the stop by SIGTERM took)."""
    port = kb.free_port()
    argv = [str(kb.BIN / "strongroom"), "serve", "--port", str(port),
            "--data-dir", str(data_dir), "--workers", str(workers)]  # fmt: skip
    probe = _Probe(f"http://{kb.HOST}:{port}", data_dir / "credentials")
    start = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out)
    try:
        while not probe.answering():
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}; see {log}")
            if time.monotonic() - start > START_TIMEOUT_S:
                raise RuntimeError(f"serve did not answer within {START_TIMEOUT_S} s")
            time.sleep(0.01)
        ready = time.monotonic() - start
    finally:
        stopping = time.monotonic()
        kb.stop(proc)
    return ready, time.monotonic() - stopping


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="first start + restart pairs (1..20)")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers (1..8)")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 20 or not 1 <= args.workers <= 8:
        parser.error("--runs must be 1..20 and --workers 1..8")
    first: list[float] = []
    again: list[float] = []
    stops: list[float] = []
    with tempfile.TemporaryDirectory(prefix="strongroom-startup-") as tmp:
        for run in range(args.runs):
            data_dir = Path(tmp) / f"data-{run}"
            log = Path(tmp) / f"serve-{run}.log"
            ready, stopped = timed_start(data_dir, args.workers, log)
            first.append(ready)
            stops.append(stopped)
            ready, stopped = timed_start(data_dir, args.workers, log)
            again.append(ready)
            stops.append(stopped)
    print(f"strongroom serve --workers {args.workers}: launch until a signed ListKeys succeeds, "
          f"{args.runs} runs")  # fmt: skip
    print(f"{'':<28}{'median s':>10}{'max s':>8}")
    for name, values in (("first start (fresh data)", first), ("restart (same data)", again),
                         ("stop (SIGTERM to exit)", stops)):  # fmt: skip
        print(f"{name:<28}{median(values):>10.2f}{max(values):>8.2f}")
    worst = max(first + again)
    verdict = "within" if worst <= THRESHOLD_S else "ABOVE"
    print(f"slowest start {worst:.2f} s: {verdict} the proposed {THRESHOLD_S:.0f} s (P3)")
    return 0 if worst <= THRESHOLD_S else 1


if __name__ == "__main__":
    sys.exit(main())
