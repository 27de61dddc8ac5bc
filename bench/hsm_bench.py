"""Benchmark: a Strongroom HSM node (over TLS, through the client) next to SoftHSM2 (PKCS#11).

Operations: AES-256-GCM encrypt of 32 bytes with a token key, RSA-2048 PKCS#1 v1.5 SHA-256 sign.
Strongroom is driven with the async client (N concurrent requests over a pool of TLS
connections); SoftHSM2 through python-pkcs11 in this process, one call after another (its
library is in-process, no network). Prints ops/s and the ratio Strongroom / SoftHSM2.

    .venv/bin/python bench/hsm_bench.py [--seconds 3] [--concurrency 64]

Needs Debian's softhsm2 (``apt-get install -y softhsm2``) and ``pip install python-pkcs11``;
without them only the Strongroom side is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from strongroom.hsm.client import AsyncHsmClient, client_ssl_context

SOFTHSM_LIBS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
)
PAYLOAD = b"\x42" * 32
PIN = "1234"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_node(data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [
        sys.executable,
        "-c",
        "from strongroom.cli import main; main()",
        "hsm-node",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--log-level",
        "WARNING",
    ]
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("node did not start")


async def rate_async(fn: Callable[[], Awaitable[Any]], seconds: float, concurrency: int) -> float:
    count = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await fn()
            count += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - start)


async def latency_async(fn: Callable[[], Awaitable[Any]], n: int = 500) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - start) / n * 1e6


async def strongroom_side(port: int, cert: Path, args: argparse.Namespace) -> dict[str, float]:
    ctx = client_ssl_context(node_cert=cert)
    async with AsyncHsmClient([f"127.0.0.1:{port}"], ctx, pool_size=args.pool) as c:
        await c.activate("bench-admin-pw")
        await c.login("admin", "bench-admin-pw", "admin")
        await c.create_user("bench", "crypto-user", "bench-user-pw")
        await c.logout()
        await c.login("bench", "bench-user-pw")
        aes = (await c.generate_aes_key("bench-aes")).ref
        _, priv = await c.generate_key_pair(
            "rsa", "bench-pub", "bench-priv", private_attributes={"sign": "true"}
        )
        out = {
            "aes_lat_us": await latency_async(lambda: c.encrypt(aes, PAYLOAD)),
            "aes": await rate_async(
                lambda: c.encrypt(aes, PAYLOAD), args.seconds, args.concurrency
            ),
            "rsa_lat_us": await latency_async(lambda: c.sign(priv.ref, PAYLOAD), 200),
            "rsa": await rate_async(
                lambda: c.sign(priv.ref, PAYLOAD), args.seconds, args.concurrency
            ),
        }
        await c.logout()
    return out


def rate_sync(fn: Callable[[], Any], seconds: float) -> float:
    count = 0
    start = time.perf_counter()
    stop = start + seconds
    while time.perf_counter() < stop:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def softhsm_side(workdir: Path, seconds: float) -> dict[str, float] | None:
    lib_path = next((p for p in SOFTHSM_LIBS if Path(p).exists()), None)
    try:
        import pkcs11
        from pkcs11 import KeyType, Mechanism
        from pkcs11.mechanisms import GCMParams
    except ImportError:
        return None
    if lib_path is None or shutil.which("softhsm2-util") is None:
        return None
    tokens = workdir / "tokens"
    tokens.mkdir()
    conf = workdir / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--so-pin",
            PIN,
            "--pin",
            PIN,
        ],
        check=True,
        capture_output=True,
    )
    token = pkcs11.lib(lib_path).get_token(token_label="bench")
    with token.open(user_pin=PIN, rw=True) as session:
        # python-pkcs11 mixes encrypt/sign into its key classes at run time; its types lack them.
        aes = cast(Any, session.generate_key(KeyType.AES, 256, store=True, label="bench-aes"))
        _, priv = session.generate_keypair(KeyType.RSA, 2048, store=True, label="bench-rsa")
        signer = cast(Any, priv)

        def gcm() -> bytes:
            params = GCMParams(os.urandom(12), None, 128)
            return bytes(aes.encrypt(PAYLOAD, mechanism=Mechanism.AES_GCM, mechanism_param=params))

        def sign() -> bytes:
            return bytes(signer.sign(PAYLOAD, mechanism=Mechanism.SHA256_RSA_PKCS))

        return {"aes": rate_sync(gcm, seconds), "rsa": rate_sync(sign, seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--pool", type=int, default=2, help="TLS connections to the node")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hsm-bench-") as tmp:
        work = Path(tmp)
        proc, port = start_node(work / "node")
        try:
            ours = asyncio.run(strongroom_side(port, work / "node" / "hsm-certificate.pem", args))
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(10)
        soft = softhsm_side(work, args.seconds)
    print(
        f"Strongroom HSM node over TLS: AES-GCM 32 B latency {ours['aes_lat_us']:.0f} us, "
        f"RSA-2048 sign latency {ours['rsa_lat_us']:.0f} us (one request at a time)"
    )
    print(f"{'operation':<24}{'strongroom ops/s':>18}{'softhsm2 ops/s':>18}{'ratio':>9}")
    for name, label in (("aes", "AES-GCM encrypt 32 B"), ("rsa", "RSA-2048 sign")):
        theirs = soft[name] if soft else float("nan")
        ratio = ours[name] / theirs if soft else float("nan")
        print(f"{label:<24}{ours[name]:>18,.0f}{theirs:>18,.0f}{ratio:>9.2f}")
    if soft is None:
        print("SoftHSM2 or python-pkcs11 not available: only Strongroom measured")


if __name__ == "__main__":
    main()
