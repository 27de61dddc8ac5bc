"""Small files that other processes read while they change (PID files, alarm states, the
self-signed TLS certificate)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["replace_text"]


def replace_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` beside ``path`` and rename it over ``path``, so that a reader sees the
    old content or the new, never an empty or partial file. ``mode``: the new file's
    permissions (before the umask; 0o600 for a secret, which is never readable by others)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
