"""Small files that other processes read while they change (PID files, alarm states, the
self-signed TLS certificate)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["create_secret_once", "replace_text"]


def create_secret_once(path: Path, data: bytes) -> None:
    """Make ``path`` (mode 0600) hold ``data``, unless it exists already; the first of several
    processes doing this at once wins. The bytes are written and synced under a temporary name
    and linked to ``path`` whole (a reader never sees an empty or partial file, which a plain
    ``O_EXCL`` create and write would show it), then the directory is synced, so that after a
    power cut the file is there with its content or not at all."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return  # another process made it first
        sync_directory(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def sync_directory(path: Path) -> None:
    """Make the names in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` beside ``path`` and rename it over ``path``, so that a reader sees the
    old content or the new, never an empty or partial file. ``mode``: the new file's
    permissions (before the umask; 0o600 for a secret, which is never readable by others)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
