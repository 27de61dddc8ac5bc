#!/usr/bin/env python3
"""Dudect-style timing test of Strongroom's secret comparisons (reliability figure S2).

    .venv/bin/python scripts/constant_time.py [--samples 1000000] [--seconds 300]
        [--targets sigv4-signature,kms-verify-mac,...] [--control-bytes 32]

For each comparison path (``constant_time_targets.py``: the SigV4 signature check, VerifyMac,
the HSM's HMAC verify, session tokens, imported key material, HSM passwords and unknown users)
it calls the real function with inputs of two classes, chosen at random for each sample, and
times every call with ``time.perf_counter_ns()``. Then Welch's t statistic between the classes,
as dudect (Reparaz, Balasch, Verbauwhede 2017) computes it: once on all samples and once per
cropping threshold (100 percentiles of the pooled times, ``1 - 0.5 ** (10 * (k + 1) / 100)``,
each test on the samples below its threshold, only with ≥ 10,000 of them); the figure is the
largest |t|. dudect's second-order test is left out. A path passes with max |t| < 4.5.

A positive control runs through the same harness: plain ``==`` on ``--control-bytes`` byte
strings (32 by default, a SHA-256 MAC's length) differing in their last byte (class A) or their
first (class B), which memcmp answers a nanosecond or two sooner. It must reach |t| > 4.5, or
the harness proves nothing (at 10^6 samples it reaches ~80). A null control, the HSM's HMAC
check with one class twice, must stay below 4.5: it shows what the harness reports when there
is nothing to find. Rows marked "not judged" are reported only (see their comments). Exit
status 1 if a real path or the null control reaches 4.5, or the leaky control does not.

Bounded: ``--samples`` per path, and each path stops after ``--seconds`` (it then reports the
samples it took). Everything runs in this process; no network.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import random
import sys
import tempfile
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from constant_time_targets import Kind, Target, fresh, late_and_early, real_targets

THRESHOLD = 4.5
PERCENTILES = [1 - 0.5 ** (10 * (k + 1) / 100) for k in range(100)]
ENOUGH = 10_000  # dudect's least sample count for a cropped test
BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Result:
    """One path's outcome."""

    name: str
    kind: Kind
    samples: int
    max_t: float
    test: str  # the test that gave max_t: "all", or "<pX" (the samples below percentile X)
    diff_ns: float  # class A's mean minus class B's in that test
    seconds: float

    @property
    def ok(self) -> bool:
        """Paths and the null control below the threshold, the leaky control above it."""
        if self.kind == "leaky":
            return self.max_t > THRESHOLD
        return self.kind == "info" or self.max_t < THRESHOLD

    @property
    def verdict(self) -> str:
        below = self.max_t < THRESHOLD
        return {
            "path": "ok (< 4.5)" if below else "LEAK (>= 4.5)",
            "info": "not judged",
            "leaky": "flagged (control)" if not below else "CONTROL NOT FLAGGED",
            "null": "ok (null control)" if below else "NULL CONTROL FLAGGED: harness bias",
        }[self.kind]


def welch_t(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """Welch's t from (count, sum, sum of squares) of each class; 0 if undefined."""
    (na, sa, qa), (nb, sb, qb) = a, b
    if na < 2 or nb < 2:
        return 0.0
    var_a = (qa - sa * sa / na) / (na - 1)
    var_b = (qb - sb * sb / nb) / (nb - 1)
    spread = math.sqrt(max(var_a, 0.0) / na + max(var_b, 0.0) / nb)
    return 0.0 if spread == 0 else (sa / na - sb / nb) / spread


def _prefix_moments(ordered: list[int], cuts: Sequence[int]) -> list[tuple[int, int, int]]:
    """(count, sum, sum of squares) of ``ordered[:cut]`` for each ascending ``cut``."""
    out, count, total, squares = [], 0, 0, 0
    for cut in cuts:
        chunk = ordered[count:cut]
        count, total, squares = cut, total + sum(chunk), squares + sum(x * x for x in chunk)
        out.append((count, total, squares))
    return out


def dudect_t(a: list[int], b: list[int]) -> tuple[float, str, float]:
    """The largest |t| of the uncropped test and the percentile-cropped ones, the test that
    gave it, and the difference of the class means (ns) in that test."""
    sa, sb = sorted(a), sorted(b)
    pooled = sorted(a + b)
    thresholds = [pooled[min(int(p * len(pooled)), len(pooled) - 1)] for p in PERCENTILES]
    cuts_a = [bisect_left(sa, x) for x in thresholds] + [len(sa)]
    cuts_b = [bisect_left(sb, x) for x in thresholds] + [len(sb)]
    tests = zip(_prefix_moments(sa, cuts_a), _prefix_moments(sb, cuts_b), strict=True)
    labels = [f"<p{p * 100:.1f}" for p in PERCENTILES] + ["all"]
    best, where, diff = 0.0, "all", math.nan
    for label, (ma, mb) in zip(labels, tests, strict=True):
        if label != "all" and ma[0] + mb[0] < ENOUGH:
            continue
        t = abs(welch_t(ma, mb))
        if t >= best and ma[0] and mb[0]:
            best, where, diff = t, label, ma[1] / ma[0] - mb[1] / mb[0]
    return best, where, diff


def _timed_batch(call: Callable[[Any], object], inputs: list[Any]) -> list[int]:
    """The time of each call, in input order. Nothing in the loop depends on the class: an
    ``into[cls].append(clock() - start)`` looks ``into[cls]`` up before it reads the clock,
    and that alone gave |t| of 5-10 at 10^6 samples between two identical classes."""
    clock = time.perf_counter_ns
    out = []
    for arg in inputs:
        start = clock()
        call(arg)
        end = clock()
        out.append(end - start)
    return out


def measure(target: Target, samples: int, seconds: float, rng: random.Random) -> Result:
    """Time ``samples`` calls (classes interleaved at random) within ``seconds``."""
    times: list[list[int]] = [[], []]  # class A, class B
    started = time.monotonic()
    for _ in range(1000):  # warm-up: caches, branch predictors, the allocator
        target.call(target.class_a())
        target.call(target.class_b())
    taken = 0
    while taken < samples and time.monotonic() - started < seconds:
        n = min(BATCH, samples - taken)
        classes = [rng.getrandbits(1) for _ in range(n)]
        inputs = [target.class_b() if cls else target.class_a() for cls in classes]
        gc.disable()
        try:
            durations = _timed_batch(target.call, inputs)
        finally:
            gc.enable()
        for cls, duration in zip(classes, durations, strict=True):
            times[cls].append(duration)
        gc.collect()
        taken += n
    max_t, test, diff = dudect_t(times[0], times[1])
    elapsed = time.monotonic() - started
    return Result(target.name, target.kind, taken, max_t, test, diff, elapsed)


def eq_control(size: int) -> Target:
    """The positive control: ``==`` on ``size``-byte strings (memcmp stops at the difference)."""
    right = random.Random(size).randbytes(size)
    late, early = late_and_early(right)
    return Target(
        f"control-eq-{size}B",
        lambda candidate: candidate == right,
        fresh(late),
        fresh(early),
        f"plain == on {size} bytes; wrong in the last byte / the first",
        "leaky",
    )


def run(targets: Sequence[Target], samples: int, seconds: float, seed: int) -> list[Result]:
    """Measure every target in turn, printing its row as it finishes."""
    rng = random.Random(seed)
    print(f"{'path':<24}{'samples':>10}{'max |t|':>9}  {'test':<7}{'A-B ns':>8}{'s':>5}  verdict")
    results = []
    for target in targets:
        r = measure(target, samples, seconds, rng)
        results.append(r)
        print(
            f"{r.name:<24}{r.samples:>10,}{r.max_t:>9.2f}  {r.test:<7}{r.diff_ns:>8.1f}"
            f"{r.seconds:>5.0f}  {r.verdict}",
            flush=True,
        )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000, help="per path (1000000)")
    parser.add_argument("--seconds", type=float, default=300.0, help="bound per path (300)")
    parser.add_argument("--targets", default="", help="comma-separated names (all)")
    parser.add_argument("--control-bytes", type=int, default=32, help="control length (32)")
    parser.add_argument("--seed", type=int, default=2026, help="of the class sequence (2026)")
    args = parser.parse_args(argv)
    if args.samples < 100 or args.seconds <= 0 or args.control_bytes < 2:
        parser.error("--samples ≥ 100, --seconds > 0, --control-bytes ≥ 2")
    wanted = {name for name in args.targets.split(",") if name}
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="constant-time-")))
        reals = stack.enter_context(real_targets(tmp))
        unknown = wanted - {t.name for t in reals}
        if unknown:
            parser.error(f"unknown --targets {sorted(unknown)}; known: {[t.name for t in reals]}")
        chosen = [t for t in reals if not wanted or t.name in wanted]
        for target in chosen:
            print(f"# {target.name}: {target.classes}")
        print()
        targets = [*chosen, eq_control(args.control_bytes)]
        results = run(targets, args.samples, args.seconds, args.seed)
    short = [r.name for r in results if r.samples < args.samples]
    if short:
        print(f"\nstopped by --seconds before --samples: {', '.join(short)}")
    failed = [r.name for r in results if not r.ok]
    print(f"\nFAIL: {', '.join(failed)}" if failed else "\nPASS: paths below 4.5, control above")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
