"""The figures of one kms_bench.py run: per-load results, the side-by-side table, the checks."""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["OPERATIONS", "LoadResult", "busy_warnings", "check", "save", "table"]

OPERATIONS = ("Encrypt", "Decrypt", "GenerateDataKey")


@dataclass
class LoadResult:
    """One wrk run against one server and operation."""

    server: str
    operation: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int
    server_cpu_pct: float
    wrk_cpu_pct: float
    other_cpu_pct: float
    rps_per_cpu: float
    first_error: str = ""
    statuses: str = ""


def table(results: list[LoadResult]) -> list[str]:
    head = (
        f"{'operation':<16} {'server':<11} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'non-2xx':>7} {'sock err':>8} {'srv CPU':>7} {'req/CPU-s':>9} {'wrk CPU':>7} "
        f"{'other CPU':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.operation:<16} {r.server:<11} {r.rps:>7,.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} "
            f"{r.non2xx:>7} {r.socket_errors:>8} {r.server_cpu_pct:>6.0f}% {r.rps_per_cpu:>9,.0f} "
            f"{r.wrk_cpu_pct:>6.0f}% {r.other_cpu_pct:>8.0f}%"
        )
    return lines + ratios(results)


def ratios(results: list[LoadResult]) -> list[str]:
    """Strongroom/moto per operation: throughput, per server CPU-second, and p50 latency."""
    by_key = {(r.server, r.operation): r for r in results}
    lines = []
    for name, label in (("strongroom", "Strongroom"), ("sr-notrail", "no trail")):
        for operation in OPERATIONS:
            ours, theirs = by_key.get((name, operation)), by_key.get(("moto", operation))
            if not (ours and theirs and theirs.rps > 0 and theirs.rps_per_cpu > 0):
                continue
            lines.append(
                f"{operation + ':':<16} {label + '/moto':<15} = {ours.rps / theirs.rps:5.1f}x "
                f"req/s, {ours.rps_per_cpu / theirs.rps_per_cpu:5.1f}x req per server "
                f"CPU-second, p50 {theirs.p50_ms / max(ours.p50_ms, 1e-3):5.1f}x lower"
            )
    return lines


def rounds_table(
    rounds: dict[str, list[LoadResult]], labels: dict[str, str], width: int = 32
) -> tuple[list[str], dict[str, float], dict[str, float]]:
    """The table of interleaved rounds (one line per configuration: its median round, every
    round's req/s, latency, CPU), and the median req/s and req/CPU-s of each label."""
    head = (
        f"{'configuration':<{width}} {'req/s (median)':>14} {'rounds':>24} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'srv CPU':>7} {'req/CPU-s':>9} {'wrk CPU':>7} {'other CPU':>9}"
    )
    lines = [head, "-" * len(head)]
    medians: dict[str, float] = {}
    per_cpu: dict[str, float] = {}
    for label, results in rounds.items():
        medians[label] = statistics.median(r.rps for r in results)
        per_cpu[label] = statistics.median(r.rps_per_cpu for r in results)
        mid = min(results, key=lambda r: abs(r.rps - medians[label]))
        each = "/".join(f"{r.rps:,.0f}" for r in results)
        lines.append(
            f"{labels[label]:<{width}} {medians[label]:>14,.0f} {each:>24} {mid.p50_ms:>7.2f} "
            f"{mid.p99_ms:>7.2f} {mid.server_cpu_pct:>6.0f}% {per_cpu[label]:>9,.0f} "
            f"{mid.wrk_cpu_pct:>6.0f}% {max(r.other_cpu_pct for r in results):>8.0f}%"
        )
    return lines, medians, per_cpu


def check(results: list[LoadResult]) -> list[str]:
    problems = []
    for r in results:
        if r.non2xx or r.socket_errors:
            problems.append(
                f"{r.server} {r.operation}: {r.non2xx} non-2xx ({r.statuses}), "
                f"{r.socket_errors} socket errors; first: {r.first_error}"
            )
    return problems


def busy_warnings(results: list[LoadResult], limit: float = 20.0) -> list[str]:
    return [
        f"{r.server} {r.operation}: other processes used {r.other_cpu_pct:.0f}% of a CPU during "
        "the load; the machine was not quiet, so these figures are lower bounds"
        for r in results
        if r.other_cpu_pct > limit
    ]


def save(
    results_dir: Path, settings: dict[str, Any], results: list[LoadResult], profile: list[str]
) -> Path:
    """Write the run as JSON to ``results_dir`` (git-ignored); its path."""
    results_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results_dir / f"kms_bench-{stamp}.json"
    doc = {
        "when": stamp,
        "machine": {"cpus": os.cpu_count(), "uname": " ".join(os.uname())},
        "settings": settings,
        "results": [asdict(r) for r in results],
        "profile": profile,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
