"""The ``strongroom serve`` that scripts/fuzz_wire.py fuzzes, and its connections: a fresh server
in a temporary data dir on a free 127.0.0.1 port (stopped by its PID), over HTTP or, with
``tls``, HTTPS with the certificate ``serve --tls-self-signed`` makes."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HOST",
    "Endpoint",
    "free_port",
    "http_connection",
    "listening",
    "log_problems",
    "open_socket",
    "serve",
]

HOST = "127.0.0.1"


@dataclass
class Endpoint:
    port: int
    akid: str
    secret: str
    #: the server certificate to trust when the endpoint is HTTPS (None: plain HTTP)
    cafile: str | None = None
    #: the server's data directory (while it runs)
    data_dir: Path | None = None
    #: the server's process ID (its workers and trail writer are its descendants)
    pid: int = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.cafile else 'http'}://{HOST}:{self.port}"

    def tls_context(self) -> ssl.SSLContext:
        assert self.cafile is not None
        return ssl.create_default_context(cafile=self.cafile)


def http_connection(endpoint: Endpoint) -> http.client.HTTPConnection:
    """A keep-alive connection to the endpoint (TLS when it is HTTPS)."""
    if endpoint.cafile:
        return http.client.HTTPSConnection(
            HOST, endpoint.port, timeout=30, context=endpoint.tls_context()
        )
    return http.client.HTTPConnection(HOST, endpoint.port, timeout=30)


@contextlib.contextmanager
def open_socket(endpoint: Endpoint, tls: bool = True) -> Iterator[socket.socket]:
    """A new connection; wrapped in TLS when the endpoint is HTTPS and ``tls``."""
    tls = bool(endpoint.cafile) and tls
    # TLS cannot half-close: the reader waits for the server, so not for long
    with socket.create_connection((HOST, endpoint.port), timeout=2 if tls else 10) as sock:
        if tls:
            with endpoint.tls_context().wrap_socket(sock, server_hostname=HOST) as wrapped:
                yield wrapped
        else:
            yield sock


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


def log_problems(text: str) -> list[str]:
    """Lines of a serve log that show an unhandled error."""
    return [line for line in text.splitlines() if "Traceback" in line or "internal error" in line]


@contextlib.contextmanager
def serve(
    log: Path,
    workers: int = 1,
    database_url: str = "",
    tls: bool = False,
    data_dir: Path | None = None,
) -> Iterator[Endpoint]:
    """A fresh ``strongroom serve`` in a temporary data dir (or ``data_dir``, kept after it
    stops), stopped by its PID."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="strongroom-fuzz-"))
            data_dir = Path(tmp) / "data"
        data = data_dir
        argv = [str(Path(sys.executable).parent / "strongroom"), "serve", "--port", str(port),
                "--data-dir", str(data), "--workers", str(workers)]  # fmt: skip
        argv += ["--database-url", database_url] if database_url else []
        argv += ["--tls-self-signed"] if tls else []
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not (data / "credentials").exists() or not listening(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start: {log.read_text()[-2000:]}")
                time.sleep(0.1)
            akid = secret = ""
            for line in (data / "credentials").read_text().splitlines():
                name, _, value = line.partition("=")
                akid = value.strip() if name.strip() == "aws_access_key_id" else akid
                secret = value.strip() if name.strip() == "aws_secret_access_key" else secret
            cafile = str(data / "tls-self-signed.crt") if tls else None
            yield Endpoint(port, akid, secret, cafile, data, proc.pid)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
