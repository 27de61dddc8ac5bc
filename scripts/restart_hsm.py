#!/usr/bin/env python3
"""Reliability figure A4 for an HSM node at its count: restart one ``strongroom hsm-node`` again
and again and check that its audit log stays gapless and its reboot counter rises by one a start.

    .venv/bin/python scripts/restart_hsm.py [--restarts 100] [--seed N] [--seconds 1200]

The node (a temporary data directory, a free 127.0.0.1 port, cheap Argon2id) is activated, given
a crypto user and an AES key, and a ciphertext is made. Each cycle stops it, by SIGTERM or by
SIGKILL at random, starts it again, logs in, decrypts the first ciphertext and encrypts anew.
At the end the admin reads the whole audit log: sequence numbers 0..n-1 with no gap, one
``CN_INIT_DONE`` per start with reboot counters 1..N+1, and every record's reboot counter that of
the start it was written in (never going back). Exit status 1 on any failure. The node is
stopped by its PID, also on error.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from strongroom.hsm.audit import AuditRecord
from strongroom.hsm.client import HsmClient, client_ssl_context

BIN = Path(sys.executable).parent / "strongroom"
ARGON2 = ["--argon2-time-cost", "1", "--argon2-memory-kib", "8192"]
ADMIN_PW, USER_PW = "admin-pass-1", "alice-pass-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BIN), "hsm-node", "--data-dir", str(data), "--port", str(port), *ARGON2],
            stdout=out, stderr=out,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"hsm-node exited with {proc.returncode}; see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return proc
        if time.monotonic() > deadline:
            raise RuntimeError("hsm-node did not listen within 30 s")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def client(data: Path, port: int) -> HsmClient:
    context = client_ssl_context(node_cert=data / "hsm-certificate.pem")
    return HsmClient([f"127.0.0.1:{port}"], context, timeout=15)


def read_audit(data: Path, port: int) -> list[AuditRecord]:
    """The node's whole audit log, read by the admin."""
    records: list[AuditRecord] = []
    with client(data, port) as c:
        c.login("admin", ADMIN_PW, "admin")
        while True:
            batch = c.audit(len(records), 10000)
            records += batch
            if len(batch) < 10000:
                break
        c.logout()
    return records


def check(records: list[AuditRecord], starts: int) -> list[str]:
    """Gapless sequence, one start record per start with the counters 1..starts+1, and no
    record's reboot counter going back."""
    failures: list[str] = []
    seqs = [r.seq for r in records]
    if seqs != list(range(len(records))):
        gaps = [b for a, b in itertools.pairwise(seqs) if b != a + 1]
        failures.append(f"audit sequence not 0..{len(records) - 1}: breaks before {gaps[:5]}")
    boots = [r.reboot for r in records if r.opcode.startswith("CN_INIT_DONE")]
    if boots != list(range(1, starts + 2)):
        failures.append(f"reboot counters of the starts: {boots[:5]}..{boots[-5:]}")
    if [r.reboot for r in records] != sorted(r.reboot for r in records):
        failures.append("a record's reboot counter goes back")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=100, help="1..5000")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=1200.0, help="stop starting cycles after")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    began = time.monotonic()
    failures: list[str] = []
    kills = starts = 0
    with tempfile.TemporaryDirectory(prefix="strongroom-hsm-restarts-") as tmp:
        data, log, port = Path(tmp) / "node", Path(tmp) / "node.log", free_port()
        proc = start(data, port, log)
        try:
            with client(data, port) as c:
                c.activate(ADMIN_PW)
                c.login("admin", ADMIN_PW, "admin")
                c.create_user("alice", "crypto-user", USER_PW)
                c.logout()
                c.login("alice", USER_PW)
                ciphertext = c.encrypt(c.generate_aes_key("kept").ref, b"kept", b"aad")
                c.logout()
            while starts < args.restarts and time.monotonic() - began < args.seconds:
                kill = rng.random() < 0.5
                stop(proc, signal.SIGKILL if kill else signal.SIGTERM)
                kills += kill
                proc = start(data, port, log)
                starts += 1
                with client(data, port) as c:
                    c.login("alice", USER_PW)
                    ref = c.find_key_by_label("kept").ref
                    if c.decrypt(ref, ciphertext, b"aad") != b"kept":
                        failures.append(f"start {starts}: the first ciphertext does not decrypt")
                    c.encrypt(ref, b"cycle %d" % starts, b"aad")
                    c.logout()
            records = read_audit(data, port)
        finally:
            stop(proc, signal.SIGTERM)
    failures += check(records, starts)
    reboots = [r.reboot for r in records]
    print(
        f"seed {seed}: {starts} restarts ({kills} by SIGKILL, {starts - kills} by SIGTERM) in "
        f"{time.monotonic() - began:.0f} s; {len(records)} audit records, sequence "
        f"0..{len(records) - 1}, reboot counters 1..{max(reboots, default=0)}; "
        f"failures {len(failures)}"
    )
    for failure in failures[:10]:
        print("  ", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
