"""The least a Python Sign server does: a reference for bench/kms_sign_bench.py (``--bare``).

Each POST's body is a KMS Sign request (JSON); the server decodes it, signs the base64-decoded
``Message`` with one key of its own (RSA_2048 PKCS#1 v1.5 SHA-256, or ECC_NIST_P256 ECDSA
SHA-256) and answers KMS's response shape as JSON. It does what every Python server on this
stack must — HTTP/1.1 keep-alive with httptools on uvloop, JSON in and out with msgspec, base64,
the signature — and nothing Strongroom adds: no SigV4 verification, no key lookup or
authorization, no audit trail, no metrics. Its rate next to the raw signing rate says how much
of the gap to raw no Python server on this machine can close; Strongroom's rate next to it,
how much is Strongroom's own.

    python bench/bare_sign_server.py --port PORT --spec RSA_2048 [--processes 2]

The listening socket is bound once and shared by ``--processes`` forked processes. SIGTERM to
the first stops the others by their PIDs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import socket
import sys
from typing import Any

import httptools
import msgspec
import uvloop
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

HOST = "127.0.0.1"
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def signer(spec: str) -> Any:
    if spec == "RSA_2048":
        rkey = rsa.generate_private_key(65537, 2048)
        return lambda m: rkey.sign(m, padding.PKCS1v15(), hashes.SHA256())
    ekey = ec.generate_private_key(ec.SECP256R1())
    return lambda m: ekey.sign(m, ec.ECDSA(hashes.SHA256()))


class SignProtocol(asyncio.Protocol):
    sign: Any = None

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            assert self._transport is not None
            self._transport.close()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = _decode(b"".join(self._body))
        self._body = []
        signature = SignProtocol.sign(base64.b64decode(request["Message"]))
        out = _encode(
            {
                "KeyId": request["KeyId"],
                "Signature": base64.b64encode(signature).decode(),
                "SigningAlgorithm": request["SigningAlgorithm"],
            }
        )
        assert self._transport is not None
        self._transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(out), out)
        )


async def serve(sock: socket.socket, parent: int | None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SignProtocol, sock=sock)
    while parent is not None and os.getppid() == parent:  # a forked one ends with its parent
        await asyncio.sleep(0.5)
    if parent is None:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--spec", choices=("RSA_2048", "ECC_NIST_P256"), required=True)
    parser.add_argument("--processes", type=int, default=2, help="1..16")
    args = parser.parse_args(argv)
    if not 1 <= args.processes <= 16:
        parser.error("--processes must be 1..16")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, args.port))
    sock.listen(1024)
    children: list[int] = []
    parent = None
    for _ in range(args.processes - 1):
        pid = os.fork()
        if pid == 0:
            children, parent = [], os.getppid()
            break
        children.append(pid)

    def stop(signum: int, frame: object) -> None:
        del signum, frame
        for pid in children:
            os.kill(pid, signal.SIGTERM)
        for pid in children:
            os.waitpid(pid, 0)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    SignProtocol.sign = signer(args.spec)  # each process its own key
    uvloop.run(serve(sock, parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
