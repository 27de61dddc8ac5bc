"""The audit trail cannot be turned off by configuration (reliability figure A4): serve's
hidden trail-off baseline flag is refused unless the testing switch a benchmark sets is
there, and the refusal happens before anything is served or written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import STRONGROOM, free_port


def test_the_trail_off_flag_is_refused_outside_benchmarks(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "STRONGROOM_TESTING_ALLOW_NO_TRAIL"}
    data = tmp_path / "data"
    done = subprocess.run(
        [STRONGROOM, "serve", "--port", str(free_port()), "--data-dir", str(data),
         "--insecure-no-audit-trail"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot be turned off by configuration" in done.stderr
    assert not data.exists()  # refused before the data directory was made
