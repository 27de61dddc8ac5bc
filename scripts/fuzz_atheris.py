#!/usr/bin/env python3
"""Coverage-guided fuzzing of Strongroom's parsers with atheris (reliability figure S5).

Five targets (``scripts/atheris_targets.py``): the SigV4 verifier, the request decoder (JSON
and botocore-model validation, then the audit event), the ciphertext parser and decryption,
the policy parser and evaluator, and the audit-trail verifier. Each runs in its own process
under libFuzzer, from a corpus of valid seeds (``scripts/atheris_seeds.py``), with a 1 s
limit per input: a Python exception other than the target's documented refusal, an oracle's
violation, a hang over 1 s or a crash is a failure, whose input is kept under ``--out``.

    .venv/bin/python scripts/fuzz_atheris.py [--targets sigv4,policy] [--runs 2000000]
        [--seconds 1200] [--jobs 2] [--seed 1] [--out DIR]

Prints one line per target (executions, seconds, rate, coverage, corpus) and the total;
exits 1 on any failure. Needs atheris (in the test extra, on x86_64 Linux).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = ("sigv4", "request", "ciphertext", "policy", "verify")
SELFTEST = "selftest"  # fails on an input it is sure to be given: checks the harness
_DONE = re.compile(rb"Done (\d+) runs in (\d+) second")
_STATS = re.compile(rb"stat::number_of_executed_units: (\d+)")
_COV = re.compile(rb"cov: (\d+) ft: (\d+) corp: (\d+)")
_FAILURE = re.compile(
    rb"Uncaught Python exception|ERROR: libFuzzer: (timeout|deadly signal|out-of-memory)"
)


@dataclass
class Result:
    target: str
    runs: int
    seconds: float
    coverage: int
    corpus: int
    failure: str | None
    artifacts: list[str]


def child(target: str, libfuzzer_args: list[str]) -> None:
    """Run one target under libFuzzer in this process (``--child``), its seeds written first
    into the corpus directory (the first argument) by this process, whose oracles know them."""
    import atheris

    sys.path.insert(0, str(HERE))
    from atheris_targets import TARGETS

    test_one_input, seeds = TARGETS[target]
    corpus = Path(libfuzzer_args[0]) if libfuzzer_args else None
    if corpus is not None and corpus.is_dir():
        for i, seed in enumerate(seeds()):
            (corpus / f"seed-{i}").write_bytes(seed)
    prefix = next(
        (a.split("=", 1)[1] for a in libfuzzer_args if a.startswith("-artifact_prefix=")), ""
    )

    def kept(data: bytes) -> None:
        """The target; an input that makes it raise is written out first, under the name
        libFuzzer gives it, so that it is kept even if the process dies before libFuzzer's
        crash handler writes it (seen once on a machine loaded far past its CPUs)."""
        try:
            test_one_input(data)
        except Exception:
            if prefix:
                name = hashlib.sha1(data, usedforsecurity=False).hexdigest()
                Path(f"{prefix}crash-{name}").write_bytes(data)
            raise

    atheris.Setup([sys.argv[0], *libfuzzer_args], kept)
    atheris.Fuzz()


def run_target(target: str, runs: int, seconds: float, seed: int, out: Path) -> Result:
    """Fuzz one target in a child process until ``runs`` or ``seconds``; parse its report."""
    with tempfile.TemporaryDirectory(prefix=f"strongroom-fuzz-{target}-") as tmp:
        corpus = Path(tmp)
        args = [
            sys.executable, str(Path(__file__).resolve()), "--child", target, "--",
            str(corpus), f"-runs={runs}", f"-max_total_time={int(seconds)}", "-timeout=1",
            f"-seed={seed}", f"-artifact_prefix={out}/{target}-", "-print_final_stats=1",
            "-rss_limit_mb=3072", "-max_len=4096",
        ]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=seconds + 300,
            check=False,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        log = done.stdout
        (out / f"{target}.log").write_bytes(log[-2_000_000:])
        found = _FAILURE.search(log)
        failure = None
        if found or done.returncode != 0:
            failure = (found.group(0) if found else b"exit %d" % done.returncode).decode()
        stats = _STATS.search(log) or _DONE.search(log)
        covs = _COV.findall(log)
        artifacts = sorted(str(p) for p in out.glob(f"{target}-*"))
        return Result(
            target, int(stats.group(1)) if stats else 0, elapsed,
            int(covs[-1][0]) if covs else 0, int(covs[-1][2]) if covs else 0, failure, artifacts,
        )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Fuzz the chosen targets (in parallel up to ``--jobs``); 1 on any failure."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1], argv[3:])
        return 0
    parser = argparse.ArgumentParser(description="Coverage-guided fuzzing with atheris.")
    parser.add_argument("--targets", default=",".join(NAMES), help="comma-separated (default all)")
    parser.add_argument("--runs", type=int, default=200_000, help="executions per target")
    parser.add_argument("--seconds", type=float, default=300.0, help="time budget per target")
    parser.add_argument("--jobs", type=int, default=2, help="targets fuzzed at once (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer's seed (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="logs and failing inputs")
    opts = parser.parse_args(argv)
    targets = [t for t in opts.targets.split(",") if t]
    unknown = sorted(set(targets) - {*NAMES, SELFTEST})
    if unknown:
        parser.error(f"unknown targets: {', '.join(unknown)} (known: {', '.join(NAMES)})")
    out = opts.out or Path(tempfile.mkdtemp(prefix="strongroom-atheris-"))
    out.mkdir(parents=True, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(max(1, opts.jobs)) as pool:
        futures = [
            pool.submit(run_target, t, opts.runs, opts.seconds, opts.seed, out) for t in targets
        ]
        results = [f.result() for f in futures]
    total = 0
    for r in results:
        total += r.runs
        rate = r.runs / r.seconds if r.seconds else 0.0
        verdict = "ok" if r.failure is None else f"FAILED: {r.failure} {' '.join(r.artifacts)}"
        print(
            f"{r.target:<10} {r.runs:>10,} runs in {r.seconds:7.1f} s ({rate:8,.0f}/s), "
            f"cov {r.coverage}, corpus {r.corpus}: {verdict}"
        )
    failed = [r for r in results if r.failure is not None]
    print(f"total {total:,} executions, {len(failed)} failing targets; logs in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
