"""Instructions per request of ``strongroom serve``, counted by callgrind: an A/B measure that a
noisy VM does not move.

A fresh ``strongroom serve --workers 1`` (temporary data dir, free loopback port, stopped by PID)
runs under ``valgrind --tool=callgrind --trace-children=yes`` with instrumentation off. A key is
made with boto3, ``--requests`` + 200 distinct requests are pre-signed; 200 warm the server up,
then instrumentation is switched on in the worker and the trail writer (``callgrind_control``),
the rest are sent over ``--connections`` keep-alive connections, and it is switched off again.
Prints each process's instructions per request (user space only: system calls and the
wake-ups they cause are not counted, so compare like with like).

    .venv/bin/python bench/kms_instructions.py [--operation Encrypt|GenerateDataKey|Sign]
        [--requests 600] [--connections 8] [--serve-arg=--insecure-no-audit-trail]

Needs valgrind (Debian: ``apt-get install -y valgrind``). About 30 s for 600 Encrypts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import kms_bench as kb
import kms_sign_bench as ksb

WARM_UP = 200


def parse_requests(path: Path) -> list[bytes]:
    """The raw HTTP/1.1 requests of a file in wrk_replay.lua's record format."""
    data, out, at = path.read_bytes(), [], 0
    while at < len(data):
        line_end = data.index(b"\n", at)
        target = data[at:line_end].decode()
        at = line_end + 1
        count_end = data.index(b"\n", at)
        count = int(data[at:count_end])
        at = count_end + 1
        headers = []
        for _ in range(count):
            end = data.index(b"\n", at)
            headers.append(data[at:end].decode())
            at = end + 1
        size_end = data.index(b"\n", at)
        size = int(data[at:size_end])
        at = size_end + 1
        body = data[at : at + size]
        at += size + 1
        head = f"{target} HTTP/1.1\r\n" + "".join(f"{h}\r\n" for h in headers)
        out.append(f"{head}Content-Length: {size}\r\n\r\n".encode() + body)
    return out


async def replay(port: int, requests: list[bytes], connections: int) -> None:
    """Send every request, one at a time per connection, and read each whole answer (2xx)."""
    pending = iter(requests)

    async def one() -> None:
        reader, writer = await asyncio.open_connection(kb.HOST, port)
        try:
            for request in pending:
                writer.write(request)
                status = await reader.readline()
                if b" 200 " not in status:
                    raise RuntimeError(f"not answered 200: {status!r}")
                length = 0
                while (line := await reader.readline()) != b"\r\n":
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))


def callgrind(step: str, pids: list[str]) -> None:
    """``callgrind_control STEP`` for each process."""
    for pid in pids:
        subprocess.run(["callgrind_control", step, pid], capture_output=True, check=False)


def describe(pid: str) -> str:
    """A child's role, from its command line."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"process {pid}"
    return "trail writer" if "writer" in cmdline else f"process {pid}"


def total_instructions(path: Path) -> int:
    """A dump's instruction count (its ``summary:`` line can read 0; ``totals:`` is right)."""
    lines = path.read_text(errors="replace").splitlines()
    counts = [int(line.split()[1]) for line in lines if line.startswith(("summary:", "totals:"))]
    return max(counts, default=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operation", choices=["Encrypt", "GenerateDataKey", "Sign"],
                        default="Encrypt")  # fmt: skip
    parser.add_argument("--requests", type=int, default=600, help="measured requests (1..20000)")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--serve-arg", action="append", default=[], help="extra serve argument")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 20_000 or not 1 <= args.connections <= 64:
        parser.error("--requests must be 1..20000 and --connections 1..64")
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"kms_instructions: {tool} is not installed (apt-get install -y valgrind)")
    with tempfile.TemporaryDirectory(prefix="kms-instructions-") as tmp:
        work = Path(tmp)
        port = kb.free_port()
        data_dir = work / "data"
        argv_ = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=yes",
                 f"--callgrind-out-file={work}/callgrind.%p", str(kb.BIN / "strongroom"),
                 "serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", "1",
                 *args.serve_arg]  # fmt: skip
        log = work / "serve.log"
        with log.open("wb") as out:
            # --serve-arg may ask for the trail-off baseline
            env = {**os.environ, "STRONGROOM_TESTING_ALLOW_NO_TRAIL": "1"}
            proc = subprocess.Popen(argv_, stdout=out, stderr=out, env=env)
        try:
            kb.wait_for_port(proc, port, log, timeout=600)
            access, secret = kb.read_credentials(data_dir / "credentials")
            server = kb.Server("strongroom", proc, port, access, secret)
            signed = work / "requests"
            count = args.requests + WARM_UP
            if args.operation == "Sign":
                key_id = ksb.create_key(server, "RSA_2048")
                ksb.sign_requests(server, key_id, ksb.CASES["RSA_2048"], count, signed)
            else:
                server.key_id, server.blob = kb.create_key(server)
                kb.sign_requests(server, args.operation, count, signed)
            requests = parse_requests(signed)
            asyncio.run(replay(port, requests[:WARM_UP], args.connections))
            found = subprocess.run(
                ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
            )
            pids = [str(proc.pid), *found.stdout.split()]
            role = {pid: describe(pid) for pid in pids[1:]}
            role[pids[0]] = "worker (serve)"
            callgrind("--instr=on", pids)
            asyncio.run(replay(port, requests[WARM_UP:], args.connections))
            callgrind("--instr=off", pids)
            callgrind("--dump", pids)
        finally:
            kb.stop(proc)
        print(f"{args.operation} x {args.requests} over {args.connections} connections, "
              f"serve --workers 1 {' '.join(args.serve_arg)}".rstrip())  # fmt: skip
        for dump in sorted(work.glob("callgrind.*.1")):
            pid = dump.name.split(".")[1]
            per_request = total_instructions(dump) / args.requests
            name = role.get(pid, f"process {pid}")
            print(f"  {name:<22} {per_request / 1000:>10,.0f} k instr/request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
