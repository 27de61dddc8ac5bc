#!/usr/bin/env python3
"""Tamper evidence of the audit trail, exhaustively (reliability figure A2).

    .venv/bin/python scripts/tamper_trail.py [--calls 300] [--random 10000] [--segment N]
        [--wrong-keys 20] [--cli 24] [--seconds 1800] [--seed S]

Starts its own ``strongroom serve`` (free 127.0.0.1 port, temporary data dir, stopped by its
PID), makes ``--calls`` mixed KMS calls with boto3, errors included, pausing so that the writer
ingests its journal in several batches, and stops it; its writer ingests the rest, so the whole
trail is in ``audit.db``: ``audit_events`` (per record ``seq``, ``kind``, ``body``, ``hash``,
which the hash chain covers, and nine indexed copies of body fields for LookupEvents) and
``audit_digests`` (one signed digest per batch).

"One segment" is one ingested batch, the trail's signed unit: one digest row and every record
row it covers (by default the largest batch). Each byte of each of their stored values (text as
UTF-8, integers and reals as 8 big-endian bytes) is XORed with a random nonzero value, one at a
time; then ``--random`` positions drawn over every stored value of both tables. Then every
record deleted, every adjacent pair swapped, a copied record inserted at every position (as
stored, and renumbered and re-chained as a forger without the signing key would), one appended
with a valid chain hash, the tail cut after every record, every digest removed (and the later
ones renumbered), every digest replaced by a twin signed with the trail key (1 s later, as in a
forked history; the last one a record longer, a writer's error), and wrong public keys. Each
mutation starts from a pristine in-memory copy and ``verify_trail`` (what ``strongroom audit
verify`` runs) checks it; the real CLI checks a sample and must agree. Outcomes: *named* (verify
fails, naming the altered record; *elsewhere*: another), *raised* (verify stops with an error),
*refused* (SQLite will not store it: a taken key, NaN for NOT NULL), *same meaning* (the value
verify decodes is unchanged: a hex digit of a signature in the other case) and ACCEPTED, a
detection failure: exit status 1.

The tail is also cut with its digests at every batch boundary (verify finds the head row
naming the old end). Reported apart: the same cut with the head row rewritten to match, a
shorter consistent signed trail that only a digest kept elsewhere can catch (``audit verify
--expect-digest``; the run fails if that anchor misses one), and ``audit_head``, each byte
altered, verified (must fail), one batch appended, verified again. An indexed ``event_time``
altered within its second counts as *same meaning* (the body's ``eventTime`` has whole
seconds). Out of scope: ``audit_key_usage`` (a cache derived from the trail) and the
journal (empty once serve stops). Bounded by the counts and ``--seconds``; no plaintext or
secret is printed.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import itertools
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import msgspec
from botocore.config import Config
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from strongroom.audit.chain import digest_body, digest_hash
from strongroom.audit.events import Columns
from strongroom.audit.store import NewEntry, TrailStore
from strongroom.audit.verify import Report, verify_trail
from strongroom.crypto.audit_sign import TrailSigner, TrailVerifier, load_or_create_signer
from strongroom.storage.engine import open_engine, sqlite_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_serve import HOST, Endpoint, serve
from tamper_trail_mutations import DECODED, Mutation, apply, same_hex, same_second, to_bytes

STRONGROOM = str(Path(sys.executable).parent / "strongroom")
TABLES = ("audit_events", "audit_digests")


def build_trail(data: Path, calls: int, log: Path) -> float:
    """Start serve in ``data``, make ``calls`` mixed KMS calls, stop it by its PID."""
    start = time.monotonic()
    with serve(log, data_dir=data) as endpoint:
        _calls(endpoint, calls)
    return time.monotonic() - start


def _calls(endpoint: Endpoint, count: int) -> None:
    kms, wrong = (
        boto3.client("kms", endpoint_url=f"http://{HOST}:{endpoint.port}", region_name="us-east-1",
                     aws_access_key_id=endpoint.akid, aws_secret_access_key=key,
                     config=Config(retries={"max_attempts": 1}))
        for key in (endpoint.secret, "wrong" + endpoint.secret)
    )  # fmt: skip
    keys = [kms.create_key(Description=f"tamper {n}")["KeyMetadata"]["KeyId"] for n in range(3)]
    kms.create_alias(AliasName="alias/tamper-trail", TargetKeyId=keys[0])
    blob = kms.encrypt(KeyId=keys[0], Plaintext=b"tamper-trail")["CiphertextBlob"]
    for n in range(count):
        with contextlib.suppress(kms.exceptions.ClientError):  # errors are part of the mix
            _one_call(kms, wrong, keys[n % 3], keys[2], blob, n)
        if n % 40 == 39:
            time.sleep(0.35)  # the writer ingests: one more signed batch


def _one_call(kms: Any, wrong: Any, key: str, other: str, blob: bytes, n: int) -> None:
    """The n-th call of the mix: six of ten succeed, four fail."""
    calls: list[tuple[Any, dict[str, Any]]] = [
        (kms.encrypt, {"KeyId": key, "Plaintext": b"x" * (1 + n % 200)}),
        (kms.decrypt, {"CiphertextBlob": blob}),
        (kms.generate_data_key, {"KeyId": key, "KeySpec": "AES_256"}),
        (kms.describe_key, {"KeyId": "alias/tamper-trail"}),
        (kms.list_keys, {"Limit": 10}),
        (kms.encrypt, {"KeyId": "alias/does-not-exist", "Plaintext": b"x"}),
        (kms.decrypt, {"CiphertextBlob": b"not a ciphertext blob at all"}),
        (wrong.list_keys, {}),
        (kms.disable_key if n % 20 == 8 else kms.enable_key, {"KeyId": other}),
        (kms.encrypt, {"KeyId": key, "Plaintext": b"x", "EncryptionContext": {"n": str(n)}}),
    ]
    method, kwargs = calls[n % 10]
    method(**kwargs)


class Bench:
    """A pristine in-memory copy of the trail and a working copy verify reads."""

    def __init__(self, db: Path, key: TrailVerifier, signer: TrailSigner | None = None) -> None:
        self.key = key
        self.pristine = sqlite3.connect(":memory:")
        with contextlib.closing(sqlite3.connect(db)) as source:
            source.backup(self.pristine)
        self.work = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        engine = create_engine("sqlite://", poolclass=StaticPool, creator=lambda: self.work)
        self.store = TrailStore(engine)
        self.fields: list[tuple[str, int, str, int]] = []  # (table, seq, column, size)
        self.digests: list[tuple[int, int, int]] = self.rows("seq, first_seq, last_seq", 1)
        for table in TABLES:
            cursor = self.pristine.execute(f"SELECT * FROM {table} ORDER BY seq")
            names = [d[0] for d in cursor.description]
            for row in cursor:
                sizes = [len(to_bytes(value)) for value in row]
                self.fields += [(table, row[0], *f) for f in zip(names, sizes, strict=True)]
        self.ends = list(itertools.accumulate(f[3] for f in self.fields))
        self.last = int(self.rows("MAX(seq)")[0][0])
        #: digests signed again: 1 s later (a forked history's), the last one a record longer
        self.twins: dict[int, tuple[str, str, str, int]] = {}
        for seq, body in self.rows("seq, body", 1) if signer is not None else ():
            assert signer is not None
            fields = msgspec.json.decode(body)
            last = seq == len(self.digests)
            fields |= {"firstSeq": fields["firstSeq"] - 1} if last else {"time": fields["time"] + 1}
            twin = digest_body(fields)
            sig = signer.sign(twin).hex()
            self.twins[seq] = (twin.decode(), sig, digest_hash(twin, sig), fields["firstSeq"])

    def rows(self, what: str, table: int = 0) -> list[Any]:
        return self.pristine.execute(f"SELECT {what} FROM {TABLES[table]} ORDER BY 1").fetchall()

    def covering(self, seq: int, shorter: bool = False) -> int:
        """The first seq of the digest that covers record ``seq``: where verify finds the
        re-chained records stop matching a signed hash (but for a ``shorter`` trail the last
        digest's hash is never reached: the tail looks cut after the last record)."""
        if shorter and seq >= self.digests[-1][1]:
            return self.last
        return next((first for _, first, last in self.digests if first <= seq <= last), seq)

    def run(self, m: Mutation) -> tuple[str, Report | None]:
        """Apply ``m`` to a fresh copy and verify: (outcome, report)."""
        self.pristine.backup(self.work)
        key = self.key
        try:
            change = apply(self.work, m, self.twins)
        except sqlite3.IntegrityError:
            return "refused", None
        if m.op == "wrong-key":
            key = TrailSigner(random.Random(m.xor).randbytes(32)).verifier()
        try:
            report = verify_trail(self.store, key)
        except Exception as exc:  # verify stopped; the type name only (messages quote values)
            return f"raised {type(exc).__name__}", None
        if not report.ok:
            return ("named" if report.first_bad_seq == m.expect else "elsewhere"), report
        if change is not None and (m.table, m.column) in DECODED and same_hex(*change):
            return "same meaning", report
        if change is not None and m.column == "event_time" and same_second(*change):
            return "same meaning", report
        return "ACCEPTED", report


def segment_mutations(bench: Bench, digest: int, rng: random.Random) -> list[Mutation]:
    """Every byte of digest ``digest`` and of every record it covers."""
    _, first, last = bench.digests[digest - 1]
    return [
        _byte("segment-byte", bench, f, pos, rng)
        for f in bench.fields
        if (f[0] == "audit_digests" and f[1] == digest)
        or (f[0] == "audit_events" and first <= f[1] <= last)
        for pos in range(f[3])
    ]


def random_mutations(bench: Bench, count: int, rng: random.Random) -> list[Mutation]:
    """``count`` byte positions drawn uniformly over every stored value of both tables."""
    out = []
    for at in (rng.randrange(bench.ends[-1]) for _ in range(count)):
        index = bisect.bisect_right(bench.ends, at)
        pos = at - bench.ends[index] + bench.fields[index][3]
        out.append(_byte("random-byte", bench, bench.fields[index], pos, rng))
    return out


def _byte(kind: str, bench: Bench, f: tuple[str, int, str, int], pos: int, rng: Any) -> Mutation:
    table, seq, column, _ = f
    expect = seq if table == "audit_events" else bench.digests[seq - 1][1]
    return Mutation(kind, "byte", table, seq, column, pos, rng.randrange(1, 256), expect)


def structural_mutations(bench: Bench, keys: int) -> list[Mutation]:
    """Deletions, swaps, insertions, truncations, removed digests and wrong keys."""
    last, out = bench.last, []
    for k in range(1, last + 1):
        copied = (k * 7) % last + 1 if (k * 7) % last + 1 != k else k % last + 1  # not k: a
        # copy of k put before k would be the same as one put after it (at k + 1)
        out += [Mutation("delete", "delete", seq=k, expect=k),
                Mutation("delete", "delete-rechain", seq=k, expect=bench.covering(k, True)),
                Mutation("insert", "insert", seq=k, pos=copied, expect=k),
                Mutation("insert", "insert-rechain", seq=k, pos=copied, expect=bench.covering(k)),
                Mutation("truncate", "truncate", seq=k - 1, expect=k)]  # fmt: skip
        if k < last:
            out += [Mutation("swap", "swap", seq=k, expect=k),
                    Mutation("swap", "swap-rechain", seq=k, expect=bench.covering(k))]  # fmt: skip
    out.append(Mutation("insert", "append", seq=last + 1, pos=last, expect=last + 1))
    for d, first, _ in bench.digests:
        out += [Mutation("drop-digest", op, seq=d, expect=first)
                for op in ("drop-digest", "drop-renumber")]  # fmt: skip
    firsts = {d: first for d, first, _ in bench.digests}  # the last twin: named at its start
    out += [Mutation("signed-twin", "twin", seq=d, expect=firsts.get(d + 1, firsts[d]))
            for d in bench.twins]  # fmt: skip
    out += [Mutation("wrong-key", "wrong-key", xor=n, expect=1) for n in range(keys)]
    # the tail cut with its digests at each batch boundary: the head row names the old end
    out += [Mutation("cut", "cut", seq=d, pos=end, expect=end + 1) for d, _, end in
            bench.digests[:-1]]  # fmt: skip
    return out


def head_sweep(bench: Bench, signer: TrailSigner, tmp: Path, rng: random.Random) -> Any:
    """Every byte of ``audit_head``: verify now, then after one more batch is appended."""
    tally: collections.Counter[tuple[str, str, str]] = collections.Counter()
    path = tmp / "head" / "audit.db"
    path.parent.mkdir()
    probe = NewEntry("event", b'{"eventName":"TamperProbe"}', Columns("p", 0.0, "", "", True,
                     "", "", "", ""))  # fmt: skip
    row = bench.pristine.execute("SELECT * FROM audit_head").fetchone()
    names = ["id", "seq", "hash", "digest_seq", "digest_hash"]
    for name, value in zip(names, row, strict=True):
        for pos in range(len(to_bytes(value))):
            m = Mutation("head", "byte", "audit_head", 1, name, pos, rng.randrange(1, 256))
            for leftover in path.parent.iterdir():
                leftover.unlink()
            with contextlib.closing(sqlite3.connect(path)) as dst:
                bench.pristine.backup(dst)
                change = apply(dst, m)
                dst.commit()
            engine = open_engine(sqlite_url(str(path)))
            store = TrailStore(engine, signer)
            try:
                now = verify_trail(store, bench.key).ok
                store.append([probe])
                after = verify_trail(store, bench.key)
                same = change is not None and name == "hash" and same_hex(*change)
                outcome = "detected" if not after.ok else "same meaning" if same else "ACCEPTED"
            except Exception:
                outcome = "append refused"
            finally:
                store.close()
                engine.dispose()
            tally[(name, "accepted now" if now else "detected now", outcome)] += 1
    return tally


def cli_agrees(bench: Bench, m: Mutation, outcome: str, report: Report | None, tmp: Path) -> bool:
    """The same mutation checked by ``strongroom audit verify`` on a data dir of its own."""
    bench.pristine.backup(bench.work)
    apply(bench.work, m, bench.twins)
    for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
        (tmp / "cli" / name).unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(tmp / "cli" / "audit.db")) as dst:
        bench.work.backup(dst)
    argv = [STRONGROOM, "audit", "verify", "--data-dir", str(tmp / "cli")]
    if m.op == "wrong-key":
        pem = TrailSigner(random.Random(m.xor).randbytes(32)).public_pem()
        (tmp / "wrong.pem").write_bytes(pem)
        argv += ["--public-key", str(tmp / "wrong.pem")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if outcome in ("ACCEPTED", "same meaning"):
        return proc.returncode == 0
    if report is not None:
        return proc.returncode == 1 and f"first bad record {report.first_bad_seq}:" in proc.stderr
    return proc.returncode != 0


def main() -> int:  # noqa: PLR0915 (one linear run)
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="KMS calls, 50..3000")
    parser.add_argument("--random", type=int, default=10_000, help="random bytes, 1..200000")
    parser.add_argument("--segment", type=int, default=0, help="the digest swept (0: largest)")
    parser.add_argument("--wrong-keys", type=int, default=20, help="wrong public keys, 1..1000")
    parser.add_argument("--cli", type=int, default=24, help="mutations also run by the CLI")
    parser.add_argument("--seconds", type=float, default=1800.0)
    parser.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "big"))
    args = parser.parse_args()
    for name, low, high in (("calls", 50, 3000), ("random", 1, 200_000), ("wrong_keys", 1, 1000),
                            ("cli", 0, 200)):  # fmt: skip
        if not low <= getattr(args, name) <= high:
            parser.error(f"--{name.replace('_', '-')} must be within {low}..{high}")
    rng, start = random.Random(args.seed), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="strongroom-tamper-trail-") as name:
        tmp = Path(name)
        took = build_trail(tmp / "data", args.calls, tmp / "serve.log")
        signer = load_or_create_signer(tmp / "data")
        bench = Bench(tmp / "data" / "audit.db", signer.verifier(), signer)
        digests = len(bench.digests)
        segment = args.segment or max(bench.digests, key=lambda d: d[2] - d[1])[0]
        if not 1 <= segment <= digests:
            parser.error(f"--segment must be within 1..{digests}")
        _, first, last = bench.digests[segment - 1]
        plan = segment_mutations(bench, segment, rng)
        print(f"seed {args.seed}; {args.calls} calls made in {took:.1f} s; trail: {bench.last} "
              f"records, {digests} digests, {bench.ends[-1]:,} stored bytes; segment: digest "
              f"{segment} and records {first}..{last}, {len(plan):,} bytes")  # fmt: skip
        plan += random_mutations(bench, args.random, rng)
        plan += structural_mutations(bench, args.wrong_keys)
        tally: collections.Counter[tuple[str, str]] = collections.Counter()
        by_field: collections.Counter[str] = collections.Counter()
        samples: dict[tuple[str, str], tuple[Mutation, Report | None]] = {}
        cut: collections.Counter[str] = collections.Counter()
        deadline, done = start + args.seconds, 0
        for m in plan:
            if time.monotonic() > deadline:
                break
            outcome, report = bench.run(m)
            done += 1
            tally[(m.kind, outcome)] += 1
            if outcome != "named":
                by_field[f"{outcome}: " + (f"{m.table}.{m.column}" if m.column else m.op)] += 1
            if outcome != "refused":
                samples.setdefault((m.kind, outcome), (m, report))
        limits = [Mutation("cut", "cut-head", seq=d, pos=end) for d, _, end in bench.digests[:-1]]
        anchor = bench.digests[-1][0], bench.rows("hash", 1)[-1][0]
        for m in limits:
            outcome, report = bench.run(m)
            kept = {seq: hashed for seq, hashed in bench.work.execute(
                "SELECT seq, hash FROM audit_digests")}  # fmt: skip
            cut[outcome if kept.get(anchor[0]) != anchor[1] else "anchor ACCEPTED"] += 1
        head = head_sweep(bench, signer, tmp, rng)
        (tmp / "cli").mkdir()
        for keep in ("strongroom.db", "audit-signing.key"):
            shutil.copy(tmp / "data" / keep, tmp / "cli" / keep)
        chosen = list(samples.items())[: args.cli]
        agreed = sum(cli_agrees(bench, m, out, rep, tmp) for (_, out), (m, rep) in chosen)
    outcomes = ["named", "elsewhere", "raised", "refused", "same meaning", "ACCEPTED"]
    print(f"{'kind':13}{'tried':>8}" + "".join(f"{o:>13}" for o in outcomes))
    for kind in [*dict.fromkeys(m.kind for m in plan), "total"]:
        row = {o: sum(c for (k, out), c in tally.items() if kind in (k, "total")
                      and out.startswith(o)) for o in outcomes}  # fmt: skip
        print(f"{kind:13}{sum(row.values()):>8}" + "".join(f"{row[o]:>13}" for o in outcomes))
    for what, count in sorted(by_field.items()):
        print(f"  {count:>7}  {what}")
    print("(elsewhere: verify failed, naming another record than the one altered)")
    print(f"LIMIT, not counted: the tail cut with its digests and the head row rewritten, at "
          f"{len(limits)} batch boundaries: verify alone {dict(cut)}; every one is caught by "
          f"the last digest kept elsewhere (verify --expect-digest) unless 'anchor ACCEPTED' "
          f"is counted")  # fmt: skip
    for (column, now, after), count in sorted(head.items()):
        print(f"audit_head.{column} byte, not counted: {now}; one batch later: {after}: {count}")
    accepted = sum(c for (_, out), c in tally.items() if out == "ACCEPTED")
    raised = sum(c for (_, out), c in tally.items() if out.startswith("raised"))
    accepted += sum(c for (_, now, _after), c in head.items() if now == "accepted now")
    accepted += cut["anchor ACCEPTED"]
    print(f"CLI: agreed on {agreed} of {len(chosen)} sampled mutations")
    print(f"{done:,} of {len(plan):,} mutations in {time.monotonic() - start:.0f} s")
    bad = [f"{accepted} accepted"] if accepted else []
    bad += [f"verify raised on {raised}"] if raised else []
    bad += [f"{len(plan) - done} not run in time"] if done < len(plan) else []
    bad += [f"the CLI disagreed on {len(chosen) - agreed}"] if agreed < len(chosen) else []
    print("FAILED: " + ", ".join(bad) if bad else "OK: every mutation detected")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
