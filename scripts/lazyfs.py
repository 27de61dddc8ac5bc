#!/usr/bin/env python3
"""A pass-through FUSE file system that keeps what is not yet durable in memory, as a kernel
page cache does, and can lose power: drop all of it (the power-loss harness's file system,
reliability figure D2).

    .venv/bin/python scripts/lazyfs.py BACKING MOUNTPOINT [--control SOCKET]
        [--metadata dirsync|fsync] [--max-dirty-mib 1024]
    .venv/bin/python scripts/lazyfs.py --control SOCKET --send cut|sync|stats|heal|'fail EIO'

It runs in the foreground and prints ``lazyfs: ready`` once the mount answers. Unmount with
``fusermount3 -u MOUNTPOINT`` (or SIGTERM), which is a clean shutdown: everything is synced.
The control socket (default ``MOUNTPOINT.ctl``) takes one command a connection and answers
one JSON line: ``cut`` loses power, ``sync`` syncs everything (sync(1)), ``stats`` counts,
``fail EIO|ENOSPC|EROFS`` makes every write, sync and name change (and an open for writing)
fail with that error until ``heal`` (a failed fsync drops the file's unsynced data first, as
Linux does: a later fsync succeeds with it lost; reliability figure A3).

What is durable, i.e. in BACKING, and what a cut drops:

* File data: a write goes to the file's in-memory overlay (4 KiB pages; reads see it), and so
  does a truncate. ``fsync``/``fdatasync`` of the file writes its overlay to BACKING. A file
  opened with ``O_SYNC``/``O_DSYNC`` (FUSE hands ``open`` and ``create`` the open flags)
  syncs after each write; the kernel also sends an fsync after each such write. Nothing is
  ever written back on its own (a kernel would after ~30 s: this drops more). A page is the
  unit, so an fsync of one write makes other unsynced bytes of the same page durable too.
* Metadata (create, link, mkdir, unlink, rmdir, rename) is done in BACKING at once and logged; an
  unlinked or replaced entry is moved into ``BACKING/.lazyfs`` (hidden) so that it can be put
  back. The log is ordered, like a journalling file system's: ``fsyncdir`` of a directory
  makes durable every operation up to the last one that changed that directory, no later one.
  With ``--metadata dirsync`` (the default) an fsync of a file does not make its own name
  durable (POSIX: fsync the directory); ``--metadata fsync`` lets any file fsync commit every
  operation before it, as ext4's and XFS's journal commits do. Attribute changes (chmod,
  chown, utimens) are durable at once. rename's flags (RENAME_NOREPLACE, RENAME_EXCHANGE) are
  not passed on by mfusepy; symlink, mknod and fallocate are not offered. A hard link is a
  new name like a create's (the root key is linked into place from a synced temporary file).
* A cut drops every overlay and undoes every logged operation that is not durable, newest
  first, so that BACKING is exactly what was synced; from then on every operation fails with
  EIO (the machine is off) until the file system is unmounted.
* mmap works (no ``direct_io``; ``keep_cache`` so that an open does not drop the shared
  pages): SQLite's WAL index ``-shm`` lives in the page cache and reaches the overlay when the
  kernel writes it back; as on a real machine it is not synced and a cut may drop it.
  File locks (flock, fcntl) are the kernel's own, as all users are on this mount.

BACKING itself is never fsynced: the host does not lose power, only this simulated machine.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lazyfs_state import HIDDEN, PAGE, MetadataLog, Op, Overlay, send

_F = TypeVar("_F", bound=Callable[..., Any])
#: the faults the control socket can inject (``fail NAME``)
FAULTS = ("EIO", "ENOSPC", "EROFS")


def _parent(path: str) -> str:
    return os.path.dirname(path.rstrip("/")) or "/"


@dataclass
class Handle:
    fd: int
    ino: int
    sync_writes: bool


def _alive(method: _F, writes: bool = False) -> _F:
    """Run under the lock; after a cut, fail with EIO; ``writes``: while a fault is injected,
    fail with it."""

    def run(self: LazyFS, *args: Any) -> Any:
        with self.mutex:
            if self.dead:
                raise OSError(errno.EIO, "lazyfs: power is off")
            if writes:
                self._check_fault()
            return method(self, *args)

    run.__name__ = method.__name__
    return run  # type: ignore[return-value]


def _writes(method: _F) -> _F:
    return _alive(method, writes=True)


class LazyFS:
    """The file system's state and operations (mfusepy's Operations protocol, raw_fi)."""

    use_ns = True

    def __init__(self, backing: Path, metadata: str = "dirsync", max_dirty: int = 1 << 30):
        self.root = str(backing.resolve())
        self.metadata = metadata
        self.max_dirty = max_dirty
        self.mutex = threading.RLock()
        self.dead = False
        self.fault: int | None = None  # an errno every write, sync and name change fails with
        self.handles: dict[int, Handle] = {}
        self.opened: dict[int, int] = {}  # inode -> handles open on it
        self.overlays: dict[int, Overlay] = {}
        self.log = MetadataLog(self.root)
        self.next_handle = 1
        self.dirty_pages = 0
        self.counts = dict.fromkeys(
            ("writes", "fsyncs", "fsyncdirs", "synced_bytes", "metadata_ops", "cuts", "faults"), 0
        )

    # --- paths, overlays, the log -------------------------------------------------------------

    def _real(self, path: str | None) -> str:
        if path is None:
            raise OSError(errno.EBADF, "lazyfs: no path (an unlinked file)")
        parts = path.strip("/").split("/")
        if parts[0] == HIDDEN:
            raise OSError(errno.EACCES, "lazyfs: reserved name")
        return os.path.join(self.root, *[p for p in parts if p])

    def _handle(self, fi: Any) -> Handle:
        handle = self.handles.get(int(fi.fh))
        if handle is None:
            raise OSError(errno.EBADF, "lazyfs: unknown file handle")
        return handle

    def _overlay(self, ino: int, fd: int) -> Overlay:
        overlay = self.overlays.get(ino)
        if overlay is None:
            size = os.fstat(fd).st_size
            overlay = self.overlays[ino] = Overlay(os.dup(fd), size, size)
        return overlay

    def _drop(self, ino: int) -> None:
        overlay = self.overlays.pop(ino, None)
        if overlay is not None:
            self.dirty_pages -= len(overlay.pages)
            os.close(overlay.fd)

    def _sync(self, ino: int) -> None:
        overlay = self.overlays.get(ino)
        if overlay is not None:
            self.counts["synced_bytes"] += overlay.flush()
            self._drop(ino)

    def _log(self, op: Op) -> None:
        self.log.add(op)
        self.counts["metadata_ops"] += 1

    def _commit(self, upto: int) -> None:
        for ino in self.log.commit(upto):
            if not self.opened.get(ino):
                self._drop(ino)  # unlinked for good and not open: unreachable

    # --- the control channel -----------------------------------------------------------------

    def cut(self) -> dict[str, Any]:
        """Lose power: drop overlays and undo what is not durable; refuse everything after."""
        with self.mutex:
            if self.dead:
                return {"cut": False, "error": "power is already off"}
            self.dead = True
            self.counts["cuts"] += 1
            dropped = {
                "dropped_bytes": self.dirty_pages * PAGE,
                "dropped_files": len(self.overlays),
            }
            for ino in list(self.overlays):
                self._drop(ino)
            undone = self.log.undo_all()
            return {"cut": True, **dropped, "undone_metadata_ops": undone[-50:]}

    def sync_all(self) -> dict[str, Any]:
        with self.mutex:
            if self.dead:
                return {"synced": False, "error": "power is off"}
            for ino in list(self.overlays):
                self._sync(ino)
            self._commit(len(self.log.ops))
            return {"synced": True}

    def stats(self) -> dict[str, Any]:
        with self.mutex:
            return {
                **self.counts,
                "dead": self.dead,
                "dirty_bytes": self.dirty_pages * PAGE,
                "dirty_files": len(self.overlays),
                "pending_metadata_ops": len(self.log.ops),
            }

    def _check_fault(self) -> None:
        if self.fault is not None:
            self.counts["faults"] += 1
            raise OSError(self.fault, "lazyfs: injected fault")

    def inject(self, name: str | None) -> dict[str, Any]:
        """``fail EIO|ENOSPC|EROFS``: from now on every write, sync and name change (and an
        open for writing) fails with it, reads go on; ``heal``: no more."""
        with self.mutex:
            self.fault = None if name is None else int(getattr(errno, name))
            return {"fault": name}

    def serve_control(self, path: str) -> None:
        commands: dict[str, Callable[[], dict[str, Any]]] = {
            "cut": self.cut, "sync": self.sync_all, "stats": self.stats,
            "heal": lambda: self.inject(None),
        }  # fmt: skip
        for name in FAULTS:
            commands[f"fail {name}"] = lambda name=name: self.inject(name)  # type: ignore[misc]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(8)

        def loop() -> None:
            while True:  # a daemon thread: ends with the process
                conn, _ = server.accept()
                with conn, contextlib.suppress(OSError):
                    conn.settimeout(30)
                    command = conn.recv(256).decode(errors="replace").strip()
                    action = commands.get(command)
                    answer = action() if action else {"error": f"unknown command {command!r}"}
                    conn.sendall(json.dumps(answer).encode() + b"\n")

        threading.Thread(target=loop, name="lazyfs-control", daemon=True).start()

    # --- FUSE operations ---------------------------------------------------------------------

    def init_with_config(self, conn: Any, config: Any) -> None:
        print("lazyfs: ready", flush=True)

    def destroy(self, path: str) -> None:
        """A clean unmount syncs everything (after a cut there is nothing left)."""
        self.sync_all()

    @_alive
    def getattr(self, path: str | None, fi: Any = None) -> dict[str, Any]:
        if fi is not None and int(fi.fh) in self.handles:
            st = os.fstat(self.handles[int(fi.fh)].fd)
        else:
            st = os.lstat(self._real(path))
        attrs = {k: getattr(st, k) for k in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_ino")}
        attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        overlay = self.overlays.get(st.st_ino)
        attrs["st_size"] = overlay.size if overlay is not None else st.st_size
        return attrs

    @_alive
    def readdir(self, path: str, fh: int) -> list[tuple[str, dict[str, int], int]]:
        """With use_ino an entry needs its inode number (glibc skips d_ino 0)."""
        real = self._real(path)
        entries = [(".", os.lstat(real)), ("..", os.lstat(os.path.dirname(real)))]
        with os.scandir(real) as found:
            entries += [(e.name, e.stat(follow_symlinks=False)) for e in found]
        return [
            (name, {"st_ino": st.st_ino, "st_mode": st.st_mode}, 0)
            for name, st in entries
            if not (path == "/" and name == HIDDEN)
        ]

    @_alive
    def statfs(self, path: str) -> dict[str, int]:
        sv = os.statvfs(self.root)
        keys = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree")
        return {k: getattr(sv, k) for k in (*keys, "f_favail", "f_namemax")}

    @_writes
    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    @_writes
    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._real(path), uid, gid)
        return 0

    @_writes
    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        os.utime(self._real(path), ns=times) if times else os.utime(self._real(path))
        return 0

    def _open_handle(self, real: str, flags: int, fi: Any) -> None:
        fd = os.open(real, os.O_RDWR | os.O_CLOEXEC)
        ino = os.fstat(fd).st_ino
        handle = Handle(fd, ino, bool(flags & (os.O_SYNC | os.O_DSYNC)))
        number, self.next_handle = self.next_handle, self.next_handle + 1
        self.handles[number] = handle
        self.opened[ino] = self.opened.get(ino, 0) + 1
        fi.fh = number
        fi.keep_cache = 1
        if flags & os.O_TRUNC:
            self._truncate(handle.ino, handle.fd, 0)

    @_alive
    def open(self, path: str, fi: Any) -> int:
        if int(fi.flags) & os.O_ACCMODE != os.O_RDONLY:
            self._check_fault()
        self._open_handle(self._real(path), int(fi.flags), fi)
        return 0

    @_writes
    def create(self, path: str, mode: int, fi: Any) -> int:
        real = self._real(path)
        os.close(os.open(real, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode & 0o7777))
        self._log(Op("create", path, (_parent(path),)))
        self._open_handle(real, int(fi.flags), fi)
        return 0

    @_alive
    def read(self, path: str | None, size: int, offset: int, fi: Any) -> bytes:
        handle = self._handle(fi)
        overlay = self.overlays.get(handle.ino)
        if overlay is None:
            return os.pread(handle.fd, size, offset)
        return overlay.read(size, offset)

    @_writes
    def write(self, path: str | None, data: bytes, offset: int, fi: Any) -> int:
        handle = self._handle(fi)
        if (self.dirty_pages + len(data) // PAGE + 2) * PAGE > self.max_dirty:
            print("lazyfs: --max-dirty-mib reached, refusing a write (ENOSPC)", file=sys.stderr)
            raise OSError(errno.ENOSPC, "lazyfs: too much unsynced data")
        self.dirty_pages += self._overlay(handle.ino, handle.fd).write(data, offset)
        self.counts["writes"] += 1
        if handle.sync_writes:
            self._sync(handle.ino)
        return len(data)

    def _truncate(self, ino: int, fd: int, length: int) -> None:
        self.dirty_pages -= self._overlay(ino, fd).truncate(length)

    @_writes
    def truncate(self, path: str, length: int, fi: Any = None) -> int:
        fd = os.open(self._real(path), os.O_RDWR | os.O_CLOEXEC)
        try:
            self._truncate(os.fstat(fd).st_ino, fd, length)
        finally:
            os.close(fd)
        return 0

    @_alive
    def fsync(self, path: str | None, datasync: int, fi: Any) -> int:
        self.counts["fsyncs"] += 1
        if self.fault is not None:  # as Linux does: the unsynced data is dropped, not kept
            self._drop(self._handle(fi).ino)
            self._check_fault()
        self._sync(self._handle(fi).ino)
        if self.metadata == "fsync":
            self._commit(len(self.log.ops))
        return 0

    @_writes
    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        self.counts["fsyncdirs"] += 1
        self._commit(len(self.log.ops) if self.metadata == "fsync" else self.log.upto(path))
        return 0

    def flush(self, path: str | None, fi: Any) -> int:
        return 0  # close(2) syncs nothing

    def release(self, path: str | None, fi: Any) -> int:
        with self.mutex:
            handle = self.handles.pop(int(fi.fh))
            self.opened[handle.ino] -= 1
            if not self.opened[handle.ino]:
                del self.opened[handle.ino]
                overlay = self.overlays.get(handle.ino)
                if overlay is not None and os.fstat(overlay.fd).st_nlink == 0:
                    self._drop(handle.ino)  # unlinked for good and closed: unreachable
            os.close(handle.fd)
        return 0

    @_writes
    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._real(path), mode)
        self._log(Op("mkdir", path, (_parent(path),)))
        return 0

    @_writes
    def link(self, target: str, source: str) -> int:
        """``target``, a new name for the file ``source`` (mfusepy's order: ln source target)."""
        os.link(self._real(source), self._real(target))
        self._log(Op("link", target, (_parent(target),)))
        return 0

    @_writes
    def unlink(self, path: str) -> int:
        real = self._real(path)
        if os.path.isdir(real) and not os.path.islink(real):
            raise OSError(errno.EISDIR, path)
        self._log(Op("unlink", path, (_parent(path),), trash=self.log.to_trash(real)))
        return 0

    @_writes
    def rmdir(self, path: str) -> int:
        real = self._real(path)
        if os.listdir(real):
            raise OSError(errno.ENOTEMPTY, path)
        self._log(Op("rmdir", path, (_parent(path),), trash=self.log.to_trash(real)))
        return 0

    @_writes
    def rename(self, old: str, new: str) -> int:
        src, dest = self._real(old), self._real(new)
        os.lstat(src)
        trash = ""
        if os.path.lexists(dest):
            if os.path.samefile(src, dest):
                return 0
            if os.path.isdir(dest) != os.path.isdir(src):
                raise OSError(errno.EISDIR if os.path.isdir(dest) else errno.ENOTDIR, new)
            if os.path.isdir(dest) and os.listdir(dest):
                raise OSError(errno.ENOTEMPTY, new)
            trash = self.log.to_trash(dest)
        try:
            os.rename(src, dest)
        except OSError:
            if trash:
                os.rename(os.path.join(self.root, trash), dest)
            raise
        self._log(Op("rename", old, (_parent(old), _parent(new)), dest=new, trash=trash))
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backing", nargs="?", type=Path)
    parser.add_argument("mountpoint", nargs="?", type=Path)
    parser.add_argument("--control", type=Path, help="the control socket (MOUNTPOINT.ctl)")
    parser.add_argument("--metadata", choices=("dirsync", "fsync"), default="dirsync")
    parser.add_argument("--max-dirty-mib", type=int, default=1024, help="1..16384")
    sends = ("cut", "sync", "stats", "heal", *(f"fail {name}" for name in FAULTS))
    parser.add_argument("--send", choices=sends, help="talk to a lazyfs")
    args = parser.parse_args(argv)
    if args.send:
        if args.control is None:
            parser.error("--send needs --control")
        print(json.dumps(send(args.control, args.send)))
        return 0
    if args.backing is None or args.mountpoint is None:
        parser.error("BACKING and MOUNTPOINT are required")
    if not 1 <= args.max_dirty_mib <= 16384:
        parser.error("--max-dirty-mib 1..16384")
    import mfusepy

    class Operations(LazyFS, mfusepy.Operations):  # type: ignore[misc]
        pass

    fs = Operations(args.backing, args.metadata, args.max_dirty_mib << 20)
    control = args.control or Path(f"{args.mountpoint}.ctl")
    fs.serve_control(str(control))
    try:
        mfusepy.FUSE(
            fs, str(args.mountpoint), raw_fi=True, foreground=True, use_ino=True,
            hard_remove=True, default_permissions=True, fsname="lazyfs", subtype="lazyfs",
        )  # fmt: skip
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(control)
    return 0


if __name__ == "__main__":
    sys.exit(main())
