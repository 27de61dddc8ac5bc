"""scripts/crash_kill.py in short: serve SIGKILLed under concurrent writes loses nothing it
acknowledged, and the check notices when the trail keeps no records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "crash_kill.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_three_kills_under_four_clients_lose_nothing_acknowledged() -> None:
    done = run("--kills", "3", "--clients", "4", "--seed", "16001")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kills of serve --workers 1 under 4 clients" in done.stdout
    assert "failures: 0" in done.stdout
    summary = json.loads(done.stdout.split("CRASH_KILL_JSON ", 1)[1].splitlines()[0])
    assert summary["kills"] == 3 and summary["failures"] == 0
    # it had something to check: calls acknowledged, ciphertexts decrypted, calls cut off
    assert summary["acked"] > 50 and summary["decrypted"] > 10 and summary["keys"] > 4
    assert summary["rotated"] > 0  # on-demand rotations, each found done or pending
    assert summary["cut"] >= 3  # calls in flight at the kills (as a rule, each client's)
    assert summary["db"] == 2  # both SQLite files passed integrity_check


def test_a_trail_that_keeps_nothing_is_caught() -> None:
    done = run(
        "--kills", "1", "--clients", "2", "--seed", "16002",
        "--serve-arg=--insecure-no-audit-trail",
    )  # fmt: skip
    assert done.returncode == 1
    assert "acknowledged calls have no record" in done.stdout
