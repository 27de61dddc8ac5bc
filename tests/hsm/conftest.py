"""Fixtures: real ``strongroom hsm-node`` processes on free loopback ports, CLI runners."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from strongroom.hsm.client import HsmClient, client_ssl_context

STRONGROOM = [sys.executable, "-c", "from strongroom.cli import main; main()"]
ADMIN_PW = "admin-pass-1"
FAST_ARGON2 = ["--argon2-time-cost", "1", "--argon2-memory-kib", "8192"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NodeProc:
    """One running node process."""

    data_dir: Path
    port: int
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def cert(self) -> Path:
        return self.data_dir / "hsm-certificate.pem"

    def start(self, expect_ok: bool = True) -> subprocess.Popen[bytes]:
        args = [
            *STRONGROOM,
            "hsm-node",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            *FAST_ARGON2,
            *self.extra,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if expect_ok:
            self._wait_listening()
        return self.proc

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("node did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> HsmClient:
        return HsmClient([self.address], client_ssl_context(node_cert=self.cert), timeout=15)


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator[Any]:
    nodes: list[NodeProc] = []

    def make(*extra: str, name: str = "") -> NodeProc:
        node = NodeProc(tmp_path / (name or f"node{len(nodes)}"), free_port(), list(extra))
        nodes.append(node)
        node.start()
        return node

    yield make
    for node in nodes:
        node.stop()


def activate(node: NodeProc, users: dict[str, str] | None = None) -> None:
    """Activate and create crypto users (name → password)."""
    with node.client() as c:
        c.activate(ADMIN_PW)
        c.login("admin", ADMIN_PW, "admin")
        for name, pw in (users or {}).items():
            c.create_user(name, "crypto-user", pw)
        c.logout()


@pytest.fixture
def node(node_factory: Any) -> NodeProc:
    """An activated node with crypto users alice, bob, carol."""
    n: NodeProc = node_factory()
    activate(n, {"alice": "alice-pass", "bob": "bob-pass-1", "carol": "carol-pass"})
    return n


@dataclass
class CliResult:
    code: int
    outputs: list[dict[str, Any]]
    stdout: str
    stderr: str

    @property
    def data(self) -> Any:
        return self.outputs[-1]["data"]


def run_cli(
    node: NodeProc,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    conn: list[str] | None = None,
) -> CliResult:
    """``strongroom hsm-cli`` as a subprocess."""
    connection = conn or ["--node", node.address, "--node-cert", str(node.cert)]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDHSM_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [*STRONGROOM, "hsm-cli", *connection, *args],
        input=stdin,
        capture_output=True,
        check=False,
        text=True,
        env=full_env,
        timeout=60,
    )
    outputs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return CliResult(proc.returncode, outputs, proc.stdout, proc.stderr)


def cu_env(user: str, pw: str) -> dict[str, str]:
    return {"CLOUDHSM_ROLE": "crypto-user", "CLOUDHSM_PIN": f"{user}:{pw}"}


def admin_env() -> dict[str, str]:
    return {"CLOUDHSM_ROLE": "admin", "CLOUDHSM_PIN": f"admin:{ADMIN_PW}"}
