"""lazyfs's state apart from FUSE: a file's unsynced pages (:class:`Overlay`), the metadata
operations not yet durable (:class:`MetadataLog`), and the control socket's client
(:func:`send`). See scripts/lazyfs.py for the semantics."""

from __future__ import annotations

import json
import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["HIDDEN", "PAGE", "MetadataLog", "Op", "Overlay", "send"]

PAGE = 4096
#: where removed entries wait, in the backing directory (hidden on the mount)
HIDDEN = ".lazyfs"


def send(control: Path | str, command: str, timeout: float = 60.0) -> dict[str, Any]:
    """Send one command to a running lazyfs; its JSON answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(control))
        sock.sendall(command.encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n") and len(reply) < 1 << 20:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    answer: dict[str, Any] = json.loads(reply)
    return answer


@dataclass
class Overlay:
    """A file's unsynced state: its size, the pages written, and ``floor``, below which the
    backing file's bytes still count (a truncate hides those above it). Owns a descriptor of
    the backing inode, so its number is not reused while the overlay lives."""

    fd: int
    size: int
    floor: int
    pages: dict[int, bytearray] = field(default_factory=dict)

    def _base(self, index: int) -> bytearray:
        at = index * PAGE
        data = os.pread(self.fd, PAGE, at) if at < self.floor else b""
        page = bytearray(data[: max(0, self.floor - at)])
        return page + bytes(PAGE - len(page))

    def read(self, size: int, offset: int) -> bytes:
        end = min(offset + size, self.size)
        out = bytearray()
        at = offset
        while at < end:
            index, skip = divmod(at, PAGE)
            page = self.pages.get(index)
            if page is None:
                page = self._base(index)
            take = min(PAGE - skip, end - at)
            out += page[skip : skip + take]
            at += take
        return bytes(out)

    def write(self, data: bytes, offset: int) -> int:
        """Returns how many pages were added."""
        added, at, done = 0, offset, 0
        while done < len(data):
            index, skip = divmod(at, PAGE)
            page = self.pages.get(index)
            if page is None:
                page = self.pages[index] = self._base(index)
                added += 1
            take = min(PAGE - skip, len(data) - done)
            page[skip : skip + take] = data[done : done + take]
            at, done = at + take, done + take
        self.size = max(self.size, offset + len(data))
        return added

    def truncate(self, length: int) -> int:
        """Returns how many pages were dropped."""
        before = len(self.pages)
        if length < self.size:
            self.floor = min(self.floor, length)
            for index in [i for i in self.pages if i * PAGE >= length]:
                del self.pages[index]
            tail = self.pages.get(length // PAGE)
            if tail is not None:
                tail[length % PAGE :] = bytes(PAGE - length % PAGE)
        self.size = length
        return before - len(self.pages)

    def flush(self) -> int:
        """Write everything to the backing file; returns the bytes written."""
        if self.floor < os.fstat(self.fd).st_size:
            os.ftruncate(self.fd, self.floor)
        written = 0
        for index in sorted(self.pages):
            at = index * PAGE
            if at < self.size:
                chunk = self.pages[index][: self.size - at]
                written += os.pwrite(self.fd, chunk, at)
        if os.fstat(self.fd).st_size != self.size:
            os.ftruncate(self.fd, self.size)
        return written


@dataclass
class Op:
    """One logged metadata operation, with what it takes to undo it."""

    kind: str  # create, link, mkdir, unlink, rmdir, rename
    path: str
    dirs: tuple[str, ...]  # the directories it changed
    dest: str = ""
    trash: str = ""  # where a removed or replaced entry waits (BACKING-relative)


class MetadataLog:
    """The logged operations not yet durable, oldest first; what they removed waits in
    ``HIDDEN``, so that each can be undone."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.ops: list[Op] = []
        self.next_trash = 0
        os.makedirs(os.path.join(root, HIDDEN), exist_ok=True)

    def add(self, op: Op) -> None:
        self.ops.append(op)

    def to_trash(self, real: str) -> str:
        """Move ``real`` aside; its name relative to the root."""
        self.next_trash += 1
        name = f"{HIDDEN}/{self.next_trash}"
        os.rename(real, os.path.join(self.root, name))
        return name

    def upto(self, directory: str) -> int:
        """How many operations an fsync of ``directory`` makes durable: every one up to the
        last that changed it (the log is ordered, like a journalling file system's)."""
        last = [i for i, op in enumerate(self.ops) if directory in op.dirs]
        return last[-1] + 1 if last else 0

    def commit(self, upto: int) -> list[int]:
        """Make ``ops[:upto]`` durable: what they removed is gone for good. Returns the inode
        numbers of the files deleted."""
        done, self.ops = self.ops[:upto], self.ops[upto:]
        gone = []
        for op in done:
            if not op.trash:
                continue
            trash = os.path.join(self.root, op.trash)
            if os.path.isdir(trash):
                shutil.rmtree(trash)
            else:
                status = os.lstat(trash)
                os.unlink(trash)
                if status.st_nlink <= 1:  # its last name: the file is gone
                    gone.append(status.st_ino)
        return gone

    def undo_all(self) -> list[str]:
        """Undo every operation, newest first; what was undone (the last 50)."""
        undone = [f"{op.kind} {op.path} {op.dest}".strip() for op in self.ops]
        for op in reversed(self.ops):
            self._undo(op)
        self.ops = []
        shutil.rmtree(os.path.join(self.root, HIDDEN), ignore_errors=True)
        return undone[-50:]

    def _undo(self, op: Op) -> None:
        real = os.path.join(self.root, op.path.lstrip("/"))
        trash = os.path.join(self.root, op.trash) if op.trash else ""
        if op.kind in ("create", "link"):
            os.unlink(real)
        elif op.kind == "mkdir":
            shutil.rmtree(real)
        elif op.kind in ("unlink", "rmdir"):
            os.rename(trash, real)
        else:  # rename
            dest = os.path.join(self.root, op.dest.lstrip("/"))
            os.rename(dest, real)
            if trash:
                os.rename(trash, dest)
