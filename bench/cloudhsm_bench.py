"""Benchmark Encrypt through a custom-key-store key (AES-GCM inside the CloudHSM cluster)
next to a default key (software key store) on the same server, in one run.

With kms_bench.py / authz_bench.py's machinery: one ``strongroom serve --workers N`` on a free
loopback port, a cluster of two HSM node processes set up as a user would
(cloudhsm_setup.py), requests pre-signed with SigV4 and replayed by wrk; the two loads are
interleaved (default, custom key store, default, ...) for ``--rounds`` rounds and the median
round of each is reported with the ratio custom/default (goal: at least 0.5; AWS allows 1,800
requests/s per CloudHSM key store).

Needs wrk and the bench extra, as kms_bench.py. See bench/README.md.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from authz_bench import (
    finish,
    kms_client,
    run_rounds,
    strongroom,
    variant_args,
    variant_settings,
)
from cloudhsm_setup import setup_store
from kms_bench import BIN, wrk_binary
from kms_report import LoadResult

GOAL = 0.5
LABELS = {"default": "default key (software)", "cks": "custom key store (CloudHSM)"}


def report(rounds: dict[str, list[LoadResult]]) -> tuple[list[str], float]:
    head = f"{'key':<30} {'req/s (median)':>14} {'rounds':>24} {'p50 ms':>7} {'p99 ms':>7}"
    lines = [head, "-" * len(head)]
    medians: dict[str, float] = {}
    for label, results in rounds.items():
        median = statistics.median(r.rps for r in results)
        medians[label] = median
        mid = min(results, key=lambda r: abs(r.rps - median))
        each = "/".join(f"{r.rps:,.0f}" for r in results)
        lines.append(
            f"{LABELS[label]:<30} {median:>14,.0f} {each:>24} {mid.p50_ms:>7.2f} {mid.p99_ms:>7.2f}"
        )
    ratio = medians["cks"] / medians["default"]
    verdict = "meets" if ratio >= GOAL else "BELOW"
    lines += ["", f"custom key store / default = {ratio:.2f}: {verdict} the goal of {GOAL}"]
    return lines, ratio


def main(argv: list[str] | None = None) -> int:
    args = variant_args(argv, __doc__.split("\n\n")[0], "warm-up seconds per key")
    wrk_binary()
    settings = variant_settings(args)
    print(
        f"Encrypt (32 bytes): wrk -t{settings.threads} -c{settings.connections} "
        f"-d{settings.duration}s x {args.rounds} interleaved rounds, serve --workers "
        f"{settings.workers}, {settings.signed} pre-signed requests per load"
    )
    with tempfile.TemporaryDirectory(prefix="cloudhsm-bench-") as tmp:
        workdir = Path(tmp)
        with strongroom(settings, workdir / "serve.log", "strongroom") as server:
            made = setup_store(BIN, server.endpoint, server.access_key, server.secret_key, workdir)
            default_key = kms_client(server).create_key()["KeyMetadata"]["KeyId"]
            plan = [("default", server, default_key), ("cks", server, made.key_id)]
            rounds = run_rounds(plan, LABELS, settings, args.rounds, workdir)
    lines, _ = report(rounds)
    return finish(args, "cloudhsm_bench", rounds, lines)


if __name__ == "__main__":
    sys.exit(main())
