"""A network partition between serve and PostgreSQL (reliability figure A3, a blocked remote
sink): calls fail closed with 503 within seconds instead of waiting for TCP to give up (about
15 minutes), and serve answers again once the network is back, by itself.

serve runs in a network namespace the test creates, reached over one veth pair; its database
(the store and the trail) is reached over a second veth pair, through a TCP relay in this
process to the PostgreSQL on 127.0.0.1. The partition takes the second pair's link down:
packets are dropped, not refused, as in a real partition. Needs root and ``ip``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from sqlalchemy.engine import make_url

from tests.conftest import STRONGROOM, read_credentials
from tests.memscan import descendants
from tests.storage.conftest import PgServer

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2's ip to make a network namespace",
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def _namespace() -> Iterator[tuple[str, str, str, str]]:
    """A namespace and two veth pairs: (namespace, db-side link in this namespace, this side's
    address on it, serve's address on the client-side pair)."""
    tag, net = secrets.token_hex(3), f"10.231.{secrets.randbelow(250) + 1}"
    ns, client, db = f"sr-{tag}", f"src{tag}", f"srd{tag}"
    _ip("netns", "add", ns)
    try:
        for link, first in ((db, 1), (client, 5)):
            _ip("link", "add", link, "type", "veth", "peer", "name", link + "n")
            _ip("link", "set", link + "n", "netns", ns)
            _ip("addr", "add", f"{net}.{first}/30", "dev", link)
            _ip("link", "set", link, "up")
            _ip("-n", ns, "addr", "add", f"{net}.{first + 1}/30", "dev", link + "n")
            _ip("-n", ns, "link", "set", link + "n", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        yield ns, db, f"{net}.1", f"{net}.6"
    finally:
        for link in (client, db):
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("link", "del", link)
        _ip("netns", "del", ns)


class _Relay:
    """Relays TCP connections accepted on ``host`` to PostgreSQL on 127.0.0.1."""

    def __init__(self, host: str, target: tuple[str, int]) -> None:
        self.listener = socket.create_server((host, 0))
        self.port = int(self.listener.getsockname()[1])
        self.target = target
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                near, _ = self.listener.accept()
                far = socket.create_connection(self.target, timeout=5)
            except OSError:
                continue
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.stopping = True
        self.listener.close()


def _serve(
    ns: str, host: str, url: str, data: Path, log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = 4599 + secrets.randbelow(20000)  # in a namespace of its own: nothing else there
    argv = ["ip", "netns", "exec", ns, STRONGROOM, "serve", "--host", host, "--port", str(port),
            "--data-dir", str(data), "--database-url", url]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)  # ip execs serve
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            if (data / "credentials").exists():
                return proc, port
        assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
        assert time.monotonic() < deadline, "serve did not start in its namespace"
        time.sleep(0.2)


def _client(host: str, port: int, data: Path) -> Any:
    akid, secret = read_credentials(data)
    return boto3.client(
        "kms", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
        aws_access_key_id=akid, aws_secret_access_key=secret,
        config=BotoConfig(retries={"total_max_attempts": 1}, read_timeout=90),
    )  # fmt: skip


def test_a_partition_from_postgresql_fails_calls_closed_and_heals(
    pg_server: PgServer, tmp_path: Path
) -> None:
    database = make_url(pg_server.create_database())
    with _namespace() as (ns, db_link, relay_host, serve_host):
        relay = _Relay(relay_host, (database.host or "127.0.0.1", database.port or 5432))
        url = database.set(host=relay_host, port=relay.port).render_as_string(False)
        proc, port = _serve(ns, serve_host, url, tmp_path / "data", tmp_path / "serve.log")
        try:
            kms = _client(serve_host, port, tmp_path / "data")
            key = kms.create_key()["KeyMetadata"]["KeyId"]
            _ip("link", "set", db_link, "down")  # the partition: packets dropped
            began = time.monotonic()
            with pytest.raises(ClientError) as info:
                kms.create_key(Description="during the partition")
            took = time.monotonic() - began
            error = info.value.response
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 503, error
            assert error["Error"]["Code"] == "ServiceUnavailableException"
            assert took < 60, f"a call waited {took:.0f} s for a partitioned database"
            _ip("link", "set", db_link, "up")
            deadline = time.monotonic() + 90
            while True:  # serve answers again by itself
                try:
                    kms.encrypt(KeyId=key, Plaintext=b"after the partition")
                    break
                except ClientError as exc:
                    assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 503
                    assert time.monotonic() < deadline, "serve did not recover"
                    time.sleep(0.5)
            described = [k["KeyId"] for k in kms.list_keys()["Keys"]]
            assert key in described
            log = (tmp_path / "serve.log").read_text(errors="replace")
            # faults logged (with their tracebacks), but no call left unanswered or answered 500
            assert "unanswered request" not in log and "internal error" not in log, log[-3000:]
            print(f"503 after {took:.1f} s of partition")
        finally:
            children = descendants(proc.pid)  # its trail writer, stopped by serve normally
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
            for pid in children:  # left behind only if serve could not stop it: by PID
                with contextlib.suppress(OSError):
                    if b"strongroom" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        os.kill(pid, signal.SIGKILL)
            relay.close()
