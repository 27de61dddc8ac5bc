"""Benchmark what the audit trail costs on the hot path: Encrypt with the trail on and off.

In one run, with kms_bench.py's machinery (through authz_bench.py's helpers: servers on free
loopback ports, requests pre-signed with SigV4, replayed by wrk with ``wrk_replay.lua``, CPU
accounting), two servers side by side:

* (a) ``strongroom serve --insecure-no-audit-trail``: no record is written (the baseline);
* (b) a normal ``serve``: every call's event is group-committed (one transaction, one fsync and
  one signed digest per batch) before its response leaves.

The loads are interleaved (a, b, a, b, ...) for ``--rounds`` rounds so drift on a shared
machine hits both alike; the median round of each is reported with the ratio b/a (goal: at
least 0.8). Needs wrk and the bench extra, as kms_bench.py. See bench/README.md.
"""

from __future__ import annotations

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
from kms_bench import wrk_binary
from kms_report import LoadResult, rounds_table

GOAL = 0.8
LABELS = {"a-trail-off": "(a) --insecure-no-audit-trail", "b-trail-on": "(b) audit trail on"}


def report(rounds: dict[str, list[LoadResult]]) -> tuple[list[str], float]:
    lines, medians, per_cpu = rounds_table(rounds, LABELS)
    ratio = medians["b-trail-on"] / medians["a-trail-off"]
    cpu_ratio = per_cpu["b-trail-on"] / per_cpu["a-trail-off"]
    verdict = "meets" if ratio >= GOAL else "BELOW"
    lines += [
        "",
        f"b/a = {ratio:.2f} req/s ({cpu_ratio:.2f} per server CPU-second): "
        f"{verdict} the goal of {GOAL}",
    ]
    return lines, ratio


def main(argv: list[str] | None = None) -> int:
    args = variant_args(argv, __doc__.split("\n\n")[0])
    wrk_binary()
    settings = variant_settings(args)
    print(
        f"Encrypt (32 bytes, 2-pair encryption context): wrk -t{settings.threads} "
        f"-c{settings.connections} -d{settings.duration}s x {args.rounds} interleaved rounds, "
        f"serve --workers {settings.workers}, {settings.signed} pre-signed requests per load"
    )
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        workdir = Path(tmp)
        with (
            strongroom(settings, workdir / "off.log", "off", "--insecure-no-audit-trail") as off,
            strongroom(settings, workdir / "on.log", "on") as on,
        ):
            plan = [
                ("a-trail-off", off, kms_client(off).create_key()["KeyMetadata"]["KeyId"]),
                ("b-trail-on", on, kms_client(on).create_key()["KeyMetadata"]["KeyId"]),
            ]
            rounds = run_rounds(plan, LABELS, settings, args.rounds, workdir)
    lines, _ = report(rounds)
    return finish(args, "audit_bench", rounds, lines)


if __name__ == "__main__":
    sys.exit(main())
