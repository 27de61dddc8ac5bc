#!/usr/bin/env python3
"""Reliability figure S4 under load: many concurrent connections each sending an oversized or
a near-limit request to ``strongroom serve``; serve's memory must stay bounded, every request
must get an AWS-shaped answer, no worker may die, and other clients must still be served.

    .venv/bin/python scripts/upload_flood.py [--connections 1000] [--workers 2]
        [--modes declared,chunked,held,headers,head-over] [--seconds 600] [--one-serve]

A fresh ``serve`` (temporary data directory, free 127.0.0.1 port, its trail on) is started and
stopped by its PID. Each mode opens ``--connections`` connections at once, and each sends:

* ``declared``: a POST declaring ``Content-Length: 10 MiB``, then body bytes in 16 KiB writes
  until the answer comes: 413 expected, before the client has sent more than the limit plus
  what the sockets buffer;
* ``chunked``: a chunked POST whose chunks go past the 64 KiB limit: 413 expected;
* ``held``: a POST declaring 65,000 bytes and sending 64,000 of them, then waiting until every
  connection holds its part (the most serve can be made to keep per connection), then the rest:
  an AWS-shaped 4xx (the request is not signed);
* ``headers``: a flood of 2,000 short header lines (~60 KiB): 431 expected (more than 100
  lines);
* ``head-over``: one header line of 65 KiB (the head limit is 16 KiB): 431 expected.

Each mode runs against a serve of its own (``--one-serve``: all of them in turn against one,
their growth measured from the same start). During each mode a signed ListKeys is made every
0.2 s (boto3); serve's resident memory (the sum over its process tree: main process, workers,
trail writer) is sampled every 20 ms. The run fails on any answer that is not the expected
status with a ``{"__type", "message"}`` body, a dropped connection, a ListKeys that fails or
takes more than 5 s, a changed set of serve's processes, a traceback in serve's log, or memory
growth of 100 MiB or more over serve's resident memory before the flood. Exit status 1 on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz_serve as fs

LIMIT = 64 * 1024
MODES = ("declared", "chunked", "held", "headers", "head-over")
GROWTH_LIMIT = 100 * 1024 * 1024
_HEAD = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
_TARGET = "X-Amz-Target: TrentService.Encrypt\r\n"


@dataclass
class ModeResult:
    mode: str
    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    peak_growth: int = 0
    probe_worst: float = 0.0
    probes: int = 0
    seconds: float = 0.0


def tree_rss(root: int) -> tuple[int, set[int]]:
    """Resident bytes of ``root`` and all its descendants, and their PIDs."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total, alive = 0, set()
    for pid in tree:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
                alive.add(pid)
    return total, alive


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, body) of one HTTP answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return status, await reader.readexactly(length) if length else b""


def aws_shaped(body: bytes) -> bool:
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("__type"), str) and "message" in doc


class Flood:
    """One mode's connections, released together where the mode holds them."""

    def __init__(self, port: int, mode: str, count: int) -> None:
        self.port, self.mode, self.count = port, mode, count
        self.holding = 0
        self.all_holding = asyncio.Event()
        self.result = ModeResult(mode)

    def held(self) -> None:
        self.holding += 1
        if self.holding == self.count:
            self.all_holding.set()

    async def one(self, n: int) -> None:
        reader, writer = await asyncio.open_connection(fs.HOST, self.port, limit=1 << 20)
        try:
            status, body = await asyncio.wait_for(getattr(self, "_" + self.mode.replace("-", "_"))(
                reader, writer), 90)  # fmt: skip
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            self.result.problems.append(f"connection {n}: {type(exc).__name__}: {exc}")
            return
        finally:
            writer.close()
        self.result.statuses[status] += 1
        expected = {"declared": {413}, "chunked": {413}, "headers": {431}, "head-over": {431}}.get(
            self.mode
        )
        if status not in (expected or range(400, 500)):
            self.result.problems.append(f"connection {n}: status {status}, {body[:200]!r}")
        if not aws_shaped(body):
            self.result.problems.append(f"connection {n}: not AWS-shaped: {body[:200]!r}")

    async def _send_until_answered(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, piece: Callable[[], bytes]
    ) -> tuple[int, bytes]:
        answer = asyncio.ensure_future(read_answer(reader))
        sent = 0
        while not answer.done() and sent < 2 * 1024 * 1024:
            writer.write(piece())
            sent += 16 * 1024
            try:
                await asyncio.wait_for(writer.drain(), 2)
            except (OSError, TimeoutError):
                break  # the server stopped reading or closed: its answer is there
            await asyncio.sleep(0)
        return await answer

    async def _declared(
        self, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> tuple[int, bytes]:
        w.write(f"{_HEAD}{_TARGET}Content-Length: {10 * 1024 * 1024}\r\n\r\n".encode())
        return await self._send_until_answered(r, w, lambda: b"x" * (16 * 1024))

    async def _chunked(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> tuple[int, bytes]:
        w.write(f"{_HEAD}{_TARGET}Transfer-Encoding: chunked\r\n\r\n".encode())
        return await self._send_until_answered(r, w, lambda: b"4000\r\n" + b"y" * 0x4000 + b"\r\n")

    async def _held(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> tuple[int, bytes]:
        w.write(f"{_HEAD}{_TARGET}Content-Length: 65000\r\n\r\n".encode() + b"z" * 64000)
        await w.drain()
        self.held()
        await self.all_holding.wait()
        w.write(b"z" * 1000)
        return await read_answer(r)

    async def _headers(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> tuple[int, bytes]:
        lines = "".join(f"X-Pad-{i:04d}: {'p' * 16}\r\n" for i in range(2000))
        w.write(f"{_HEAD}{_TARGET}{lines}Content-Length: 2\r\n\r\n{{}}".encode())
        return await read_answer(r)

    async def _head_over(
        self, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> tuple[int, bytes]:
        w.write(f"{_HEAD}X-Big: {'b' * (LIMIT + 1024)}\r\n\r\n".encode())
        return await read_answer(r)

    async def run(self) -> ModeResult:
        await asyncio.gather(*(self.one(n) for n in range(self.count)))
        return self.result


def probe(endpoint: fs.Endpoint, stop: threading.Event, result: ModeResult) -> None:
    kms = boto3.client(
        "kms", endpoint_url=endpoint.url, region_name="us-east-1",
        aws_access_key_id=endpoint.akid, aws_secret_access_key=endpoint.secret,
        config=Config(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=10),
    )  # fmt: skip
    while not stop.wait(0.2):
        began = time.monotonic()
        try:
            kms.list_keys()
        except Exception as exc:  # any failure of a normal client is the finding
            result.problems.append(f"ListKeys during the flood failed: {exc}")
            continue
        took = time.monotonic() - began
        result.probes += 1
        result.probe_worst = max(result.probe_worst, took)
        if took > 5:
            result.problems.append(f"ListKeys during the flood took {took:.1f} s")


def run_mode(endpoint: fs.Endpoint, root: int, mode: str, count: int, base: int) -> ModeResult:
    flood = Flood(endpoint.port, mode, count)
    stop = threading.Event()
    prober = threading.Thread(target=probe, args=(endpoint, stop, flood.result), daemon=True)
    peak = [0]

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], tree_rss(root)[0])

    sampler = threading.Thread(target=sample, daemon=True)
    began = time.monotonic()
    prober.start()
    sampler.start()
    try:
        result = asyncio.run(flood.run())
    finally:
        stop.set()
        prober.join(timeout=15)
        sampler.join(timeout=5)
    result.seconds = time.monotonic() - began
    result.peak_growth = peak[0] - base
    if result.peak_growth >= GROWTH_LIMIT:
        result.problems.append(f"memory grew by {result.peak_growth / 2**20:.1f} MiB")
    return result


def flood_one_serve(modes: list[str], count: int, workers: int) -> bool:
    """Run ``modes`` in turn against a new serve; True if anything failed."""
    failed = False
    with tempfile.TemporaryDirectory(prefix="strongroom-flood-") as tmp:
        log = Path(tmp) / "serve.log"
        with fs.serve(log, workers=workers) as endpoint:
            root = endpoint.pid
            time.sleep(1.0)  # workers and the trail writer up
            base, pids = tree_rss(root)
            print(f"serve: {len(pids)} processes, {base / 2**20:.1f} MiB resident at the start")
            for one in modes:
                result = run_mode(endpoint, root, one, count, base)
                now_pids = tree_rss(root)[1]
                if now_pids != pids:
                    result.problems.append(f"serve's processes changed: {pids} -> {now_pids}")
                statuses = ", ".join(f"{s}: {n}" for s, n in sorted(result.statuses.items()))
                print(
                    f"{one:>9}: {count} connections in {result.seconds:.1f} s; answers {statuses};"
                    f" peak growth {result.peak_growth / 2**20:.1f} MiB; {result.probes} ListKeys,"
                    f" worst {result.probe_worst * 1000:.0f} ms; problems {len(result.problems)}"
                )
                for problem in result.problems[:10]:
                    print("   ", problem)
                failed = failed or bool(result.problems)
        problems = fs.log_problems(log.read_text(errors="replace"))
        for line in problems[:10]:
            print("serve log:", line)
    return failed or bool(problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000, help="1..5000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--seconds", type=float, default=600.0, help="stop starting modes after")
    parser.add_argument(
        "--one-serve", dest="fresh", action="store_false",
        help="every mode in turn against one serve (growth then accumulates), not one each",
    )  # fmt: skip
    args = parser.parse_args(argv)
    count = max(1, min(args.connections, 5000))
    modes = [m for m in args.modes.split(",") if m]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown modes: {sorted(unknown)}")
    failed = False
    deadline = time.monotonic() + args.seconds
    for group in [[m] for m in modes] if args.fresh else [modes]:
        if time.monotonic() > deadline:
            break
        failed = flood_one_serve(group, count, args.workers) or failed
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
