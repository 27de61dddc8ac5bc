"""Benchmark Strongroom's KMS Encrypt, Decrypt and GenerateDataKey against moto_server, in one run.

For each server (a fresh ``strongroom serve`` on a temporary data dir, the same with
``--insecure-no-audit-trail`` (``sr-notrail``: SigV4 and durable storage, no audit trail), then
``moto_server``),
each on a free loopback port (``--pin``: server on CPU 0, wrk on CPU 1): create a key with boto3,
pre-sign N distinct requests with botocore's SigV4Auth (service ``kms``, region us-east-1) right
before each load (signatures are valid for the server's 5-minute clock-skew window), replay them
with wrk (``bench/wrk_replay.lua``) for a bounded time, and collect requests/s, p50/p99 latency,
the non-2xx count (must be 0) and the CPU the server, wrk and everything else used. Prints a
side-by-side table with the Strongroom/moto ratios and writes JSON to ``bench/results/``.
``--profile`` adds one more Encrypt load on Strongroom under py-spy and prints its hot spots.

Needs wrk (Debian: ``apt-get install -y wrk``) and the bench extra
(``.venv/bin/pip install -e '.[bench]'``). See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import configparser
import contextlib
import functools
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
import kms_profile
import pg_database
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from kms_report import OPERATIONS, LoadResult, busy_warnings, check, save, table

HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk_replay.lua"
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
REGION = "us-east-1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A server process we started, and how to talk to it."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    access_key: str
    secret_key: str
    key_id: str = ""
    blob: bytes = b""  # a ciphertext under key_id, for Decrypt
    scheme: str = "http"

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://{HOST}:{self.port}"


@dataclass
class Settings:
    """How the loads are run (recorded in the JSON results)."""

    threads: int
    connections: int
    duration: int
    warmup: int
    signed: int
    pin: bool
    workers: int = 2
    server_cpus: str = "0"
    wrk_cpus: str = "1"
    notes: list[str] = field(default_factory=list)


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pinned(argv: list[str], cpus: str, settings: Settings) -> list[str]:
    return ["taskset", "-c", cpus, *argv] if settings.pin else argv


def wait_for_port(
    proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 60.0
) -> None:
    try:
        _wait_for_port(proc, port, timeout)
    except RuntimeError as exc:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"{exc}\n--- its output ---\n{tail}") from None


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.args!r} did not listen on {HOST}:{port} within {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started, by its PID: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def strongroom(
    settings: Settings, log: Path, name: str = "strongroom", extra: tuple[str, ...] = ()
) -> Iterator[Server]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        argv = [str(BIN / "strongroom"), "serve", "--port", str(port), "--data-dir", str(data_dir)]
        argv += ["--workers", str(settings.workers), *extra]
        with log.open("wb") as out:
            proc = subprocess.Popen(  # the trail-off baseline may be asked for
                pinned(argv, settings.server_cpus, settings), stdout=out, stderr=out,
                env={**os.environ, "STRONGROOM_TESTING_ALLOW_NO_TRAIL": "1"},
            )  # fmt: skip
        try:
            wait_for_port(proc, port, log)
            ak, sk = read_credentials(data_dir / "credentials")
            yield Server(name, proc, port, ak, sk)
        finally:
            stop(proc)


@contextlib.contextmanager
def on_postgres(dsn: str, settings: Settings, log: Path) -> Iterator[Server]:
    """``strongroom serve --database-url`` on a fresh database of ``dsn``'s server (its trail
    there too: one transaction a batch)."""
    with (
        pg_database.fresh_database(dsn) as url,
        strongroom(settings, log, POSTGRES, ("--database-url", url)) as server,
    ):
        yield server


@contextlib.contextmanager
def moto(settings: Settings, log: Path) -> Iterator[Server]:
    port = free_port()
    argv = [str(BIN / "moto_server"), "-H", HOST, "-p", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            pinned(argv, settings.server_cpus, settings), stdout=out, stderr=out
        )
    try:
        wait_for_port(proc, port, log)
        yield Server("moto", proc, port, "testing", "testing")
    finally:
        stop(proc)


def read_credentials(path: Path) -> tuple[str, str]:
    parser = configparser.ConfigParser()
    parser.read(path)
    section = parser["strongroom"]
    return section["aws_access_key_id"], section["aws_secret_access_key"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a running process and its running children (the worker processes of
    ``serve --workers N`` and its trail writer), whichever of its threads started them."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    total += cpu_seconds(int(child))
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all CPUs), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / CLK_TCK


def server_pid(server: Server) -> int:
    """The server's own PID (taskset execs it, so the PID is unchanged)."""
    return server.proc.pid


# --- requests ----------------------------------------------------------------------------------


def create_key(server: Server) -> tuple[str, bytes]:
    client = boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=BotoConfig(retries={"max_attempts": 1}),
    )
    key_id = client.create_key(Description="kms_bench")["KeyMetadata"]["KeyId"]
    blob = client.encrypt(KeyId=key_id, Plaintext=b"x" * 32)["CiphertextBlob"]
    assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x" * 32
    return str(key_id), bytes(blob)


def request_body(operation: str, key_id: str, blob: bytes = b"") -> dict[str, Any]:
    if operation == "Encrypt":
        return {"KeyId": key_id, "Plaintext": base64.b64encode(secrets.token_bytes(32)).decode()}
    if operation == "Decrypt":  # one ciphertext: the bodies are told apart by X-Bench-Seq
        return {"CiphertextBlob": base64.b64encode(blob).decode()}
    return {"KeyId": key_id, "KeySpec": "AES_256"}


def write_signed(
    server: Server, operation: str, bodies: Iterable[dict[str, Any]], path: Path
) -> None:
    """Write one SigV4-signed request per body in wrk_replay.lua's record format. Every request
    carries a signed ``X-Bench-Seq`` header, so even identical bodies get distinct signatures."""
    signer = SigV4Auth(Credentials(server.access_key, server.secret_key), "kms", REGION)
    with path.open("wb") as out:
        for seq, fields in enumerate(bodies):
            body = json.dumps(fields).encode()
            req = AWSRequest(
                method="POST",
                url=server.endpoint + "/",
                data=body,
                headers={
                    "X-Amz-Target": f"TrentService.{operation}",
                    "Content-Type": "application/x-amz-json-1.1",
                    "X-Bench-Seq": str(seq),
                },
            )
            signer.add_auth(req)
            headers = {"Host": f"{HOST}:{server.port}", **dict(req.headers.items())}
            lines = ["POST /", str(len(headers))]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            lines.append(str(len(body)))
            out.write(("\n".join(lines) + "\n").encode() + body + b"\n")


def sign_requests(server: Server, operation: str, count: int, path: Path) -> None:
    """``count`` distinct signed requests of ``operation`` (Encrypt bodies differ by their
    random plaintext; GenerateDataKey bodies are alike, told apart by ``X-Bench-Seq``)."""
    bodies = (request_body(operation, server.key_id, server.blob) for _ in range(count))
    write_signed(server, operation, bodies, path)


# --- load --------------------------------------------------------------------------------------


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        sys.exit(
            "kms_bench: wrk is not installed. On Debian/Ubuntu: sudo apt-get install -y wrk\n"
            "(the bench replays pre-signed requests with wrk and bench/wrk_replay.lua)"
        )
    return found


def run_wrk(
    server: Server, operation: str, settings: Settings, duration: int, workdir: Path
) -> LoadResult:
    """Sign fresh requests, replay them with wrk for ``duration`` seconds, and measure."""
    reqfile = workdir / f"{server.name}-{operation}.req"
    sign_requests(server, operation, settings.signed, reqfile)
    return replay(server, operation, reqfile, settings, duration)


def replay(
    server: Server, operation: str, reqfile: Path, settings: Settings, duration: int
) -> LoadResult:
    """Replay the signed requests in ``reqfile`` with wrk for ``duration`` seconds, measuring
    the server's, wrk's and the rest of the machine's CPU meanwhile."""
    argv = [
        wrk_binary(),
        f"-t{settings.threads}",
        f"-c{settings.connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        server.endpoint + "/",
        "--",
        str(reqfile),
    ]
    before_machine = machine_busy_seconds()
    before_server = tree_cpu_seconds(server_pid(server))
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        pinned(argv, settings.wrk_cpus, settings),
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
    )
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = tree_cpu_seconds(server_pid(server)) - before_server
    machine_cpu = machine_busy_seconds() - before_machine
    wrk_cpu = (after_children.ru_utime + after_children.ru_stime) - (
        before_children.ru_utime + before_children.ru_stime
    )
    cpu = (server_cpu, wrk_cpu, max(0.0, machine_cpu - server_cpu - wrk_cpu))
    return parse_wrk(server.name, operation, done, cpu)


def parse_wrk(
    name: str,
    operation: str,
    done: subprocess.CompletedProcess[str],
    cpu: tuple[float, float, float],
) -> LoadResult:
    """A LoadResult from wrk's WRK_JSON line and the (server, wrk, other) CPU seconds."""
    match = re.search(r"^WRK_JSON (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(match.group(1))
    seconds = data["duration_us"] / 1e6
    errors = data["errors"]
    return LoadResult(
        server=name,
        operation=operation,
        requests=data["requests"],
        seconds=seconds,
        rps=data["requests"] / seconds,
        p50_ms=data["latency_us"]["p50"] / 1000,
        p99_ms=data["latency_us"]["p99"] / 1000,
        max_ms=data["latency_us"]["max"] / 1000,
        non2xx=data["non2xx"] + max(0, data["requests"] - data["ok2xx"] - data["non2xx"]),
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        server_cpu_pct=100 * cpu[0] / seconds,
        wrk_cpu_pct=100 * cpu[1] / seconds,
        other_cpu_pct=100 * cpu[2] / seconds,
        rps_per_cpu=data["requests"] / cpu[0] if cpu[0] > 0 else 0.0,
        first_error=data["first_error"],
        statuses=data["statuses"],
    )


def bench_server(server: Server, settings: Settings, workdir: Path) -> list[LoadResult]:
    server.key_id, server.blob = create_key(server)
    if settings.warmup:
        run_wrk(server, "Encrypt", settings, settings.warmup, workdir)
    results = []
    for operation in OPERATIONS:
        result = run_wrk(server, operation, settings, settings.duration, workdir)
        print(f"  {server.name:<10} {operation:<16} {result.rps:>9,.0f} req/s", flush=True)
        results.append(result)
    return results


# --- profile -----------------------------------------------------------------------------------


def profile_strongroom(server: Server, settings: Settings, workdir: Path) -> list[str]:
    """Run one more Encrypt load on Strongroom under py-spy and summarise where the time goes."""

    def load() -> str:
        result = run_wrk(server, "Encrypt", settings, settings.duration, workdir)
        return f"Encrypt under py-spy: {result.rps:,.0f} req/s (sampling slows it a little)"

    RESULTS.mkdir(exist_ok=True)
    return kms_profile.record(
        server_pid(server),
        settings.duration,
        RESULTS / "strongroom-encrypt.pyspy.txt",
        load,
        pinned([], settings.wrk_cpus, settings),
    )


# --- main --------------------------------------------------------------------------------------


#: Strongroom with its audit trail off: SigV4 and durable storage, as issue 2's goal names them
NO_TRAIL = "sr-notrail"
#: Strongroom on PostgreSQL (--pg-dsn) instead of SQLite; asked for by name only
POSTGRES = "sr-postgres"
SERVERS = ("strongroom", NO_TRAIL, "moto")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per load (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per server")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--signed", type=int, default=2000, help="distinct signed requests")
    parser.add_argument("--workers", type=int, default=2, help="strongroom serve --workers (2)")
    parser.add_argument("--pin", action="store_true", help="pin server to CPU 0, wrk to CPU 1")
    parser.add_argument("--profile", action="store_true", help="py-spy Strongroom's Encrypt")
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"comma-separated, of {','.join(SERVERS)} (the default), {POSTGRES}",
    )
    parser.add_argument(
        "--pg-dsn",
        default=pg_database.DEFAULT_DSN,
        help=f"where {POSTGRES} creates its database (a postgresql:// URL)",
    )
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 60:
        parser.error("--duration must be 1..600 s and --warmup 0..60 s")
    if not 1 <= args.signed <= 100_000:
        parser.error("--signed must be 1..100000")
    if not 1 <= args.threads <= args.connections <= 10_000:
        parser.error("need 1 <= --threads <= --connections <= 10000")
    unknown = set(args.servers.split(",")) - {*SERVERS, POSTGRES}
    if unknown:
        parser.error(f"--servers: unknown {', '.join(sorted(unknown))} ({', '.join(SERVERS)})")
    return args


def make_settings(args: argparse.Namespace) -> Settings:
    pin = args.pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    settings = Settings(
        args.threads, args.connections, args.duration, args.warmup, args.signed, pin, args.workers
    )
    if pin:
        settings.notes.append("server pinned to CPU 0, wrk (and py-spy) to CPU 1")
    elif args.pin:
        settings.notes.append("--pin ignored: needs 2+ CPUs and taskset")
    return settings


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk_binary()
    settings = make_settings(args)
    servers: dict[str, Callable[[Settings, Path], contextlib.AbstractContextManager[Server]]] = {
        "strongroom": strongroom,
        NO_TRAIL: functools.partial(
            strongroom, name=NO_TRAIL, extra=("--insecure-no-audit-trail",)
        ),
        "moto": moto,
        POSTGRES: functools.partial(on_postgres, args.pg_dsn),
    }
    wanted = [name.strip() for name in args.servers.split(",") if name.strip()]
    print(
        f"wrk -t{settings.threads} -c{settings.connections} -d{settings.duration}s, "
        f"{settings.signed} pre-signed requests per load; "
        f"{'; '.join(settings.notes) or 'no pinning'}"
    )
    results: list[LoadResult] = []
    profile: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kms-bench-") as tmp:
        workdir = Path(tmp)
        for name in wanted:
            with servers[name](settings, workdir / f"{name}.log") as server:
                results += bench_server(server, settings, workdir)
                if args.profile and name == "strongroom":
                    profile = profile_strongroom(server, settings, workdir)
    print()
    print("\n".join(table(results)))
    if profile:
        print("\nStrongroom profile (py-spy):")
        print("\n".join(profile))
    if not args.no_save:
        print(f"\nresults: {save(RESULTS, asdict(settings), results, profile)}")
    for warning in busy_warnings(results):
        print(f"WARNING: {warning}", file=sys.stderr)
    problems = check(results)
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
