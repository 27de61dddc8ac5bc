#!/usr/bin/env python3
"""Restart the nodes of a three-node Strongroom, one at a time, under load (reliability figure
D7); with ``--fault KILL``, ``STOP`` or ``mix``, node faults of D4 (SIGKILL, SIGSTOP).

    .venv/bin/python scripts/rolling_restart.py [--nodes 3] [--rounds 10] [--clients 6]
        [--fault TERM|KILL|STOP|mix] [--stop-seconds 3] [--pause 2] [--seconds 1800]
        [--seed N] [--database-url URL]

The nodes are ``serve`` processes, each with a data directory of its own and the first node's
``root.key`` and ``audit-signing.key``, sharing one PostgreSQL database: a cluster of the
script's own (``pg_kill.py``'s: ``initdb``, a free loopback port), or ``--database-url`` (an
empty database). ``--clients`` threads call CreateKey, Encrypt, Decrypt, GenerateDataKey,
CreateAlias and TagResource as a client behind a load balancer would: each call goes to the
next node, and one that is cut off or answered 5xx goes to the next node (CreateKey sent twice
makes two keys; only what was answered counts; a retried CreateAlias answered
AlreadyExistsException was done by its first attempt, whose answer was lost, and counts as
done: the final check confirms the alias). Meanwhile each round makes a fault on every
node in turn: ``TERM`` stops it cleanly and starts it again on the same port, ``KILL``
SIGKILLs its process group and starts it again, ``STOP`` suspends its process group for
``--stop-seconds`` (calls to it wait); ``mix`` picks a random fault and node each time. After
each fault a DisableKey is sent to one node and timed until every other node refuses the key
(more than a second is a failure), then the script pauses ``--pause`` seconds.

Then it checks, through every node: each acknowledged key is there with its aliases and tags;
each acknowledged ciphertext decrypts to its plaintext; each acknowledged call has its record
in the trail (``audit export``), and ``audit verify`` passes from every node's data directory.
A call that no node answered is a failure too. It prints ``ROLLING_JSON {...}``; exit status 1
on any failure. Bounded by ``--rounds`` and ``--seconds``; every process is stopped by its PID
or process group, also on error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crash_kill import BIN, CUT_OFF, aws_client
from fuzz_serve import free_port, listening
from pg_kill import own_cluster

SHARED = ("root.key", "audit-signing.key")


class Node:
    """One ``serve`` of the cluster, on a port it keeps across restarts."""

    def __init__(self, name: str, data: Path, url: str, log: Path) -> None:
        self.name, self.data, self.url, self.log = name, data, url, log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start serve; seconds until it listens."""
        began = time.monotonic()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN), "serve", "--port", str(self.port), "--data-dir", str(self.data),
                 "--database-url", self.url],
                stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip
        while not listening(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; {self.log}")
            if time.monotonic() - began > 90:
                raise RuntimeError(f"{self.name} did not listen within 90 s")
            time.sleep(0.05)
        return time.monotonic() - began

    def pause(self, seconds: float) -> None:
        """SIGSTOP of its process group for ``seconds``, then SIGCONT (a hung node)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self, how: str) -> float:
        """SIGTERM (SIGKILL after 60 s) or SIGKILL of its group; seconds until it is gone."""
        assert self.proc is not None
        began = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            if how == "KILL":
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):  # its trail writer, should it be left
            os.killpg(self.proc.pid, signal.SIGKILL)
        return time.monotonic() - began

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@dataclass
class Ledger:
    """What the clients were answered."""

    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> aliases, tags
    blobs: list[tuple[bytes, bytes]] = field(default_factory=list)  # ciphertext, plaintext
    acked: list[tuple[str, str]] = field(default_factory=list)  # request id, operation
    failovers: int = 0
    replayed: int = 0  # retries that found their first attempt done (CreateAlias)
    unanswered: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # 4xx answers: a client bug or a defect
    lock: threading.Lock = field(default_factory=threading.Lock)


def _call(ledger: Ledger, clients: list[Any], turn: int, op: str, **params: Any) -> Any:
    """``op`` on the next node, then on each other node while cut off or answered 5xx."""
    for attempt in range(len(clients)):
        kms = clients[(turn + attempt) % len(clients)]
        try:
            answer = getattr(kms, op)(**params)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if attempt and op == "create_alias" and code == "AlreadyExistsException":
                # the attempt before was carried out and its answer lost (a node killed between
                # its commit and its answer): as with AWS, the retry finds the alias; the final
                # check confirms it names the key
                with ledger.lock:
                    ledger.replayed += 1
                return exc.response
            if exc.response["ResponseMetadata"]["HTTPStatusCode"] < 500:
                with ledger.lock:
                    ledger.refused.append(f"{op}: {code}")
                return None
        except CUT_OFF:
            pass
        else:
            with ledger.lock:
                ledger.acked.append((answer["ResponseMetadata"]["RequestId"], op))
            return answer
        with ledger.lock:
            ledger.failovers += 1
    with ledger.lock:
        ledger.unanswered.append(op)
    return None


def _client_loop(
    ledger: Ledger, clients: list[Any], rng: random.Random, done: threading.Event
) -> None:
    mine: list[str] = []
    turn = rng.randrange(len(clients))
    while not done.is_set():
        turn += 1
        pick = rng.random()
        if not mine or pick < 0.1:
            made = _call(ledger, clients, turn, "create_key")
            if made is not None:
                key = made["KeyMetadata"]["KeyId"]
                mine.append(key)
                with ledger.lock:
                    ledger.keys[key] = {"aliases": [], "tags": {}}
        elif pick < 0.45:
            plain = rng.randbytes(24)
            sealed = _call(
                ledger, clients, turn, "encrypt", KeyId=rng.choice(mine), Plaintext=plain
            )
            if sealed is not None:
                with ledger.lock:
                    ledger.blobs.append((sealed["CiphertextBlob"], plain))
        elif pick < 0.7 and ledger.blobs:
            blob, plain = rng.choice(ledger.blobs)
            opened = _call(ledger, clients, turn, "decrypt", CiphertextBlob=blob)
            if opened is not None and opened["Plaintext"] != plain:
                with ledger.lock:
                    ledger.refused.append("Decrypt: a different plaintext")
        elif pick < 0.85:
            _call(
                ledger, clients, turn, "generate_data_key", KeyId=rng.choice(mine), NumberOfBytes=32
            )
        elif pick < 0.93:
            key, alias = rng.choice(mine), f"alias/rr-{rng.getrandbits(48):012x}"
            if _call(ledger, clients, turn, "create_alias", AliasName=alias, TargetKeyId=key):
                with ledger.lock:
                    ledger.keys[key]["aliases"].append(alias)
        else:
            key, value = rng.choice(mine), f"v{rng.getrandbits(32)}"
            tag = [{"TagKey": "rr", "TagValue": value}]
            if _call(ledger, clients, turn, "tag_resource", KeyId=key, Tags=tag):
                with ledger.lock:
                    ledger.keys[key]["tags"]["rr"] = value


def _check(ledger: Ledger, clients: list[Any], nodes: list[Node], since: float) -> list[str]:
    failures = [f"refused: {r}" for r in ledger.refused[:20]]
    if ledger.unanswered:
        count = len(ledger.unanswered)
        failures.append(f"no node answered {count} call(s), e.g. {ledger.unanswered[:3]}")
    for i, (key, want) in enumerate(sorted(ledger.keys.items())):
        kms = clients[i % len(clients)]
        if kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] != "Enabled":
            failures.append(f"key {key} is not Enabled")
        aliases = {a["AliasName"] for a in kms.list_aliases(KeyId=key)["Aliases"]}
        if not set(want["aliases"]) <= aliases:
            failures.append(f"key {key} lost aliases {set(want['aliases']) - aliases}")
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key)["Tags"]}
        if want["tags"] and tags.get("rr") is None:
            failures.append(f"key {key} lost its tag")
    for i, (blob, plain) in enumerate(ledger.blobs):
        if clients[i % len(clients)].decrypt(CiphertextBlob=blob)["Plaintext"] != plain:
            failures.append("an acknowledged ciphertext decrypts to something else")
    where = ["--data-dir", str(nodes[0].data), "--database-url", nodes[0].url]
    done = subprocess.run(
        [str(BIN), "audit", "export", *where, "--since", f"{since:.0f}"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    recorded = {json.loads(line).get("requestID") for line in done.stdout.splitlines() if line}
    missing = [(rid, op) for rid, op in ledger.acked if rid not in recorded]
    if done.returncode != 0 or missing:
        failures.append(f"{len(missing)} acknowledged calls have no record {missing[:3]}")
    for node in nodes:
        verify = subprocess.run(
            [str(BIN), "audit", "verify", "--data-dir", str(node.data), "--database-url",
             node.url], capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if verify.returncode != 0:
            failures.append(f"audit verify from {node.name}: {verify.stderr[-300:]}")
    return failures


def _fault(args: argparse.Namespace, node: Node, kind: str) -> dict[str, Any]:
    """One fault on ``node``: a clean restart, a SIGKILL and a start, or a SIGSTOP."""
    if kind == "STOP":
        node.pause(args.stop_seconds)
        return {"node": node.name, "fault": kind, "stopped_s": args.stop_seconds}
    down = node.stop(kind)
    up = node.start()
    return {"node": node.name, "fault": kind, "stop_s": round(down, 2), "start_s": round(up, 2)}


def _propagation(clients: list[Any], rng: random.Random) -> float:
    """Seconds from a DisableKey answered by one node until every other node refuses the
    key (their caches live up to a second on PostgreSQL)."""
    key = clients[0].create_key()["KeyMetadata"]["KeyId"]
    for kms in clients:
        kms.encrypt(KeyId=key, Plaintext=b"p")  # every node has it cached
    chosen = rng.randrange(len(clients))
    clients[chosen].disable_key(KeyId=key)
    began, waiting = time.monotonic(), [c for i, c in enumerate(clients) if i != chosen]
    while waiting and time.monotonic() - began < 10:
        still = []
        for kms in waiting:
            try:
                kms.encrypt(KeyId=key, Plaintext=b"p")
                still.append(kms)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "DisabledException":
                    raise
        waiting = still
        time.sleep(0.02 if waiting else 0)
    return round(time.monotonic() - began, 3) if not waiting else float("inf")


def _rounds(
    args: argparse.Namespace, nodes: list[Node], ledger: Ledger, clients: list[Any]
) -> tuple[list[dict[str, Any]], list[float]]:
    """Each round makes one fault on every node in turn (``mix``: a random fault on a random
    node), under the clients' load; after each, how long a DisableKey takes to reach every
    node."""
    faults: list[dict[str, Any]] = []
    spreads: list[float] = []
    rng = random.Random(args.seed)
    stop = time.monotonic() + args.seconds
    time.sleep(args.pause)
    for round_ in range(args.rounds):
        for index in range(len(nodes)):
            if time.monotonic() + 30 > stop:
                return faults, spreads
            node = rng.choice(nodes) if args.fault == "mix" else nodes[index]
            kind = rng.choice(("TERM", "KILL", "STOP")) if args.fault == "mix" else args.fault
            faults.append({"round": round_, **_fault(args, node, kind)})
            spreads.append(_propagation(clients, rng))
            print(f"fault {len(faults)}: {faults[-1]}; DisableKey everywhere after "
                  f"{spreads[-1]} s; {ledger.failovers} failovers, {len(ledger.unanswered)} "
                  "unanswered", flush=True)  # fmt: skip
            time.sleep(args.pause)
    return faults, spreads


@contextlib.contextmanager
def _database(root: Path, url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with own_cluster(root / "pg", []) as cluster:
        yield cluster.url


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    with _database(root, args.database_url) as url:
        nodes = [Node(f"node{i}", root / f"node{i}", url, root / f"node{i}.log")
                 for i in range(args.nodes)]  # fmt: skip
        try:
            nodes[0].start()
            for node in nodes[1:]:
                node.data.mkdir(mode=0o700)
                for name in SHARED:
                    shutil.copy2(nodes[0].data / name, node.data / name)
                node.start()
            clients = [aws_client("kms", nodes[0].data, n.port) for n in nodes]
            ledger, since, done = Ledger(), time.time() - 5, threading.Event()
            threads = []
            for _ in range(args.clients):
                mine = [aws_client("kms", nodes[0].data, n.port) for n in nodes]
                seed = random.Random(rng.getrandbits(64))
                threads.append(
                    threading.Thread(target=_client_loop, args=(ledger, mine, seed, done))
                )
                threads[-1].start()
            try:
                restarts, spreads = _rounds(args, nodes, ledger, clients)
            finally:
                done.set()  # the clients finish their calls
                for thread in threads:
                    thread.join(timeout=120)
            failures = _check(ledger, clients, nodes, since)
        finally:
            for node in nodes:
                node.close()
    return {
        "nodes": args.nodes, "fault": args.fault, "faults": len(restarts),
        "kinds": {k: sum(r["fault"] == k for r in restarts) for k in ("TERM", "KILL", "STOP")},
        "acked": len(ledger.acked), "keys": len(ledger.keys), "ciphertexts": len(ledger.blobs),
        "failovers": ledger.failovers, "unanswered": len(ledger.unanswered),
        "replayed": ledger.replayed,
        "max_start_s": max((r.get("start_s", 0) for r in restarts), default=0),
        "max_stop_s": max((r.get("stop_s", 0) for r in restarts), default=0),
        "max_disable_spread_s": max(spreads, default=0),
        "failures": failures + [f"a DisableKey reached every node only after {x} s"
                                for x in spreads if x > 1.0],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3, choices=range(2, 6))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--fault", choices=("TERM", "KILL", "STOP", "mix"), default="TERM")
    parser.add_argument("--stop-seconds", type=float, default=3.0, help="how long a SIGSTOP")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between restarts")
    parser.add_argument("--seconds", type=float, default=1800.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--database-url", default=None, help="an empty database; default: own")
    args = parser.parse_args(argv)
    args.seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rolling-") as tmp:
        os.chmod(tmp, 0o711)  # noqa: S103  (the postgres user of an own cluster traverses it)
        result = run(args, Path(tmp))
    result.update(seed=args.seed, seconds=round(time.monotonic() - began, 1))
    print("ROLLING_JSON " + json.dumps(result), flush=True)
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
