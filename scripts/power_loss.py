#!/usr/bin/env python3
"""Cut the power under ``strongroom serve`` at random points of a concurrent workload: every
write not yet synced is lost; after each restart, nothing it acknowledged may be missing
(reliability figure D2). A control run with ``--synchronous NORMAL`` must detect lost commits.

    .venv/bin/python scripts/power_loss.py [--cuts 20] [--clients 8] [--seed N]
        [--seconds 900] [--workers 1] [--synchronous FULL|NORMAL] [--metadata dirsync|fsync]

Needs FUSE (/dev/fuse, libfuse3, fusermount3, permission to mount) and mfusepy (the
``faults`` extra). The data directory lives on ``scripts/lazyfs.py``, a FUSE file system over
a backing directory that keeps unsynced writes in memory, as a page cache does (see its
docstring for what counts as synced, data and metadata). Each cycle mounts lazyfs, starts
``serve`` on a free 127.0.0.1 port with its ``--data-dir`` on the mount, runs crash_kill.py's
clients and, after a random 0.3-2.5 s, cuts the power in lazyfs and then SIGKILLs serve's
process group. Cut first: from the cut on every file-system call fails, so nothing the dying
processes do, nor the kernel's write-back of their mmap pages, reaches the disk after the
moment of the cut; and any answer a client gets after it was for work synced before it (a
call that still needs a write fails). Killing first would leave a window in which the last
requests of the dying group are still served by the file system. Then lazyfs is unmounted
(the backing directory is now exactly what was synced), the SQLite files are copied and pass
``PRAGMA integrity_check``, lazyfs is mounted again and serve restarted, and crash_kill.py's
checks run: every acknowledged key, state, policy, alias and ciphertext, every acknowledged
call's trail record, ``strongroom audit verify``; and, read from the store's file without
serve, every acknowledged key. After a failed check the run goes on with a new data
directory and ledger (a new machine), so that each cut is judged on its own.

``--metadata`` is lazyfs's: ``dirsync`` (default) makes a new name durable only with an fsync
of its directory, as POSIX promises; ``fsync`` lets any fsync commit the names made before it,
as ext4's and XFS's journals do. ``STRONGROOM_TESTING_SQLITE_SYNCHRONOUS`` carries
``--synchronous`` to serve (testing only).
The workload uses the software key store (keys under the root key in the data directory):
serve starts no HSM nodes unless a CloudHSM cluster is made, so the HSMs' sealed stores are
not covered. Exit status 1 on any failure, each printed. Bounded by ``--cuts`` and
``--seconds``; servers and lazyfs are stopped by PID, and the mount is unmounted, on error too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import crash_kill as ck
from lazyfs_state import send

from strongroom.storage.schema import keys as KEYS

LAZYFS = Path(__file__).resolve().with_name("lazyfs.py")
SYNCHRONOUS_ENV = "STRONGROOM_TESTING_SQLITE_SYNCHRONOUS"
#: the SQLite files checked after each cut (on copies: the backing directory stays untouched)
SQLITE_FILES = ("strongroom.db", "strongroom.db-wal", "audit.db", "audit.db-wal")


def fuse_problem() -> str | None:
    """Why FUSE cannot be used here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "no fusermount3 (Debian's fuse3 package)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError, AttributeError) as exc:  # mfusepy loads libfuse on import
        return f"mfusepy unusable (pip install -e '.[faults]', libfuse3): {exc}"
    return None


def mounted_at(mountpoint: Path) -> bool:
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        return any(line.split()[1] == str(mountpoint) for line in mounts if line.strip())


def unmount(mountpoint: Path) -> None:
    """``fusermount3 -u``, retried while dying processes still hold files there (10 s), then
    lazily (``-z``)."""
    for _ in range(100):
        if not mounted_at(mountpoint):
            return
        done = subprocess.run(
            ["fusermount3", "-u", str(mountpoint)], capture_output=True, timeout=30, check=False
        )
        if done.returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], timeout=30, check=False)


@contextlib.contextmanager
def mounted(
    backing: Path, mountpoint: Path, log: Path, metadata: str = "dirsync"
) -> Iterator[Path]:
    """lazyfs over ``backing`` at ``mountpoint`` in a process of its own; yields its control
    socket. Unmounted, and the process ended (by its PID), at the end."""
    mountpoint.mkdir(exist_ok=True)
    control = mountpoint.with_name(mountpoint.name + ".ctl")
    argv = [sys.executable, str(LAZYFS), str(backing), str(mountpoint), "--control", str(control)]
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [*argv, "--metadata", metadata],
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else b""
        if b"lazyfs: ready" not in line:
            raise RuntimeError(f"lazyfs did not get ready (exit {proc.poll()}); see {log}")
        yield control
    finally:
        unmount(mountpoint)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
            unmount(mountpoint)
        if proc.stdout is not None:
            proc.stdout.close()


def stored(data: Path, scratch: Path, failures: list[str]) -> tuple[int, set[str] | None]:
    """crash_kill's ``integrity_check`` of the SQLite files, on copies (opening the originals
    would recover and checkpoint them before serve does): how many files it checked, and the
    key ids in the store's copy (None when there is no store yet)."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    for name in SQLITE_FILES:
        if (data / name).exists():
            shutil.copyfile(data / name, scratch / name)
    checked = ck.integrity(scratch, failures)
    if not (scratch / SQLITE_FILES[0]).exists():
        return checked, None
    with contextlib.closing(sqlite3.connect(scratch / SQLITE_FILES[0])) as db:
        try:
            return checked, {row[0] for row in db.execute(f"SELECT key_id FROM {KEYS.name}")}
        except sqlite3.DatabaseError as exc:  # e.g. the schema itself was never synced
            failures.append(f"the store's file after a cut has no keys: {exc}")
            return checked, set()


def failure_count(run: ck.Run) -> int:
    return len(run.failures) + sum(len(c.failures) for c in run.clients)


def forget(run: ck.Run) -> None:
    """A new ledger, for a new data directory."""
    for client in run.clients:
        client.keys.clear()
        client.acked.clear()
        client.cut_off = None


def check_store(run: ck.Run, present: set[str] | None, cycle: int) -> bool:
    """Every acknowledged key is in the store's file after the cut (read without serve)."""
    known = {k for c in run.clients for k in c.keys}
    lost = sorted(known - (present or set()))
    if lost:
        run.failures.append(f"cut {cycle}: {len(lost)} of {len(known)} acknowledged keys are "
                            f"not in the store's file, e.g. {lost[:3]}")  # fmt: skip
    return not lost


def check(run: ck.Run, kms: Any, cycle: int, since: float) -> None:
    """crash_kill's checks of the cut of ``cycle`` through the API."""
    known = {k for c in run.clients for k in c.keys}
    pages = kms.get_paginator("list_keys").paginate()
    lost = sorted(known - {k["KeyId"] for page in pages for k in page["Keys"]})
    if lost:
        run.failures.append(f"cut {cycle}: {len(lost)} acknowledged keys missing, {lost[:3]}")
        return
    before = len(run.failures)
    try:
        ck.verify(run, kms, cycle, since)
    except ClientError as exc:
        run.failures.append(f"a check failed: {exc}")
    run.failures[before:] = [f"cut {cycle}: {f}" for f in run.failures[before:]]


def cut_power(control: Path, totals: dict[str, int]) -> None:
    answer = send(control, "cut")
    if not answer.get("cut"):
        raise RuntimeError(f"lazyfs refused the cut: {answer}")
    totals["dropped_bytes"] += answer["dropped_bytes"]
    totals["undone"] += len(answer["undone_metadata_ops"])
    print(f"cut {totals['kills']}: dropped {answer['dropped_bytes']} bytes; undid "
          f"{answer['undone_metadata_ops'] or 'no metadata operation'}", flush=True)  # fmt: skip


class Failed(Exception):
    """A check of the last cut failed: no load on this data directory."""


def cycles(run: ck.Run, args: argparse.Namespace, tmp: Path) -> None:
    """Up to ``--cuts`` cycles: mount, serve, check the last cut, load, cut, kill, unmount,
    check the files. After a failed check the machine is replaced (a new data directory and
    ledger), so that every cut is a trial of its own; ``totals["detected"]`` counts the cuts
    after which a check failed."""
    backing, mount, log = tmp / "backing", tmp / "mnt", tmp / "serve.log"
    data, start, since = mount / "data", time.monotonic(), time.time()
    checking, bad = False, set()
    for _ in range(2 * args.cuts + 2):  # a failed check costs a pass, not a cut
        cycle = run.totals["kills"]  # the next cut's number
        before, judged = failure_count(run), cycle - 1  # failures now are the last cut's
        try:
            with (
                mounted(backing, mount, tmp / "lazyfs.log", args.metadata) as control,
                ck.serve(data, args.workers, log, []) as (proc, port),
            ):
                account = ck.aws_client("sts", data, port).get_caller_identity()["Account"]
                if checking:
                    check(run, ck.aws_client("kms", data, port), cycle - 1, since)
                if failure_count(run) > before:
                    raise Failed
                if cycle >= args.cuts or time.monotonic() - start > args.seconds:
                    break
                before, judged = failure_count(run), cycle
                since = time.time()
                ck.load_and_kill(
                    run, proc, port, account, cycle, lambda: cut_power(control, run.totals)
                )
            run.totals["db"], present = stored(backing / "data", tmp / "check", run.failures)
            checking = check_store(run, present, cycle)
        except Failed:
            pass
        except (RuntimeError, ClientError, BotoCoreError) as exc:
            tail = log.read_text(errors="replace").strip()[-300:] if log.exists() else ""
            run.failures.append(f"cut {judged}: serve did not serve: {exc}; its log ends: {tail}")
        if failure_count(run) > before:
            bad.add(judged)
            forget(run)
            checking = False
            shutil.rmtree(backing / "data")
            (backing / "data").mkdir(mode=0o700)
    run.totals["detected"] = len(bad)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cuts", type=int, default=20, help="1..5000")
    parser.add_argument("--clients", type=int, default=8, help="1..32")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=900.0, help="stop starting cycles after")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers N (1..8)")
    parser.add_argument("--sample", type=int, default=40, help="older keys checked a cut")
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--metadata", choices=("dirsync", "fsync"), default="dirsync")
    args = parser.parse_args(argv)
    if not (1 <= args.cuts <= 5000 and 1 <= args.clients <= 32 and 1 <= args.workers <= 8):
        parser.error("--cuts 1..5000, --clients 1..32, --workers 1..8")
    problem = fuse_problem()
    if problem:
        print(f"power_loss: FUSE is not usable here: {problem}")
        return 2
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    os.environ[SYNCHRONOUS_ENV] = args.synchronous
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="power-loss-") as tmp:
        (Path(tmp) / "backing" / "data").mkdir(parents=True, mode=0o700)  # durable, as made
        data = Path(tmp) / "mnt" / "data"
        run = ck.Run(data, ["--data-dir", str(data)], [ck.Client(n) for n in range(args.clients)],
                     random.Random(seed), args.sample)  # fmt: skip
        run.totals.update(dropped_bytes=0, undone=0, detected=0)
        cycles(run, args, Path(tmp))
    return report(run, seed, args, time.monotonic() - start)


def report(run: ck.Run, seed: int, args: argparse.Namespace, seconds: float) -> int:
    failures = run.failures + [f for c in run.clients for f in c.failures]
    totals = run.totals
    totals["cuts"] = totals.pop("kills")
    print(f"power_loss: seed {seed}, {totals['cuts']} power cuts of serve --workers "
          f"{args.workers} under {args.clients} clients in {seconds:.0f} s, synchronous="
          f"{args.synchronous}, metadata {args.metadata}")  # fmt: skip
    print(f"  acknowledged calls checked for their trail record {totals['acked']}; keys "
          f"checked {totals['checked']} times; ciphertexts decrypted {totals['decrypted']}; "
          f"calls cut off {totals['cut']}")  # fmt: skip
    print(f"  unsynced data dropped {totals['dropped_bytes'] / 2**20:.1f} MiB; metadata "
          f"operations undone {totals['undone']}; SQLite files checked after each cut "
          f"{totals['db']}")  # fmt: skip
    if args.synchronous == "NORMAL":
        verdict = "loss detected" if totals["detected"] else "NO LOSS DETECTED (harness broken?)"
        print(f"  control run: {verdict} after {totals['detected']} of {totals['cuts']} cuts")
    for failure in failures:
        print(f"FAIL {failure}")
    print("POWER_LOSS_JSON " + json.dumps({**totals, "failures": len(failures)}))
    print(f"failures: {len(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
