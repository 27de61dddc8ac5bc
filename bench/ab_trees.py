"""Compare source trees side by side: one ``strongroom serve`` per tree and configuration, all
running at once, their wrk loads taking turns round after round.

On the 2-CPU VM the machine's speed drifts by ±15 % from one minute to the next and by a third
within an hour, so two benchmark runs a few minutes apart do not compare; loads that take turns
within one run do. Each ``--rev`` is exported with ``git archive`` into a temporary directory and
its servers import it through ``PYTHONPATH`` (ahead of the editable install; the dependencies
are the virtualenv's); ``--rev .`` is the working tree. ``--trail both`` runs each tree with
and without ``--insecure-no-audit-trail``.

    .venv/bin/python bench/ab_trees.py --rev HEAD~1 --rev . [--trail on|off|both]
        [--op Encrypt|Sign] [--rounds 6] [--duration 5] [--workers 2]

Prints each round and then, per server, the median requests/s, the median server CPU per
request (all its processes, from /proc) and the ratio to the first server. Every server is
stopped by its PID at the end, also on error; loads are bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from statistics import median

import kms_bench as kb
import kms_sign_bench as ksb

ROOT = Path(__file__).resolve().parent.parent


def export(rev: str, into: Path) -> str | None:
    """The ``src`` directory of ``rev`` exported under ``into``; None for the working tree."""
    if rev == ".":
        return None
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return str(into / "src")


def write_requests(server: kb.Server, op: str, key_id: str, path: Path, count: int) -> None:
    if op == "Sign":
        ksb.sign_requests(server, key_id, ksb.CASES["RSA_2048"], count, path)
    else:
        server.key_id = key_id
        kb.sign_requests(server, op, count, path)


def load(
    server: kb.Server, requests: Path, settings: kb.Settings, seconds: int
) -> tuple[float, float]:
    """(requests/s, server CPU µs per request) of one wrk run."""
    result = kb.replay(server, "load", requests, settings, seconds)
    if result.non2xx or result.socket_errors or not result.requests:
        raise RuntimeError(f"{server.name}: {result.non2xx} non-2xx, {result.socket_errors} "
                           f"socket errors ({result.first_error})")  # fmt: skip
    return result.rps, result.server_cpu_pct / 100 / result.rps * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", action="append", required=True, help="git revision, or .")
    parser.add_argument("--trail", choices=("on", "off", "both"), default="on")
    parser.add_argument("--op", choices=("Encrypt", "Sign"), default="Encrypt")
    parser.add_argument("--rounds", type=int, default=6, help="1..20")
    parser.add_argument("--duration", type=int, default=5, help="seconds per load, 1..60")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 20 or not 1 <= args.duration <= 60 or len(args.rev) > 4:
        parser.error("--rounds 1..20, --duration 1..60, at most four --rev")
    kb.wrk_binary()
    settings = kb.make_settings(
        argparse.Namespace(threads=2, connections=32, duration=args.duration, warmup=0,
                           signed=2000, pin=False, workers=args.workers)
    )  # fmt: skip
    trails = {"on": [True], "off": [False], "both": [False, True]}[args.trail]
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ab-trees-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        servers: dict[str, kb.Server] = {}
        for index, rev in enumerate(args.rev):
            source = export(rev, work / f"tree{index}")
            for trail in trails:
                name = f"{rev}{'' if args.rev.count(rev) == 1 else f' #{index + 1}'}"
                name += "" if trail else " (trail off)"
                saved = os.environ.get("PYTHONPATH")
                if source is not None:
                    os.environ["PYTHONPATH"] = source
                try:
                    extra = () if trail else ("--insecure-no-audit-trail",)
                    log = work / f"serve{len(servers)}.log"
                    servers[name] = stack.enter_context(kb.strongroom(settings, log, name, extra))
                finally:
                    if saved is None:
                        os.environ.pop("PYTHONPATH", None)
                    else:
                        os.environ["PYTHONPATH"] = saved
        requests: dict[str, Path] = {}
        for number, (name, server) in enumerate(servers.items()):
            key = (
                ksb.create_key(server, "RSA_2048")
                if args.op == "Sign"
                else kb.create_key(server)[0]
            )
            requests[name] = work / f"requests{number}"
            write_requests(server, args.op, key, requests[name], settings.signed)
            load(server, requests[name], settings, 2)  # warm-up
            results[name] = []
        names = list(servers)
        for number in range(args.rounds):
            for name in names if number % 2 == 0 else names[::-1]:
                results[name].append(load(servers[name], requests[name], settings, args.duration))
            print(f"round {number + 1}: " + "  ".join(
                f"{n} {results[n][-1][0]:,.0f} ({results[n][-1][1]:.0f} µs)" for n in names
            ), flush=True)  # fmt: skip
    first = median(r for r, _ in results[names[0]])
    print(f"{args.op}, --workers {args.workers}, wrk -t2 -c32 -d{args.duration}s, "
          f"{args.rounds} rounds taking turns; medians:")  # fmt: skip
    for name in names:
        rps = median(r for r, _ in results[name])
        cpu = median(c for _, c in results[name])
        print(f"  {name:<30} {rps:>9,.0f} req/s {cpu:>7.1f} µs/request  {rps / first:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
