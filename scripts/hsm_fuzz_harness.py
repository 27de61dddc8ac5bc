"""Harness of the HSM protocol fuzzer (scripts/fuzz_hsm.py; cases in hsm_fuzz_cases.py): its
own node process on 127.0.0.1, raw TLS/TCP connections, and the oracles (node alive, quiet and
answering; well-formed requests answered with a protocol error or success, never INTERNAL, a
leak, a bypass or a hang; bad frames answered or closed). Not used by the node itself."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import msgspec

from strongroom.hsm.client import HsmClient, client_ssl_context
from strongroom.hsm.errors import ErrorCode
from strongroom.hsm.operations import build_registry
from strongroom.hsm.protocol import (
    PROTOCOL_VERSION,
    FrameReader,
    RequestIn,
    RequestOut,
    ResponseIn,
    frame,
)
from strongroom.hsm.roles import PERMISSIONS, Permission, Role

__all__ = ["Conn", "Failure", "Harness", "NodeProcess", "Template"]

HOST = "127.0.0.1"
NODE_CMD = [sys.executable, "-c", "from strongroom.cli import main; main()", "hsm-node"]
NODE_OPTS = ["--argon2-time-cost", "1", "--argon2-memory-kib", "8192", "--session-timeout", "3600"]
PASSWORDS = {"admin": "admin-pass-1", "fuzzcu": "fuzzcu-pass", "victim": "victim-pass"}
PASSWORDS["probe"] = "probe-pass"
REGISTRY = build_registry()
AUDIT_CASE_LIMIT = 64 * 1024  # audit log growth allowed per case (of at most ~50 requests)
BAD_LOG = re.compile(r'Traceback|"level":"(ERROR|CRITICAL)"|Fatal error|Exception in callback')
Template = tuple[str, str | None, dict[str, Any]]  # op, name of the session token, arguments


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class NodeProcess:
    """One ``strongroom hsm-node`` child process, stderr to a file; stopped by its PID."""

    def __init__(self, workdir: Path) -> None:
        self.data_dir = workdir / "hsms" / "node0"
        self.err_path = workdir / "node-stderr.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the node; return once it listens."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [*NODE_CMD, "--data-dir", str(self.data_dir), "--port", str(self.port), *NODE_OPTS]
        with self.err_path.open("ab") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError("node exited at start:\n" + self.stderr_since()[-4000:])
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError("node did not start listening")

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stderr_since(self, offset: int = 0) -> str:
        """What the node wrote to stderr from byte ``offset`` on."""
        with contextlib.suppress(OSError), self.err_path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
        return ""

    def stderr_size(self) -> int:
        return self.err_path.stat().st_size

    def audit_size(self) -> int:
        return (self.data_dir / "audit.log").stat().st_size

    def rss_kib(self) -> int:
        """Resident memory of the node process."""
        assert self.proc is not None
        found = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{self.proc.pid}/status").read_text())
        return int(found.group(1)) if found else 0

    def fd_count(self) -> int:
        """Open file descriptors (sockets included) of the node process."""
        assert self.proc is not None
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL if it does not stop."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


class Conn:
    """A connection to the node, TLS or plain TCP, that reads whole frame payloads."""

    def __init__(self, port: int, ctx: ssl.SSLContext | None, timeout: float = 5.0) -> None:
        raw = socket.create_connection((HOST, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw) if ctx else raw
        self._frames = FrameReader()
        self._ready: list[bytes] = []

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes, below_tls: bool = False) -> None:
        """Send ``data`` (``below_tls``: as raw TCP bytes, bypassing the TLS layer)."""
        if below_tls:
            socket.socket.sendall(self.sock, data)
        else:
            self.sock.sendall(data)

    def read(self, timeout: float) -> bytes | None:
        """The next frame payload; None once the node closed; TimeoutError if neither."""
        deadline = time.monotonic() + timeout
        while not self._ready:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer and no close")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 16)
            except TimeoutError:
                raise
            except OSError:
                return None
            if not chunk:
                return None
            self._ready += self._frames.feed(chunk)
        return self._ready.pop(0)

    def closes_within(self, timeout: float) -> bool:
        """True if the node closes the connection within ``timeout`` (answers are skipped)."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(TimeoutError):
            while self.read(deadline - time.monotonic()) is not None:
                pass
            return True
        return False

    def close(self, abrupt: bool = False) -> None:
        """Close (``abrupt``: a TCP reset instead of FIN / close_notify)."""
        with contextlib.suppress(OSError):
            if abrupt:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()


@dataclass
class Failure:
    """One failed check, with what reproduces it."""

    category: str
    case: int
    what: str
    layer: str
    sent: bytes
    stderr: str

    @property
    def kind(self) -> tuple[str, str]:
        """Category and problem, numbers left out: failures of one kind are counted together."""
        return self.category, re.sub(r"(?<![\w-])\d+\b", "N", self.what)


class Harness:
    """Plumbing, oracles and the run loop; :class:`fuzz_cases.Fuzzer` adds setup and cases."""

    WEIGHTS: dict[str, int] = {}  # case method name → relative frequency

    def __init__(self, node: NodeProcess, seed: int, timeout: float = 10.0) -> None:
        self.node, self.seed, self.timeout = node, seed, timeout
        self.ctx = client_ssl_context(node_cert=node.data_dir / "hsm-certificate.pem")
        self.enc = msgspec.msgpack.Encoder()
        self.tokens: dict[str, bytes] = {}
        self.roles: dict[bytes, Role] = {}
        self.templates: list[Template] = []
        self.secrets = [pw.encode() for pw in PASSWORDS.values()]
        self.counts: Counter[str] = Counter()
        self.failures: list[Failure] = []
        self.sent, self.layer, self._offset = bytearray(), "tls", 0
        self._ids = itertools.count(1)

    # --- plumbing ------------------------------------------------------------------------------

    def conn(self, tls: bool = True) -> Conn:
        """A new connection to the node."""
        return Conn(self.node.port, self.ctx if tls else None)

    def request(self, op: str, token: bytes | None, args: Any, req_id: int = 0) -> bytes:
        """A request payload as the client library encodes it."""
        req = RequestOut(PROTOCOL_VERSION, req_id or next(self._ids), op, token, args)
        return self.enc.encode(req)

    def tpl_request(self, tpl: Template) -> bytes:
        """The payload of a recorded valid request, with a fresh id."""
        return self.request(tpl[0], self.tokens.get(tpl[1] or ""), tpl[2])

    def send(self, c: Conn, data: bytes, below_tls: bool = False) -> None:
        """Send and keep the bytes for the reproducer."""
        self.sent += data
        c.send(data, below_tls)

    def call(self, op: str, token: str | None, args: dict[str, Any]) -> Any:
        """A setup request that must succeed; its decoded result."""
        with self.conn() as c:
            c.send(frame(self.request(op, self.tokens.get(token or ""), args)))
            raw = c.read(60)
        if raw is None:
            raise RuntimeError(f"setup {op}: connection closed")
        resp = msgspec.msgpack.decode(raw, type=ResponseIn)
        if resp.code:
            raise RuntimeError(f"setup {op} failed: {resp.code} {resp.message}")
        return msgspec.msgpack.decode(resp.result)

    def login(self, name: str, role: str, password: str, as_: str) -> None:
        """Log in and keep the session token under ``as_``."""
        args = {"username": name, "role": role, "password": password}
        self.tokens[as_] = token = self.call("login", None, args)["token"]
        self.roles[token] = Role(role)
        self.secrets.append(token)

    def one(self, payload: bytes) -> str | None:
        """Send one frame on a new connection and judge what comes back."""
        with self.conn() as c:
            self.send(c, frame(payload))
            return self.judge(c, payload)

    # --- oracles -------------------------------------------------------------------------------

    def judge(self, c: Conn, payload: bytes) -> str | None:
        """A well-formed request must be answered; anything else answered or closed."""
        req: RequestIn | None = None
        with contextlib.suppress(Exception):
            req = msgspec.msgpack.decode(payload, type=RequestIn)
        try:
            raw = c.read(self.timeout)
        except TimeoutError:
            return "no answer and the connection stays open (hang)"
        if raw is None:
            return None if req is None else "connection closed without answering a valid request"
        return self.check_answer(raw, req, payload)

    def check_answer(self, raw: bytes, req: RequestIn | None, payload: bytes) -> str | None:
        """An answer must be a protocol answer: known code, not INTERNAL, no leak, no bypass."""
        try:
            resp = msgspec.msgpack.decode(raw, type=ResponseIn)
        except msgspec.MsgspecError:
            return f"malformed answer {raw[:64].hex()}"
        if req is not None and resp.id != req.id:
            return f"answer for id {resp.id} to request id {req.id}"
        if resp.code == ErrorCode.INTERNAL or resp.code not in set(ErrorCode):
            return f"error code {resp.code} ({resp.message!r}): an unhandled exception"
        if any(s in raw and s not in payload for s in self.secrets):
            return f"a secret (password, token or key material) in the answer to {req and req.op}"
        spec = REGISTRY.get(req.op) if req else None
        if resp.code == 0 and req and spec and isinstance(spec.permission, Permission):
            role = self.roles.get(req.token or b"", Role.UNAUTHENTICATED)
            if role not in PERMISSIONS[spec.permission]:
                return f"{req.op} succeeded for role {role}: authorization bypass"
        return None

    def probe(self) -> str | None:
        """A fresh connection and a well-formed request still work."""
        try:
            with self.conn() as c:
                c.send(frame(self.request("hsm_info", None, {})))
                raw = c.read(self.timeout)
        except OSError as exc:
            return f"fresh hsm_info request failed: {exc!r}"
        if raw is None or msgspec.msgpack.decode(raw, type=ResponseIn).code:
            return "fresh hsm_info request was not answered with success"
        return None

    def client_check(self) -> str | None:
        """The client library can still log in and query."""
        try:
            with HsmClient([f"{HOST}:{self.node.port}"], self.ctx, timeout=self.timeout) as cl:
                cl.hsm_info()
                cl.login("probe", PASSWORDS["probe"])
                cl.find_keys()
                cl.logout()
        except Exception as exc:
            return f"client library login/query failed: {exc!r}"
        return None

    def leak_check(self, baseline: int) -> str | None:
        """Once every fuzzer connection is closed the node holds no more sockets than before."""
        deadline = time.monotonic() + 10
        while (fds := self.node.fd_count()) > baseline + 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        return None if fds <= baseline + 4 else f"{fds - baseline} descriptors never closed"

    # --- the run -------------------------------------------------------------------------------

    def run(self, cases: int, seconds: float) -> float:
        """Run up to ``cases`` cases within ``seconds``; returns the seconds taken."""
        start = time.monotonic()
        fds = self.node.fd_count()
        names, weights = list(self.WEIGHTS), list(self.WEIGHTS.values())
        for case in range(cases):
            if time.monotonic() - start > seconds or not self.node.alive():
                break
            rng = random.Random(f"{self.seed}:{case}")
            cat = rng.choices(names, weights)[0]
            self.sent, self.layer, offset = bytearray(), "tls", self.node.stderr_size()
            audit = self.node.audit_size()
            case_fn: Callable[[random.Random], str | None] = getattr(self, cat)
            try:
                problem = case_fn(rng)
            except OSError:  # the node may close on us mid-case; the checks below decide
                problem = None
            self.counts[cat] += 1
            self.after_case(cat, case, offset, problem)
            grown = self.node.audit_size() - audit
            if cat not in ("flood", "concurrency") and grown > AUDIT_CASE_LIMIT:
                self.record(cat, case, f"one case grew the audit log by {grown >> 10} KiB")
            if case % 50 == 49:
                self.record(cat, case, self.client_check())
        if self.node.alive():
            self.record("final", -1, self.client_check())
            self.record("final", -1, self.leak_check(fds))
        return time.monotonic() - start

    def after_case(self, cat: str, case: int, offset: int, problem: str | None) -> None:
        """Record the case's problem, then check the node: alive, quiet, answering."""
        self._offset = offset
        self.record(cat, case, problem)
        if self.node.proc is not None and self.node.proc.poll() is not None:
            self.record(cat, case, f"node process exited (status {self.node.proc.returncode})")
            return
        time.sleep(0.002)  # let the node log what it would log about this case
        logged = self.node.stderr_since(offset)
        if BAD_LOG.search(logged):
            last = re.findall(r"^\w*(?:Error|Exception)\b.*$", logged, re.MULTILINE)
            self.record(cat, case, f"the node logged an error: {(last or ['?'])[-1][:120]}")
        self.record(cat, case, self.probe())

    def record(self, cat: str, case: int, problem: str | None) -> None:
        """Keep a failure with the bytes of the case and the node's stderr tail."""
        if problem:
            lines = self.node.stderr_since(self._offset).splitlines() or ["(nothing new)"]
            tail = "\n".join(lines[:30])
            self.failures.append(Failure(cat, case, problem, self.layer, bytes(self.sent), tail))

    def report(self, out: TextIO, elapsed: float) -> None:
        """Cases per category; failures by kind, the first of each kind in full."""
        total = sum(self.counts.values())
        print(f"fuzz_hsm: seed {self.seed}, {total} cases in {elapsed:.1f} s", file=out)
        for cat in self.WEIGHTS:
            print(f"  {cat:<13} {self.counts[cat]:>6}", file=out)
        print(f"failures: {len(self.failures)}", file=out)
        kinds = Counter(f.kind for f in self.failures)
        for (cat, what), n in kinds.most_common():
            print(f"  {n:>5} x [{cat}] {what}", file=out)
        shown: set[tuple[str, str]] = set()
        for f in self.failures:
            if f.kind in shown or len(shown) >= 20:
                continue
            shown.add(f.kind)
            stderr = f.stderr.replace("\n", "\n    ")
            print(
                f"\n[{f.category} case {f.case}] {f.what}\n  layer: {f.layer}; {len(f.sent)} "
                f"bytes sent; hex (first 512): {f.sent[:512].hex()}\n  node stderr during the "
                f"case:\n    {stderr}",
                file=out,
            )
