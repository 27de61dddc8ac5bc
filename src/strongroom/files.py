"""Small files that other processes read while they change (PID files, alarm states)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["replace_text"]


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` beside ``path`` and rename it over ``path``, so that a reader sees the
    old content or the new, never an empty or partial file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
