#!/usr/bin/env python3
"""SIGKILL the PostgreSQL postmaster and ``strongroom serve`` under concurrent writes; after
each kill nothing acknowledged may be missing (reliability figure D3: D1's invariants on
PostgreSQL, whose WAL is the durability being tested).

    .venv/bin/python scripts/pg_kill.py [--kills 200] [--clients 8] [--seed N]
        [--seconds 3000] [--workers 1] [--sample 40] [--in-turn]
        [--postgres-setting NAME=VALUE]

The script runs a PostgreSQL cluster of its own: ``initdb`` into a temporary directory (as
the ``postgres`` user when run as root, since PostgreSQL refuses root), ``postgres`` on a
free 127.0.0.1 port with its default durability (``fsync`` and ``synchronous_commit`` on), in
a process group of its own. The shared PostgreSQL service on 5432 is never touched. The
binaries come from ``PATH``, then ``pg_config --bindir``, then Debian's
``/usr/lib/postgresql/<version>/bin``.

Each cycle runs D1's workload (``crash_kill.py``: CreateKey, Encrypt, GenerateDataKey,
CreateAlias, PutKeyPolicy, EnableKeyRotation, RotateKeyOnDemand, ScheduleKeyDeletion from
``--clients`` boto3 clients without retries) against ``serve --database-url`` and, after a
random 0.3-2.5 s, SIGKILLs one of:

* ``serve``: serve's process group, as in D1;
* ``postmaster``: the postmaster alone, by its PID. Its backends notice and exit; calls in
  flight get 5xx answers (uncertain, as a cut-off call). PostgreSQL is restarted (crash
  recovery from its WAL), and the serve that lived through it must answer again within 60 s
  on its own (its connection pool reconnects); the checks then run through that serve;
* ``both``: the postmaster, then serve's group at once.

After each kill, ``pg_amcheck`` checks every table and index of the database (heap and
B-tree), the SQLite files serve keeps beside it must pass ``integrity_check``, and
crash_kill's checks run: acknowledged keys, states, policies, aliases and ciphertexts, a
trail record for each acknowledged call, ``audit verify``. Exit status 1 on any failure.
Bounded by ``--kills`` and ``--seconds``; every process is stopped by its PID or process
group, also on error.

The control, ``--postgres-setting synchronous_commit=off``, lets PostgreSQL answer a commit
before its WAL is written; killing the postmaster then loses acknowledged calls, and the
run must report failures.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import crash_kill as ck
from fuzz_serve import HOST, free_port

TARGETS = ("serve", "postmaster", "both")


def pg_bin(name: str) -> str:
    """A PostgreSQL server binary: PATH, then pg_config's bindir, then Debian's layout."""
    found = shutil.which(name)
    if found:
        return found
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if (Path(bindir) / name).exists():
            return str(Path(bindir) / name)
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise SystemExit(f"pg_kill: no PostgreSQL {name} found (install the server package)")
    return candidates[-1]


class Cluster:
    """A PostgreSQL cluster of the script's own, in ``root``; one postmaster at a time."""

    def __init__(self, root: Path, settings: list[str]) -> None:
        self.settings = [arg for setting in settings for arg in ("-c", setting)]
        self.data, self.log = root / "pgdata", root / "postgres.log"
        self.port = free_port()
        self.user: str | None = "postgres" if os.geteuid() == 0 else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.recoveries: list[float] = []  # seconds from start to accepting connections
        root.mkdir(parents=True, exist_ok=True)
        if self.user:
            shutil.chown(root, self.user)
        subprocess.run(
            [pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
             "--no-sync", "-E", "UTF8", "--locale", "C"],
            capture_output=True, check=True, user=self.user, cwd=root,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def start(self) -> None:
        """Start the postmaster (crash recovery if the last one was killed); wait until it
        accepts connections."""
        began = time.monotonic()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [pg_bin("postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-c", f"listen_addresses={HOST}", "-c", f"unix_socket_directories={self.data}",
                 "-c", "max_connections=200", *self.settings],
                stdout=out, stderr=out, start_new_session=True, user=self.user,
                cwd=self.data.parent,
            )  # fmt: skip
        ready = [pg_bin("pg_isready"), "-q", "-h", HOST, "-p", str(self.port), "-t", "1"]
        while subprocess.run(ready, check=False).returncode != 0:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}; see its log")
            if time.monotonic() - began > 120:
                raise RuntimeError("postgres did not accept connections within 120 s")
            time.sleep(0.05)
        self.recoveries.append(time.monotonic() - began)

    def kill_postmaster(self) -> None:
        """SIGKILL the postmaster alone, by its PID (its backends are left to notice)."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)

    def wait_gone(self) -> None:
        """Reap the postmaster, then wait until its orphaned backends have exited (a new
        postmaster refuses to start while they hold the shared memory)."""
        assert self.proc is not None
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 60
        while True:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                raise RuntimeError("PostgreSQL backends outlived their postmaster by 60 s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Kill the whole group (the script's own cluster only), by its process group id."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)

    def amcheck(self, failures: list[str]) -> None:
        """Heap and B-tree checks of every relation (``pg_amcheck``, amcheck installed)."""
        done = subprocess.run(
            [pg_bin("pg_amcheck"), "-h", HOST, "-p", str(self.port), "-U", "postgres",
             "--install-missing", "--heapallindexed", "postgres"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            failures.append(f"pg_amcheck: {(done.stdout + done.stderr)[-500:]}")


@contextlib.contextmanager
def own_cluster(root: Path, settings: list[str]) -> Iterator[Cluster]:
    cluster = Cluster(root, settings)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def await_service(kms: Any, seconds: float = 60.0) -> float:
    """Seconds until serve answers a call that needs its database again."""
    began = time.monotonic()
    while True:
        try:
            kms.list_keys(Limit=1)
            return time.monotonic() - began
        except Exception:  # any failure means not yet; bounded below
            if time.monotonic() - began > seconds:
                raise RuntimeError(f"serve did not recover within {seconds:.0f} s") from None
            time.sleep(0.1)


def cycles(run: ck.Run, args: argparse.Namespace, cluster: Cluster, log: Path) -> dict[str, Any]:
    counts: dict[str, Any] = dict.fromkeys(TARGETS, 0)
    healed: list[float] = []
    start, since, pending = time.monotonic(), time.time(), False
    database = ["--database-url", cluster.url]
    for cycle in range(args.kills + 1):
        with ck.serve(run.data, args.workers, log, database) as (proc, port):
            account = ck.aws_client("sts", run.data, port).get_caller_identity()["Account"]
            kms = ck.aws_client("kms", run.data, port)
            if pending:
                ck.verify(run, kms, cycle - 1, since)
            if cycle == args.kills or time.monotonic() - start > args.seconds:
                break
            since = time.time()
            target = (
                TARGETS[cycle % len(TARGETS)]
                if args.in_turn
                else run.rng.choices(TARGETS, weights=(2, 2, 1))[0]
            )
            counts[target] += 1
            hook = cluster.kill_postmaster if target != "serve" else None
            ck.load_and_kill(run, proc, port, account, cycle, hook, target != "postmaster")
            if target != "serve":
                cluster.wait_gone()
                cluster.start()
            cluster.amcheck(run.failures)
            run.totals["db"] = ck.integrity(run.data, run.failures)
            pending = target != "postmaster"
            if not pending:  # the same serve, after PostgreSQL came back
                healed.append(await_service(kms))
                ck.verify(run, kms, cycle, since)
            # progress, so that a run cut short still says how far it came
            failed = len(run.failures) + sum(len(c.failures) for c in run.clients)
            print(f"kill {cycle + 1}: {target}; {failed} failure(s) so far", flush=True)
    counts["serve_recovered_s_max"] = round(max(healed, default=0.0), 2)
    counts["postgres_start_s_max"] = round(max(cluster.recoveries, default=0.0), 2)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="1..5000")
    parser.add_argument("--clients", type=int, default=8, help="1..32")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=3000.0, help="stop starting cycles after")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers N (1..8)")
    parser.add_argument("--sample", type=int, default=40, help="older keys checked a kill")
    parser.add_argument(
        "--in-turn", action="store_true", help="kill serve, postmaster, both in turn (not 2:2:1)"
    )
    parser.add_argument(
        "--postgres-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the postmaster (the control: synchronous_commit=off must lose "
        "acknowledged calls to postmaster kills, and the checks must say so)",
    )
    args = parser.parse_args(argv)
    if not (1 <= args.kills <= 5000 and 1 <= args.clients <= 32 and 1 <= args.workers <= 8):
        parser.error("--kills 1..5000, --clients 1..32, --workers 1..8")
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pg-kill-") as tmp:
        # the postgres user must reach its directory below (traverse, not list or write)
        os.chmod(tmp, 0o711)  # noqa: S103
        data, log = Path(tmp) / "data", Path(tmp) / "serve.log"
        with own_cluster(Path(tmp) / "pg", args.postgres_setting) as cluster:
            clients = [ck.Client(n) for n in range(args.clients)]
            where = ["--database-url", cluster.url, "--data-dir", str(data)]
            run = ck.Run(data, where, clients, random.Random(seed), args.sample)
            counts = cycles(run, args, cluster, log)
    code = ck.report(run, seed, args.workers, time.monotonic() - began)
    print("PG_KILL_JSON " + json.dumps(counts))
    return code


if __name__ == "__main__":
    sys.exit(main())
