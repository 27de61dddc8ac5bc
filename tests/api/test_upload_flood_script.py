"""scripts/upload_flood.py (reliability figure S4) at a small count in the default run: 200
connections per mode against one serve: every oversized body 413, every header flood and long
head 431, every held near-limit request answered, ListKeys served throughout, no process lost,
memory growth under the script's bound. The 1,000-connection run is the script's default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "upload_flood.py"


def test_a_small_flood_of_every_kind_is_answered_and_bounded() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--connections", "200", "--workers", "1", "--one-serve"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "connections in" in line]
    assert len(lines) == 5, proc.stdout
    for line, answer in zip(
        lines, ("413: 200", "413: 200", "400: 200", "431: 200", "431: 200"), strict=True
    ):
        assert f"answers {answer};" in line and line.endswith("problems 0"), line
    assert proc.stdout.rstrip().endswith("OK")
