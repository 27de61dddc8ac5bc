"""Search a live process's memory for secret bytes (reliability figure S7).

The memory is read through ``/proc/<pid>/mem`` region by region, as ``/proc/<pid>/maps``
lists them (what gcore would dump): the heap, anonymous mappings (pymalloc's arenas, OpenSSL's
allocations), thread stacks and the file mappings. Reading another process's memory needs
ptrace access to it: root, or the same user where Yama allows it (a parent may read its
descendants under ``ptrace_scope`` 1).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["descendants", "forms", "found_in_memory", "found_in_text"]

_CHUNK = 16 << 20
_UNREADABLE = ("[vvar]", "[vvar_vclock]", "[vsyscall]")


def forms(secret: bytes) -> dict[str, bytes]:
    """The encodings a secret could be written out in."""
    b64 = base64.b64encode(secret)
    return {
        "raw": secret,
        "hex": secret.hex().encode(),
        "HEX": secret.hex().upper().encode(),
        "base64": b64,
        "base64 unpadded": b64.rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(secret).rstrip(b"="),
    }


def _regions(pid: int) -> Iterator[tuple[int, int]]:
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        name = fields[5] if len(fields) > 5 else ""
        if not fields[1].startswith("r") or name in _UNREADABLE:
            continue
        low, high = (int(x, 16) for x in fields[0].split("-"))
        yield low, high


def found_in_memory(pid: int, needles: dict[str, bytes]) -> dict[str, int]:
    """How many times each needle occurs in process ``pid``'s readable memory."""
    counts = dict.fromkeys(needles, 0)
    overlap = max(len(n) for n in needles.values()) - 1
    regions = 0
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for low, high in _regions(pid):
            tail, at = b"", low
            while at < high:
                try:
                    mem.seek(at)
                    data = mem.read(min(_CHUNK, high - at))
                except OSError:  # a region unmapped meanwhile, or a guard page
                    break
                if not data:
                    break
                window = tail + data
                for label, needle in needles.items():
                    counts[label] += window.count(needle) - tail.count(needle)
                tail, at = window[-overlap:] if overlap else b"", at + len(data)
            regions += 1
    if not regions:
        raise AssertionError(f"nothing of process {pid}'s memory could be read")
    return counts


def found_in_text(haystacks: dict[str, bytes], needles: dict[str, bytes]) -> list[str]:
    """``"<needle> in <haystack>"`` for every needle that occurs in a haystack."""
    return [
        f"{label} in {where}"
        for where, hay in haystacks.items()
        for label, needle in needles.items()
        if needle in hay
    ]


def descendants(pid: int) -> list[int]:
    """The PIDs of every living descendant of ``pid`` (children, theirs, ...)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, of in parents.items() if of == parent]
        found += children
        frontier += children
    return found
