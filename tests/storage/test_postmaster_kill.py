"""scripts/pg_kill.py in short (reliability figure D3): SIGKILL of serve, of the PostgreSQL
postmaster and of both under concurrent writes, on a PostgreSQL cluster the script runs on
its own free port; nothing acknowledged is lost, the serve that outlives its database answers
again by itself, and every table and index passes ``pg_amcheck``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.storage.conftest import SCRIPTS, no_postgres_server

_MISSING = no_postgres_server("initdb", "postgres", "pg_isready", "pg_amcheck")


@pytest.mark.skipif(
    _MISSING is not None,
    reason=f"no PostgreSQL server binaries to run a cluster of the test's own: {_MISSING}",
)
def test_kills_of_serve_the_postmaster_and_both_lose_nothing_acknowledged() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "pg_kill.py"), "--kills", "3", "--in-turn",
         "--clients", "4", "--sample", "10", "--seed", "3103"],
        capture_output=True, text=True, timeout=420, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if "_JSON " in line)
    kills, totals = json.loads(lines["PG_KILL_JSON"]), json.loads(lines["CRASH_KILL_JSON"])
    assert (kills["serve"], kills["postmaster"], kills["both"]) == (1, 1, 1)
    assert totals["kills"] == 3 and totals["failures"] == 0
    # the checks ran on real work: calls acknowledged, traced and keys' ciphertexts decrypted
    assert totals["acked"] > 0 and totals["checked"] > 0 and totals["decrypted"] > 0
