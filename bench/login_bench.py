"""What a login costs on an HSM node, and how many can run at once (reliability figure P2).

Starts one ``strongroom hsm-node`` with its default Argon2id parameters (free loopback port,
temporary data dir, stopped by its PID at the end, also on error), activates it and creates a
crypto user as the tests do, then logs in through Strongroom's asynchronous HSM client:

1. ``--sequential`` logins one after another: median and p99 latency, and the node's CPU per
   login (from /proc: user + system, all its threads). Also Argon2id verify alone, in this
   process, with the same parameters.
2. For each concurrency in ``--levels``, that many clients (one TLS connection each, connected
   before the clock starts) log in again and again, closed loop, until ``--logins`` logins or
   ``--seconds``: p50/p99 latency, logins/s, node CPU per login, and the CPU every other
   process used meanwhile. Levels stop after the first whose p99 passes 1 s.
3. Failed logins, ``--failures`` each, of a user that exists and of one that does not (a
   successful login after every 4 failures keeps the user from locking).

Prints the largest concurrency with p99 <= 1 s and whether p99 <= 500 ms at 4 concurrent logins
(P2's proposal); exit status 1 if not. Writes JSON to bench/results/ unless ``--no-save``.

    .venv/bin/python bench/login_bench.py [--sequential 40] [--levels 1,2,4,8,16,32,64]
        [--logins 200] [--seconds 30] [--failures 20] [--no-save]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kms_bench as kb

from strongroom.hsm.client import AsyncHsmClient, HsmClientError, client_ssl_context
from strongroom.hsm.errors import ErrorCode
from strongroom.hsm.users import Argon2Params, Passwords

ADMIN_PW, USER, USER_PW = "bench-admin-pw", "bench", "bench-user-pw"
PROBE, PROBE_PW, NO_USER = "probe", "probe-user-pw", "nosuchuser"
P99_LIMIT_S, P99_AT_4_S = 1.0, 0.5


@dataclass(frozen=True, slots=True)
class Level:
    """One concurrency level's figures."""

    concurrency: int
    logins: int
    per_second: float
    p50_ms: float
    p99_ms: float
    node_cpu_ms: float  # per login
    other_cpu_pct: float  # every other process, % of one CPU


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]


def start_node(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """An ``hsm-node`` with the default Argon2id parameters, listening on a free port."""
    port = kb.free_port()
    argv = [sys.executable, "-c", "from strongroom.cli import main; main()", "hsm-node",
            "--data-dir", str(data_dir), "--port", str(port), "--log-level", "WARNING"]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out)
    kb.wait_for_port(proc, port, log)
    return proc, port


class Bench:
    """Clients of one node and the CPU accounting around them."""

    def __init__(self, pid: int, port: int, cert: Path) -> None:
        self.pid = pid
        self.address = f"{kb.HOST}:{port}"
        self.context = client_ssl_context(node_cert=cert)

    def client(self) -> AsyncHsmClient:
        return AsyncHsmClient([self.address], self.context, pool_size=1, timeout=60)

    async def connected(self) -> AsyncHsmClient:
        client = self.client()
        await client.hsm_info()  # the TLS handshake, before any timing
        return client

    async def setup(self) -> None:
        async with self.client() as admin:
            await admin.activate(ADMIN_PW)
            await admin.login("admin", ADMIN_PW, "admin")
            await admin.create_user(USER, "crypto-user", USER_PW)
            await admin.create_user(PROBE, "crypto-user", PROBE_PW)
            await admin.logout()

    async def sequential(self, count: int) -> tuple[list[float], float]:
        """Login latencies (s) one at a time, and the node's CPU seconds per login."""
        client = await self.connected()
        try:
            latencies = []
            cpu = kb.cpu_seconds(self.pid)
            for _ in range(count):
                start = time.perf_counter()
                await client.login(USER, USER_PW)
                latencies.append(time.perf_counter() - start)
            return latencies, (kb.cpu_seconds(self.pid) - cpu) / count
        finally:
            await client.close()

    async def level(self, concurrency: int, logins: int, seconds: float) -> Level:
        """``concurrency`` clients logging in, closed loop, for ``logins`` logins or
        ``seconds``."""
        clients = [await self.connected() for _ in range(concurrency)]
        latencies: list[float] = []
        started = time.perf_counter()
        deadline = started + seconds

        async def loop(client: AsyncHsmClient) -> None:
            while len(latencies) < logins and time.perf_counter() < deadline:
                begin = time.perf_counter()
                await client.login(USER, USER_PW)
                latencies.append(time.perf_counter() - begin)

        node_cpu, busy, own = kb.cpu_seconds(self.pid), kb.machine_busy_seconds(), os.times()
        try:
            await asyncio.wait_for(asyncio.gather(*(loop(c) for c in clients)), seconds + 60)
        finally:
            for c in clients:
                await c.close()
        wall = time.perf_counter() - started
        node_cpu = kb.cpu_seconds(self.pid) - node_cpu
        mine = sum(os.times()[:2]) - sum(own[:2])
        other = kb.machine_busy_seconds() - busy - node_cpu - mine
        return Level(
            concurrency,
            len(latencies),
            len(latencies) / wall,
            percentile(latencies, 50) * 1e3,
            percentile(latencies, 99) * 1e3,
            node_cpu / len(latencies) * 1e3,
            max(other, 0.0) / wall * 100,
        )

    async def failures(self, count: int) -> tuple[list[float], list[float]]:
        """Failed login latencies (s): a user that exists, one that does not (interleaved)."""
        client = await self.connected()
        known: list[float] = []
        unknown: list[float] = []
        try:
            for i in range(count):
                for name, into in ((PROBE, known), (NO_USER, unknown)):
                    start = time.perf_counter()
                    try:
                        await client.login(name, "wrong-password")
                    except HsmClientError as exc:
                        if exc.code is not ErrorCode.LOGIN_FAILURE:
                            raise
                        into.append(time.perf_counter() - start)
                if i % 4 == 3:
                    await client.login(PROBE, PROBE_PW)  # resets the failure count
        finally:
            await client.close()
        return known, unknown


def argon2_alone(count: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms) of one Argon2id verify with the default parameters."""
    passwords = Passwords(Argon2Params())
    stored = passwords.hash(USER_PW)
    walls, cpus = [], []
    for _ in range(count):
        wall, cpu = time.perf_counter(), time.thread_time()
        passwords.verify(stored, USER_PW)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.thread_time() - cpu)
    return statistics.median(walls) * 1e3, statistics.median(cpus) * 1e3


async def measure(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    await bench.setup()
    sequential, cpu_per_login = await bench.sequential(args.sequential)
    levels: list[Level] = []
    for concurrency in args.levels:
        levels.append(await bench.level(concurrency, max(args.logins, concurrency), args.seconds))
        print(_row(levels[-1]), flush=True)
        if levels[-1].p99_ms > P99_LIMIT_S * 1e3:
            break
    known, unknown = await bench.failures(args.failures)
    return {
        "sequential_ms": [x * 1e3 for x in sequential],
        "node_cpu_per_login_ms": cpu_per_login * 1e3,
        "levels": [asdict(level) for level in levels],
        "failed_known_ms": [x * 1e3 for x in known],
        "failed_unknown_ms": [x * 1e3 for x in unknown],
    }


def _row(level: Level) -> str:
    return (
        f"{level.concurrency:>11}{level.logins:>8}{level.per_second:>10.1f}{level.p50_ms:>9.0f}"
        f"{level.p99_ms:>9.0f}{level.node_cpu_ms:>15.1f}{level.other_cpu_pct:>11.0f}"
    )


def report(figures: dict[str, Any]) -> bool:
    """Print the summary; True if p99 <= 500 ms at 4 concurrent logins (or 4 not measured)."""
    seq = figures["sequential_ms"]
    print(f"\nsequential: {len(seq)} logins, median {statistics.median(seq):.1f} ms, "
          f"p99 {percentile(seq, 99):.1f} ms; node CPU {figures['node_cpu_per_login_ms']:.1f} ms "
          "a login")  # fmt: skip
    known, unknown = figures["failed_known_ms"], figures["failed_unknown_ms"]
    print(f"failed login, median of {len(known)}: existing user {statistics.median(known):.1f} "
          f"ms, unknown user {statistics.median(unknown):.1f} ms")  # fmt: skip
    levels = [Level(**level) for level in figures["levels"]]
    within = [lv.concurrency for lv in levels if lv.p99_ms <= P99_LIMIT_S * 1e3]
    over = [lv.concurrency for lv in levels if lv.p99_ms > P99_LIMIT_S * 1e3]
    if over:
        best = f"{max(within)}" if within else "none"
        print(f"largest concurrency with p99 <= 1 s: {best} (p99 > 1 s at {over[0]})")
    else:
        print(f"p99 <= 1 s at every level measured, up to {levels[-1].concurrency}")
    at4 = next((lv for lv in levels if lv.concurrency == 4), None)
    if at4 is None:
        print("concurrency 4 not measured")
        return True
    verdict = "within" if at4.p99_ms <= P99_AT_4_S * 1e3 else "ABOVE"
    print(f"p99 at 4 concurrent logins: {at4.p99_ms:.0f} ms, {verdict} the proposed 500 ms (P2)")
    return at4.p99_ms <= P99_AT_4_S * 1e3


def save(figures: dict[str, Any], args: argparse.Namespace) -> Path:
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results / f"login_bench-{stamp}.json"
    settings = {k: v for k, v in vars(args).items() if k != "no_save"}
    doc = {"when": stamp, "cpus": os.cpu_count(), "settings": settings, **figures}
    path.write_text(json.dumps(doc, indent=1))
    return path


def _levels(text: str) -> list[int]:
    levels = [int(x) for x in text.split(",") if x]
    if not levels or any(not 1 <= x <= 256 for x in levels):
        raise argparse.ArgumentTypeError("levels are 1..256, comma-separated")
    return levels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=40, help="logins one at a time (40)")
    parser.add_argument("--levels", type=_levels, default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--logins", type=int, default=200, help="per level (200)")
    parser.add_argument("--seconds", type=float, default=30.0, help="bound per level (30)")
    parser.add_argument("--failures", type=int, default=20, help="failed logins per kind (20)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)
    counts = (args.sequential, args.logins, args.failures)
    if any(not 1 <= n <= 10_000 for n in counts) or not 0 < args.seconds <= 600:
        parser.error("counts must be 1..10000 and --seconds 0..600")
    params = Argon2Params()
    print(f"Argon2id (hsm-node defaults): time cost {params.time_cost}, memory "
          f"{params.memory_cost} KiB, parallelism {params.parallelism}")  # fmt: skip
    wall, cpu = argon2_alone(10)
    print(f"one Argon2id verify in this process: {wall:.1f} ms ({cpu:.1f} ms CPU), median of 10")
    with tempfile.TemporaryDirectory(prefix="strongroom-login-") as tmp:
        proc, port = start_node(Path(tmp) / "node", Path(tmp) / "node.log")
        try:
            bench = Bench(proc.pid, port, Path(tmp) / "node" / "hsm-certificate.pem")
            print(f"\n{'concurrency':>11}{'logins':>8}{'logins/s':>10}{'p50 ms':>9}"
                  f"{'p99 ms':>9}{'node CPU ms':>15}{'other CPU%':>11}")  # fmt: skip
            figures = asyncio.run(measure(bench, args))
        finally:
            kb.stop(proc)
    figures["argon2_alone_ms"] = {"wall": wall, "cpu": cpu}
    ok = report(figures)
    if not args.no_save:
        print(f"saved {save(figures, args)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
