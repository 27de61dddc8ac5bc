"""Where ``strongroom serve`` spends its time under load: py-spy sampling, summarised.

Used by kms_bench.py ``--profile``. py-spy (``pip install py-spy``) attaches to the running
server by PID (ptrace: run as root or with ``kernel.yama.ptrace_scope=0``), samples its Python
stacks at 200 Hz while the load runs, and writes them in the collapsed-stack format
(``frame;frame;... count``) that flamegraph.pl and speedscope read. The summary gives each
function's self time (the leaf frame: the function itself, including the C code it calls) and
inclusive time (anywhere on the stack), as a share of the samples in which the server was busy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

__all__ = ["record", "summarise"]

RATE_HZ = 200


def record(
    pid: int, seconds: int, out: Path, load: Callable[[], str], prefix: list[str]
) -> list[str]:
    """Sample ``pid`` with py-spy while ``load()`` runs (about ``seconds``); summary lines."""
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        return ["py-spy not found: .venv/bin/pip install py-spy (profile skipped)"]
    argv = [*prefix, pyspy, "record", "--pid", str(pid), "--rate", str(RATE_HZ), "--nolineno"]
    argv += ["--format", "raw", "--duration", str(seconds + 1), "-o", str(out)]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)  # let py-spy attach before the load starts
        headline = load()
        _, err = spy.communicate(timeout=seconds + 60)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    if spy.returncode != 0 or not out.exists():
        return [f"py-spy failed ({spy.returncode}): {err.decode(errors='replace').strip()}"]
    return [f"{headline}; stacks in {out}", *summarise(out)]


def short_frame(frame: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py)`` -> ``func (pkg/mod.py)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/src/", "/lib/python3.11/", "/lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})"


def summarise(raw: Path, top: int = 20) -> list[str]:
    """Top self-time and inclusive-time functions from a collapsed-stack file."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [short_frame(f) for f in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not samples:
        return ["py-spy recorded no samples"]
    lines = [f"{samples} busy samples; self time (leaf frame):"]
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines.append("inclusive time (frame anywhere on the stack; the ~100% outer frames omitted):")
    nested = [(f, n) for f, n in inclusive.most_common() if n < 0.98 * samples]
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in nested[:top]]
    return lines
