"""Fault script: kill an HSM node under load and report what clients saw.

Starts ``strongroom serve`` (own data dir, free port), sets up a cluster of two HSMs, a
connected custom key store and a key in it (cloudhsm_setup.py), then runs ``--clients``
threads doing Encrypt through that key with boto3 (standard retry mode, ``--retries``
attempts). After ``--kill-after`` seconds it SIGKILLs one HSM node process. It reports:

* requests acknowledged and failed (after the client's retries), and failures in a window
  around the kill;
* whether every acknowledged ciphertext still decrypts at the end (goal: no acknowledged
  operation lost);
* the time until the control plane has replaced the dead HSM (a new HsmId ACTIVE in the same
  AZ) and the cluster has two ACTIVE HSMs again.

Not part of the default test run. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from authz_bench import strongroom
from botocore.exceptions import BotoCoreError, ClientError
from cloudhsm_setup import client, setup_store, wait_for
from kms_bench import BIN, Settings


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: list[tuple[bytes, bytes]] = []
        self.failures: list[tuple[float, str]] = []


def worker(kms: Any, key: str, stop: threading.Event, tally: Tally, seed: int) -> None:
    n = 0
    while not stop.is_set():
        plaintext = f"{seed}-{n}".encode()
        n += 1
        try:
            blob = kms.encrypt(KeyId=key, Plaintext=plaintext)["CiphertextBlob"]
        except (ClientError, BotoCoreError) as exc:
            with tally.lock:
                tally.failures.append((time.monotonic(), str(exc)[:160]))
            continue
        with tally.lock:
            tally.acked.append((plaintext, blob))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="client threads (8)")
    parser.add_argument("--kill-after", type=float, default=5.0, help="seconds of load first")
    parser.add_argument("--duration", type=float, default=30.0, help="total load seconds (30)")
    parser.add_argument("--retries", type=int, default=3, help="boto3 max_attempts (3)")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers (1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(1, 1, 1, 0, 1, False, args.workers)
    with tempfile.TemporaryDirectory(prefix="cloudhsm-fault-") as tmp:
        workdir = Path(tmp)
        with strongroom(settings, workdir / "serve.log", "strongroom") as server:
            data_dir = Path(server.key_id)
            creds = (server.access_key, server.secret_key)
            made = setup_store(BIN, server.endpoint, *creds, workdir)
            hsm = client("cloudhsmv2", server.endpoint, *creds)
            tally, stop = Tally(), threading.Event()
            threads = [
                threading.Thread(
                    target=worker,
                    args=(
                        client("kms", server.endpoint, *creds, args.retries),
                        made.key_id,
                        stop,
                        tally,
                        i,
                    ),
                )
                for i in range(args.clients)
            ]
            start = time.monotonic()
            for t in threads:
                t.start()
            time.sleep(args.kill_after)
            hsms = hsm.describe_clusters(Filters={"clusterIds": [made.cluster_id]})["Clusters"][0]
            victim = hsms["Hsms"][0]
            pid = int((data_dir / "hsms" / victim["HsmId"] / "node.pid").read_text())
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            print(f"killed HSM {victim['HsmId']} ({victim['AvailabilityZone']}, PID {pid}) "
                  f"after {killed - start:.1f} s of load")  # fmt: skip

            def replaced(c: dict[str, Any]) -> bool:
                active = [h for h in c["Hsms"] if h["State"] == "ACTIVE"]
                return len(active) == 2 and victim["HsmId"] not in {h["HsmId"] for h in active}

            cluster = wait_for(
                lambda: hsm.describe_clusters(Filters={"clusterIds": [made.cluster_id]})[
                    "Clusters"
                ][0],
                replaced,
            )
            replacement = time.monotonic() - killed
            new = [
                h for h in cluster["Hsms"] if h["AvailabilityZone"] == victim["AvailabilityZone"]
            ]
            time.sleep(max(0.0, args.duration - (time.monotonic() - start)))
            stop.set()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - start
            kms = client("kms", server.endpoint, *creds, args.retries)
            lost = sum(
                1 for plaintext, blob in tally.acked
                if kms.decrypt(CiphertextBlob=blob)["Plaintext"] != plaintext
            )  # fmt: skip
    near = [f for f in tally.failures if killed - 1 <= f[0] <= killed + replacement + 1]
    total = len(tally.acked) + len(tally.failures)
    print(f"load: {args.clients} clients, Encrypt through custom-key-store key, {elapsed:.1f} s, "
          f"boto3 max_attempts={args.retries}")  # fmt: skip
    print(f"requests: {total} ({total / elapsed:,.0f}/s); acknowledged {len(tally.acked)}; "
          f"failed after retries {len(tally.failures)} ({len(near)} around the kill)")  # fmt: skip
    for _, text in tally.failures[:5]:
        print(f"  failure: {text}")
    print(f"acknowledged ciphertexts that no longer decrypt: {lost} of {len(tally.acked)}")
    print(f"time to replacement: {replacement:.1f} s (new HSM {new[0]['HsmId'] if new else '?'} "
          f"in {victim['AvailabilityZone']})")  # fmt: skip
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
