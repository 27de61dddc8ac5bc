"""The A4 restart scripts at a small count in the default run (their counts of 100 are the
scripts' defaults): serve's trail gapless with one epoch per start of its writer, an HSM node's
audit log gapless with its reboot counter rising by one per start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.mark.parametrize(
    ("script", "summary"),
    [
        ("restart_trail.py", "3 starts"),
        ("restart_hsm.py", "3 restarts"),
    ],
)
def test_three_restarts_leave_no_gap(script: str, summary: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / script), "--restarts", "3", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f": {summary} (" in proc.stdout and "failures 0" in proc.stdout, proc.stdout
