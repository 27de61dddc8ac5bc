"""What one durable write costs on the file system of a data directory: wall time and CPU.

Every answered call waits for its trail record's synchronous write (the writer's journal,
``O_DSYNC``, :mod:`strongroom.audit.journal`), shared by the calls of one batch. What that
write costs is the disk's and the kernel's, not Strongroom's, and it bounds what the trail can
cost per call: a batch of ``n`` calls pays one write. This measures it in a scratch file
inside ``--dir`` (preallocated and synced first, so the writes overwrite blocks in place as the
journal's recycled segments do), for each way of making a write durable:

* ``O_DSYNC`` pwrite (what the journal does), ``pwrite`` + ``fdatasync``, ``O_DIRECT|O_DSYNC``
  (page-aligned buffers), and a plain ``pwrite`` (not durable: the baseline).

    .venv/bin/python bench/sync_cost.py [--dir .strongroom] [--writes 2000]

Prints, per method and write size, the mean wall time and the mean CPU time of this process
(user + system) per write. Bounded by ``--writes`` per cell and 20 s per cell.
"""

from __future__ import annotations

import argparse
import mmap
import os
import tempfile
import time
from pathlib import Path

SIZES = (1024, 16 * 1024, 64 * 1024)
FILE_BYTES = 64 << 20
CELL_SECONDS = 20.0
METHODS = ("O_DSYNC", "fdatasync", "O_DIRECT|O_DSYNC", "none (not durable)")


def _prepare(path: Path) -> None:
    """A file of FILE_BYTES written and synced, so that later writes allocate nothing."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        block = bytes(1 << 20)
        for at in range(0, FILE_BYTES, len(block)):
            os.pwrite(fd, block, at)
        os.fsync(fd)
    finally:
        os.close(fd)


def _flags(method: str) -> int:
    flags = os.O_RDWR | os.O_CLOEXEC
    if method in ("O_DSYNC", "O_DIRECT|O_DSYNC"):
        flags |= os.O_DSYNC
    if method == "O_DIRECT|O_DSYNC":
        flags |= os.O_DIRECT
    return flags


def measure(path: Path, method: str, size: int, writes: int) -> tuple[float, float, int]:
    """Mean wall and CPU microseconds per durable write of ``size`` bytes; the writes done."""
    buffer = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT needs
    buffer.write(b"x" * size)
    fd = os.open(path, _flags(method))
    try:
        at, done = 0, 0
        wall0, cpu0 = time.perf_counter(), time.process_time()
        deadline = wall0 + CELL_SECONDS
        while done < writes and time.perf_counter() < deadline:
            os.pwritev(fd, [buffer], at)
            if method == "fdatasync":
                os.fdatasync(fd)
            at = (at + size) % (FILE_BYTES - size)
            done += 1
        wall = (time.perf_counter() - wall0) / done * 1e6
        cpu = (time.process_time() - cpu0) / done * 1e6
    finally:
        os.close(fd)
        buffer.close()
    return wall, cpu, done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("."), help="a directory on the disk")
    parser.add_argument("--writes", type=int, default=2000, help="writes per method and size")
    args = parser.parse_args(argv)
    if args.writes < 1:
        parser.error("--writes must be at least 1")
    with tempfile.TemporaryDirectory(prefix="sync-cost-", dir=args.dir) as tmp:
        path = Path(tmp) / "scratch"
        _prepare(path)
        print(f"{'method':20} {'bytes':>7} {'wall µs':>9} {'CPU µs':>8} {'writes':>7}")
        for method in METHODS:
            for size in SIZES:
                try:
                    wall, cpu, done = measure(path, method, size, args.writes)
                except OSError as exc:  # O_DIRECT is refused by some file systems (tmpfs)
                    print(f"{method:20} {size:7} not available here ({exc.strerror})")
                    continue
                print(f"{method:20} {size:7} {wall:9.1f} {cpu:8.1f} {done:7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
