"""Running the aws CLI (v1, the venv's, as a subprocess) against a real ``strongroom serve``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AWS_CLI, Server

__all__ = ["Cli", "openssl"]


class Cli:
    """Runs ``aws <service> ...`` against one server, from ``cwd``."""

    def __init__(self, server: Server, cwd: Path, service: str = "kms") -> None:
        self.server = server
        self.cwd = cwd
        self.service = service

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [AWS_CLI, self.service, *args, "--endpoint-url", self.server.endpoint],
            check=False,
            cwd=self.cwd,
            env=self.server.cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--output", "json").stdout)

    def text(self, *args: str) -> str:
        return self.run(*args, "--output", "text").stdout.strip()


def openssl(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run the system's ``openssl`` (the test is skipped where there is none)."""
    binary = shutil.which("openssl")
    if binary is None:
        pytest.skip("openssl is not installed (Debian: apt-get install openssl)")
    proc = subprocess.run([binary, *args], check=False, cwd=cwd, capture_output=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc
