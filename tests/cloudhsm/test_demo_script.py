"""``scripts/demo-custom-key-store``, which the README shows, runs as written: the seed flow with
the aws CLI, OpenSSL and the HSM CLI against its own ``serve`` on a free port, and leaves no
process behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN, free_port

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo-custom-key-store"


def _processes_naming(text: str) -> list[int]:
    """PIDs of the processes whose command line holds ``text`` (a unique scratch path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry.name))
    return found


def test_demo_custom_key_store_runs_as_written(tmp_path: Path) -> None:
    for tool in ("openssl", "curl", "bash"):
        if shutil.which(tool) is None:
            pytest.skip(f"the demo needs {tool} (Debian: apt-get install {tool})")
    data = tmp_path / "demo-data"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PORT": str(free_port()),
    }
    try:
        proc = subprocess.run(
            [str(DEMO), str(data)],
            check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        out = proc.stdout
        assert proc.returncode == 0, proc.stderr + out[-3000:]
        assert "Cluster activation successful" in out
        assert re.search(r"^cks-[0-9a-f]{17}\tCONNECTED$", out, re.MULTILINE), out
        arn = re.search(r"^arn:aws:kms:us-east-1:\d{12}:key/[0-9a-f-]{36}$", out, re.MULTILINE)
        assert arn is not None, out
        assert "hello from the seed flow" in out
        # the cluster key KMS made, found by its label: the key's ARN, non-extractable
        listing = out[out.index("key list --filter") :]
        assert f'"label": "{arn.group(0)}"' in listing
        assert '"extractable": false' in listing and '"total_key_count": 1' in listing
    finally:
        left = _processes_naming(str(data))
        for pid in left:  # stop whatever the demo's serve left, by PID
            os.kill(pid, signal.SIGKILL)
    assert left == [], "the demo left processes of its serve running"
