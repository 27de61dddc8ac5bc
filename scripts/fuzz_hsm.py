#!/usr/bin/env python3
"""Bounded fuzzer for the HSM node's network protocol (``strongroom hsm-node``).

Starts its own node on a free 127.0.0.1 port in a temporary data directory and sends it malformed
input at every layer a network attacker reaches (cases: scripts/hsm_fuzz_cases.py; node
process, connections and oracles: scripts/hsm_fuzz_harness.py). After every case the node
must be alive, log no traceback or error, and answer a fresh request; answers to bad input must
be protocol errors. Prints cases per category and every failure (bytes sent in hex, the node's
stderr tail); exits 1 on any failure. The node is stopped by its PID, also on error.

    .venv/bin/python scripts/fuzz_hsm.py [--seconds 60] [--cases 5000] [--seed N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hsm_fuzz_cases import Fuzzer, run

__all__ = ["Fuzzer", "main", "run"]


def main(argv: list[str] | None = None) -> int:
    """Parse options, fuzz, print the summary; 1 on any failure."""
    parser = argparse.ArgumentParser(description="Fuzz the HSM node's network protocol.")
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget (default 60)")
    parser.add_argument("--cases", type=int, default=5000, help="case budget (default 5000)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    opts = parser.parse_args(argv)
    fuzzer = run(opts.cases, opts.seconds, opts.seed)
    return 1 if fuzzer.failures else 0


if __name__ == "__main__":
    sys.exit(main())
