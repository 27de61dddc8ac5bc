#!/usr/bin/env python3
"""Kill ``strongroom serve`` with SIGKILL at random points under concurrent writes; after each
restart, nothing it acknowledged may be missing (reliability figure D1, and the trail's promise
that an answered call's record is durable).

    .venv/bin/python scripts/crash_kill.py [--kills 20] [--clients 8] [--seed N]
        [--seconds 900] [--workers 1] [--database-url postgresql://127.0.0.1:5432/DB]

One data directory for the whole run. Each cycle starts ``serve`` on a free 127.0.0.1 port,
runs ``--clients`` boto3 clients (no retries) that each make and use keys of their own —
CreateKey, Encrypt, GenerateDataKey, CreateAlias, PutKeyPolicy, EnableKeyRotation,
RotateKeyOnDemand, ScheduleKeyDeletion — and SIGKILLs serve's whole process group (the
request processes and the trail writer) after a random 0.3-2.5 s. A call that was answered
is acknowledged; a call cut off by the kill may or may not have taken effect, but not in part.
Before the restart the SQLite files (the service's store and the trail's) must pass
``PRAGMA integrity_check``. After it:

* every acknowledged key is there, in the state its acknowledged calls left it (Enabled or
  PendingDeletion, rotation on or off, the last key policy put, each on-demand rotation done
  or still pending) or, for the key of a cut-off call, in one of the two states;
* every acknowledged alias names its key; every acknowledged ciphertext (each cycle's, and a
  sample of older ones) decrypts to its plaintext, and data keys to theirs;
* a key that only a cut-off CreateKey can explain is whole: described, and usable if Enabled;
* ``strongroom audit export`` holds a record of every acknowledged call (by request id), and
  ``strongroom audit verify`` passes.

Exit status 1 on any failure, each printed. Bounded by ``--kills`` and ``--seconds``; servers
are stopped by their process group's PID, also on error.
"""

from __future__ import annotations

import argparse
import base64
import configparser
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_serve import HOST, free_port, listening
from fuzz_wire import REGION

BIN = Path(sys.executable).parent / "strongroom"
#: errors that mean the call was cut off (the server died under it), not refused
CUT_OFF = (BotoCoreError, ConnectionError, OSError)


@dataclass
class Key:
    state: str = "Enabled"  # or PendingDeletion
    rotation: bool = False
    policy_sid: str | None = None
    aliases: list[str] = field(default_factory=list)
    blobs: list[tuple[bytes, bytes, int]] = field(default_factory=list)  # blob, plaintext, cycle
    touched: int = 0  # the last cycle with a call on it
    on_demand: int = 0  # RotateKeyOnDemand calls acknowledged (each done, or pending)
    rotate_asked: int = -1  # the last cycle that asked for an on-demand rotation


@dataclass
class Client:
    """One client thread's keys, and the call the kill cut off (op, key id, argument)."""

    number: int
    keys: dict[str, Key] = field(default_factory=dict)
    cut_off: tuple[str, str, str] | None = None
    acked: list[tuple[str, str, int]] = field(default_factory=list)  # request id, op, cycle
    failures: list[str] = field(default_factory=list)


@contextlib.contextmanager
def serve(
    data: Path, workers: int, log: Path, extra: list[str]
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``serve`` in a process group of its own; SIGKILLed as a group (by its PID) at the end."""
    port = free_port()
    argv = [str(BIN), "serve", "--port", str(port), "--data-dir", str(data), *extra]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*argv, "--workers", str(workers)], stdout=out, stderr=out, start_new_session=True,
            env={**os.environ, "STRONGROOM_TESTING_ALLOW_NO_TRAIL": "1"},  # --serve-arg's control
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}; see {log}")
            if listening(port):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not listen within 60 s")
            time.sleep(0.1)
        yield proc, port
    finally:
        kill_group(proc)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def aws_client(service: str, data: Path, port: int) -> Any:
    """A boto3 client with serve's administrator credentials; no retries: a call that fails
    was cut off, and resending it would blur what was acknowledged."""
    creds = configparser.ConfigParser()
    creds.read(data / "credentials")
    section = creds["strongroom"]
    return boto3.client(
        service,
        endpoint_url=f"http://{HOST}:{port}",
        region_name=REGION,
        aws_access_key_id=section["aws_access_key_id"],
        aws_secret_access_key=section["aws_secret_access_key"],
        config=BotoConfig(
            retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=10
        ),
    )


def policy(account: str, sid: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": sid, "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*", "Resource": "*"}]})  # fmt: skip


def work(client: Client, kms: Any, account: str, cycle: int, rng: random.Random,
         stop: threading.Event) -> None:  # fmt: skip
    """Calls until the server dies under one (that call is the cut-off one) or ``stop``."""
    while not stop.is_set():
        usable = [k for k, v in client.keys.items() if v.state == "Enabled"]
        roll = rng.random()
        key = rng.choice(usable) if usable else ""
        if len(usable) < 2 or roll < 0.12:
            op, arg = "CreateKey", ""
        elif roll < 0.40:
            op, arg = "Encrypt", base64.b64encode(rng.randbytes(24)).decode()
        elif roll < 0.45:
            # one a cycle at most: the rotation completes in the scheduler's next pass (at
            # start, then a minute later); another before that is refused (ConflictException)
            op, arg = "RotateKeyOnDemand", ""
            if client.keys[key].on_demand >= 20 or client.keys[key].rotate_asked == cycle:
                continue
            client.keys[key].rotate_asked = cycle
        elif roll < 0.65:
            op, arg = "GenerateDataKey", ""
        elif roll < 0.77:
            op, arg = "CreateAlias", f"alias/c{client.number}-{cycle}-{rng.getrandbits(40):x}"
        elif roll < 0.87:
            op, arg = "PutKeyPolicy", f"s{rng.getrandbits(48):x}"
        elif roll < 0.95:
            op, arg = "EnableKeyRotation", ""
        else:
            op, arg = "ScheduleKeyDeletion", ""
        client.cut_off = (op, key, arg)
        if key:
            client.keys[key].touched = cycle
        try:
            answer = call(kms, op, key, arg, account)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500:
                return  # the trail died first: not acknowledged, its effect uncertain
            if op == "RotateKeyOnDemand" and exc.response["Error"]["Code"] == "ConflictException":
                client.cut_off = None  # a rotation of this key still pending: refused, no effect
                continue
            client.failures.append(f"{op} on {key or '-'} refused: {exc}")
            client.cut_off = None
            continue
        except CUT_OFF:
            return
        client.cut_off = None
        client.acked.append((answer["ResponseMetadata"]["RequestId"], op, cycle))
        record(client, op, key, arg, answer, cycle)


def call(kms: Any, op: str, key: str, arg: str, account: str) -> Any:
    if op == "CreateKey":
        return kms.create_key(Description="crash_kill")
    if op == "Encrypt":
        return kms.encrypt(KeyId=key, Plaintext=base64.b64decode(arg))
    if op == "GenerateDataKey":
        return kms.generate_data_key(KeyId=key, KeySpec="AES_256")
    if op == "CreateAlias":
        return kms.create_alias(AliasName=arg, TargetKeyId=key)
    if op == "PutKeyPolicy":
        return kms.put_key_policy(KeyId=key, PolicyName="default", Policy=policy(account, arg))
    if op == "EnableKeyRotation":
        return kms.enable_key_rotation(KeyId=key)
    if op == "RotateKeyOnDemand":
        return kms.rotate_key_on_demand(KeyId=key)
    return kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)


def record(client: Client, op: str, key: str, arg: str, answer: Any, cycle: int) -> None:
    if op == "CreateKey":
        client.keys[answer["KeyMetadata"]["KeyId"]] = Key(touched=cycle)
    elif op == "Encrypt":
        client.keys[key].blobs.append((answer["CiphertextBlob"], base64.b64decode(arg), cycle))
    elif op == "GenerateDataKey":
        client.keys[key].blobs.append((answer["CiphertextBlob"], answer["Plaintext"], cycle))
    elif op == "CreateAlias":
        client.keys[key].aliases.append(arg)
    elif op == "PutKeyPolicy":
        client.keys[key].policy_sid = arg
    elif op == "EnableKeyRotation":
        client.keys[key].rotation = True
    elif op == "RotateKeyOnDemand":
        client.keys[key].on_demand += 1
    else:
        client.keys[key].state = "PendingDeletion"


# --- after a restart ----------------------------------------------------------------------------


def check_key(client: Client, kms: Any, key_id: str, key: Key, cycle: int,
              rng: random.Random, sample: int) -> int:  # fmt: skip
    """Check one key against the ledger, settling what its cut-off call did; return the
    number of ciphertexts decrypted."""
    fail = client.failures.append
    cut = client.cut_off if client.cut_off and client.cut_off[1] == key_id else None
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    states = {key.state} | (
        {"PendingDeletion"} if cut and cut[0] == "ScheduleKeyDeletion" else set()
    )
    if meta["KeyState"] not in states:
        fail(f"key {key_id}: {meta['KeyState']}, expected {sorted(states)}")
    key.state = meta["KeyState"]
    if key.state != "Enabled":
        return 0
    status = kms.get_key_rotation_status(KeyId=key_id)
    rotation = status["KeyRotationEnabled"]
    if rotation != key.rotation and not (cut and cut[0] == "EnableKeyRotation" and rotation):
        fail(f"key {key_id}: rotation {rotation}, expected {key.rotation}")
    key.rotation = rotation
    # an acknowledged on-demand rotation is done (listed) or still pending, never lost
    rotations = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    on_demand = sum(r["RotationType"] == "ON_DEMAND" for r in rotations)
    on_demand += "OnDemandRotationStartDate" in status
    allowed = {key.on_demand} | (
        {key.on_demand + 1} if cut and cut[0] == "RotateKeyOnDemand" else set()
    )
    if on_demand not in allowed:
        fail(f"key {key_id}: {on_demand} on-demand rotations, expected {sorted(allowed)}")
    key.on_demand = on_demand
    statement = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    sids = {str(s.get("Sid")) for s in statement["Statement"]}
    if cut and cut[0] == "PutKeyPolicy" and cut[2] in sids:
        key.policy_sid = cut[2]  # the cut-off put took effect
    elif key.policy_sid is not None and key.policy_sid not in sids:
        fail(f"key {key_id}: policy Sids {sorted(sids)}, expected {key.policy_sid}")
        key.policy_sid = None  # reported once
    blobs = [b for b in key.blobs if b[2] == cycle]
    older = [b for b in key.blobs if b[2] != cycle]
    blobs += rng.sample(older, min(sample, len(older)))  # a key of the sample: older ones only
    for blob, plaintext, made in blobs:
        out = kms.decrypt(CiphertextBlob=blob)
        if out["Plaintext"] != plaintext or out["KeyId"].rsplit("/", 1)[1] != key_id:
            fail(f"key {key_id}: a ciphertext of cycle {made} decrypts wrong")
    return len(blobs)


def check_aliases(clients: list[Client], kms: Any) -> None:
    targets = {
        a["AliasName"]: a.get("TargetKeyId")
        for page in kms.get_paginator("list_aliases").paginate()
        for a in page["Aliases"]
    }
    for client in clients:
        for key_id, key in client.keys.items():
            for alias in key.aliases:
                if targets.get(alias) != key_id:
                    client.failures.append(f"{alias} names {targets.get(alias)}, not {key_id}")
        cut = client.cut_off
        if cut and cut[0] == "CreateAlias" and cut[2] in targets:
            if targets[cut[2]] != cut[1]:
                client.failures.append(f"cut-off {cut[2]} names {targets[cut[2]]}, not {cut[1]}")
            client.keys[cut[1]].aliases.append(cut[2])


def check_unknown_keys(clients: list[Client], kms: Any, failures: list[str]) -> int:
    """Keys no acknowledged call made: at most one per cut-off CreateKey, each whole. They
    join the ledger of the client whose CreateKey was cut off."""
    known = {k for c in clients for k in c.keys}
    creators = [c for c in clients if c.cut_off and c.cut_off[0] == "CreateKey"]
    unknown = [
        k["KeyId"]
        for page in kms.get_paginator("list_keys").paginate()
        for k in page["Keys"]
        if k["KeyId"] not in known
    ]
    if len(unknown) > len(creators):
        failures.append(f"{len(unknown)} unexplained keys for {len(creators)} cut-off CreateKey")
    for key_id, creator in zip(unknown, creators, strict=False):
        if kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] != "Enabled":
            failures.append(f"key {key_id} of a cut-off CreateKey is not Enabled")
            continue
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"whole")["CiphertextBlob"]
        if kms.decrypt(CiphertextBlob=blob)["Plaintext"] != b"whole":
            failures.append(f"key {key_id} of a cut-off CreateKey does not round-trip")
        creator.keys[key_id] = Key()
    return len(unknown)


def check_trail(
    where: list[str], since: float, cycle: int, clients: list[Client], failures: list[str]
) -> int:
    """Every call acknowledged in ``cycle`` (which began after ``since``) has its record; the
    chain and digests verify. Returns how many calls were checked."""
    done = subprocess.run(
        [str(BIN), "audit", "export", *where, "--since", f"{since:.0f}"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        failures.append(f"audit export failed: {done.stderr[-500:]}")
        return 0
    recorded = {json.loads(line).get("requestID") for line in done.stdout.splitlines() if line}
    acked = [(rid, op) for c in clients for rid, op, when in c.acked if when == cycle]
    missing = [(rid, op) for rid, op in acked if rid not in recorded]
    if missing:
        failures.append(f"{len(missing)} acknowledged calls have no record, e.g. {missing[:3]}")
    verify = subprocess.run(
        [str(BIN), "audit", "verify", *where],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if verify.returncode != 0:
        failures.append(f"audit verify failed: {(verify.stdout + verify.stderr)[-500:]}")
    return len(acked)


def integrity(data: Path, failures: list[str]) -> int:
    # the service's store and the trail's (the metrics' *.db files of --workers N are not SQLite)
    files = [data / name for name in ("strongroom.db", "audit.db") if (data / name).exists()]
    for path in files:
        with contextlib.closing(sqlite3.connect(path)) as db:
            result = db.execute("PRAGMA integrity_check").fetchall()
        if result != [("ok",)]:
            failures.append(f"{path.name}: integrity_check {result[:3]}")
    return len(files)


@dataclass
class Run:
    """What one run keeps between cycles."""

    data: Path
    where: list[str]  # how the audit commands find the trail
    clients: list[Client]
    rng: random.Random
    sample: int
    failures: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("kills", "acked", "checked", "decrypted", "unknown", "cut", "db"), 0
        )
    )


def verify(run: Run, kms: Any, cycle: int, since: float) -> None:
    """The state the kill of ``cycle`` left: its keys, a sample of the others, the trail."""
    totals = run.totals
    totals["unknown"] += check_unknown_keys(run.clients, kms, run.failures)
    check_aliases(run.clients, kms)
    every = [(c, k, v) for c in run.clients for k, v in c.keys.items() if v.state != "Lost"]
    recent = [e for e in every if e[2].touched == cycle]
    others = [e for e in every if e[2].touched != cycle]
    for client, key_id, key in recent + run.rng.sample(others, min(run.sample, len(others))):
        try:
            totals["decrypted"] += check_key(client, kms, key_id, key, cycle, run.rng, 5)
        except ClientError as exc:  # an acknowledged key or ciphertext lost, say
            client.failures.append(f"key {key_id}: {exc.response['Error']['Code']}: {exc}")
            key.state = "Lost"  # never used or checked again
        totals["checked"] += 1
    for client in run.clients:
        client.cut_off = None
    totals["acked"] += check_trail(run.where, since - 5, cycle, run.clients, run.failures)


def load_and_kill(
    run: Run,
    proc: subprocess.Popen[bytes],
    port: int,
    account: str,
    cycle: int,
    before_kill: Callable[[], None] | None = None,
    kill_serve: bool = True,
) -> None:
    """The clients' calls, cut off by a SIGKILL of serve's process group at a random time
    (``before_kill`` runs just before it: the power-loss harness cuts power there, the
    PostgreSQL harness kills the postmaster; with ``kill_serve`` false serve lives on)."""
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=work,
            args=(
                c,
                aws_client("kms", run.data, port),
                account,
                cycle,
                random.Random(run.rng.getrandbits(64)),
                stop,
            ),
        )
        for c in run.clients
    ]
    for thread in threads:
        thread.start()
    time.sleep(run.rng.uniform(0.3, 2.5))
    if before_kill is not None:
        before_kill()
    if kill_serve:
        kill_group(proc)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    run.totals["kills"] += 1
    run.totals["cut"] += sum(1 for c in run.clients if c.cut_off)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="1..5000")
    parser.add_argument("--clients", type=int, default=8, help="1..32")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=900.0, help="stop starting cycles after")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers N (1..8)")
    parser.add_argument(
        "--sample", type=int, default=40, help="keys of earlier cycles checked after each kill"
    )
    parser.add_argument(
        "--database-url", help="serve --database-url URL (a fresh PostgreSQL database)"
    )
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        help="an extra serve argument (--serve-arg=--insecure-no-audit-trail shows that the "
        "trail check fails when records are not kept)",
    )
    args = parser.parse_args(argv)
    if not (1 <= args.kills <= 5000 and 1 <= args.clients <= 32 and 1 <= args.workers <= 8):
        parser.error("--kills 1..5000, --clients 1..32, --workers 1..8")
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    database = ["--database-url", args.database_url] if args.database_url else []
    # a SIGTERM ends the run through the finally blocks, which kill the server's group
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    start, since = time.monotonic(), time.time()
    with tempfile.TemporaryDirectory(prefix="crash-kill-") as tmp:
        data, log = Path(tmp) / "data", Path(tmp) / "serve.log"
        clients = [Client(n) for n in range(args.clients)]
        where = [*database, "--data-dir", str(data)]
        run = Run(data, where, clients, random.Random(seed), args.sample)
        for cycle in range(args.kills + 1):
            with serve(data, args.workers, log, database + args.serve_arg) as (proc, port):
                account = aws_client("sts", data, port).get_caller_identity()["Account"]
                if cycle:
                    verify(run, aws_client("kms", data, port), cycle - 1, since)
                if cycle == args.kills or time.monotonic() - start > args.seconds:
                    break
                since = time.time()
                load_and_kill(run, proc, port, account, cycle)
            run.totals["db"] = integrity(data, run.failures)
    return report(run, seed, args.workers, time.monotonic() - start)


def report(run: Run, seed: int, workers: int, seconds: float) -> int:
    failures = run.failures + [f for c in run.clients for f in c.failures]
    totals, keys = run.totals, sum(len(c.keys) for c in run.clients)
    totals["rotated"] = sum(k.on_demand for c in run.clients for k in c.keys.values())
    print(f"crash_kill: seed {seed}, {totals['kills']} kills of serve --workers {workers} "
          f"under {len(run.clients)} clients in {seconds:.0f} s")  # fmt: skip
    print(f"  acknowledged calls checked for their trail record {totals['acked']}; keys "
          f"{keys}, checked {totals['checked']} times; ciphertexts decrypted "
          f"{totals['decrypted']}")  # fmt: skip
    print(f"  calls cut off {totals['cut']}; keys of cut-off CreateKey calls "
          f"{totals['unknown']}; on-demand rotations {totals['rotated']}; SQLite files "
          f"checked after each kill {totals['db']}")  # fmt: skip
    for failure in failures:
        print(f"FAIL {failure}")
    print("CRASH_KILL_JSON " + json.dumps({**totals, "keys": keys, "failures": len(failures)}))
    print(f"failures: {len(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
