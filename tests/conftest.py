"""Shared fixtures: a real ``strongroom serve`` on a free loopback port, and clients for it."""

from __future__ import annotations

import contextlib
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

import boto3
import pytest
from botocore.config import Config as BotoConfig

# the helpers that several test modules share assert too: rewrite them as pytest does test
# modules, so that a failing assert in a helper shows its values (before any test imports them)
pytest.register_assert_rewrite(
    "tests.api.shapes_support",
    "tests.api.sigv4_support",
    "tests.iam._support",
    "tests.kms.access_support",
    "tests.kms.aliases_tags_support",
    "tests.kms.keys_support",
    "tests.storage.contract_support",
)

VENV_BIN = Path(sys.executable).parent
STRONGROOM = str(VENV_BIN / "strongroom")
AWS_CLI = str(VENV_BIN / "aws")
REGION = "us-east-1"
ACCOUNT = "111122223333"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s")


def read_credentials(data_dir: Path) -> tuple[str, str]:
    akid = secret = ""
    for line in (data_dir / "credentials").read_text().splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "aws_access_key_id":
            akid = value.strip()
        elif name.strip() == "aws_secret_access_key":
            secret = value.strip()
    return akid, secret


@dataclass
class Server:
    """A running ``strongroom serve`` process."""

    data_dir: Path
    port: int
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.log_path = self.data_dir.parent / f"serve-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115
        args = [STRONGROOM, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        self.proc = subprocess.Popen(
            args + self.extra_args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
        )
        log.close()
        wait_for_port(self.port, self.proc)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def credentials(self) -> tuple[str, str]:
        return read_credentials(self.data_dir)

    def client(self, service: str = "kms", region: str = REGION, **creds: str) -> Any:
        akid, secret = self.credentials()
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=creds.get("akid", akid),
            aws_secret_access_key=creds.get("secret", secret),
            config=BotoConfig(retries={"max_attempts": 1}),
        )

    def cli_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "AWS_SHARED_CREDENTIALS_FILE": str(self.data_dir / "credentials"),
            "AWS_CONFIG_FILE": str(self.data_dir / "config"),
            "AWS_PROFILE": "strongroom",
        }

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


@contextlib.contextmanager
def running_server(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[Server]:
    server = Server(data_dir, free_port(), list(args), env or {}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server shared by the read-mostly end-to-end tests."""
    base = tmp_path_factory.mktemp("server")
    with running_server(base / "data", "--scheduler-interval", "0.5") as srv:
        yield srv


@pytest.fixture(scope="session")
def kms(server: Server) -> Any:
    return server.client()


@pytest.fixture
def key_id(kms: Any) -> str:
    return str(kms.create_key(Description="test key")["KeyMetadata"]["KeyId"])


def error_code(exc_info: pytest.ExceptionInfo[Any]) -> str:
    return str(exc_info.value.response["Error"]["Code"])
