"""scripts/rolling_restart.py in short (reliability figure D7): three serve nodes on one
PostgreSQL (a cluster of the script's own), each stopped and started again in turn while four
clients call through them as behind a load balancer; every call is answered by some node,
nothing acknowledged is lost, and the one trail verifies from every node."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.storage.conftest import SCRIPTS, no_postgres_server

_MISSING = no_postgres_server("initdb", "postgres", "pg_isready")


@pytest.mark.skipif(
    _MISSING is not None,
    reason=f"no PostgreSQL server binaries to run a cluster of the test's own: {_MISSING}",
)
def test_a_rolling_restart_of_three_nodes_loses_and_refuses_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "rolling_restart.py"), "--rounds", "1", "--clients", "4",
         "--pause", "1", "--seed", "2607"],
        capture_output=True, text=True, timeout=420, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("ROLLING_JSON "))
    result = json.loads(line.split(" ", 1)[1])
    assert result["faults"] == 3 and result["failures"] == [], result
    assert result["unanswered"] == 0
    # the load ran through the restarts: calls acknowledged, keys made, ciphertexts checked,
    # and calls sent to a stopped node were answered by another
    assert result["acked"] > 100 and result["keys"] > 0 and result["ciphertexts"] > 0
    assert result["failovers"] > 0
    assert result["kinds"] == {"TERM": 3, "KILL": 0, "STOP": 0}
    assert result["max_disable_spread_s"] <= 1.0  # a DisableKey reached every node within 1 s
