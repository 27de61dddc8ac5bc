"""Regressions found by fuzzing the node's network protocol (scripts/fuzz_hsm.py), each against a
real node process, and a short fixed-seed run of the fuzzer itself."""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import io
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

from strongroom.crypto.x509 import CustomerCa, generate_node_key, make_csr
from strongroom.hsm.client import ErrorCode, HsmClient, HsmClientError, client_ssl_context
from strongroom.hsm.protocol import RequestOut, ResponseIn, frame

from .conftest import NodeProc

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from hsm_fuzz_harness import Conn

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fuzz_hsm.py"


def _connect(node: NodeProc) -> Conn:
    return Conn(node.port, client_ssl_context(node_cert=node.cert))


def _request(op: str, token: bytes | None, args: Any, req_id: int = 1) -> bytes:
    return msgspec.msgpack.encode(RequestOut(1, req_id, op, token, args))


def _answer(conn: Conn, timeout: float = 15) -> ResponseIn:
    raw = conn.read(timeout)
    assert raw is not None, "the node closed the connection instead of answering"
    return msgspec.msgpack.decode(raw, type=ResponseIn)


def _login(node: NodeProc, user: str, password: str) -> bytes:
    with _connect(node) as conn:
        args = {"username": user, "role": "crypto-user", "password": password}
        conn.send(frame(_request("login", None, args)))
        resp = _answer(conn)
    assert resp.code == 0, resp.message
    token: bytes = msgspec.msgpack.decode(resp.result)["token"]
    return token


def _still_serves(node: NodeProc) -> None:
    with node.client() as client:
        assert client.hsm_info()["activated"] is True


def _stderr_after_stop(node: NodeProc) -> str:
    proc = node.proc
    assert proc is not None and proc.stderr is not None
    node.stop()
    return proc.stderr.read().decode(errors="replace")


def test_deep_nesting_closes_the_connection_without_a_traceback(node: NodeProc) -> None:
    """msgspec raises RecursionError (not a MsgspecError) for nesting this deep; it escaped the
    server's data_received, so asyncio logged a traceback for every such frame."""
    for depth in (1000, 100_000):
        payload = _request("hsm_info", None, None)[:-1] + b"\x91" * depth + b"\xc0"
        with _connect(node) as conn:
            conn.send(frame(payload))
            assert conn.closes_within(10)
    _still_serves(node)
    assert "Traceback" not in _stderr_after_stop(node)


def test_a_request_that_is_not_utf8_closes_the_connection_quietly(node: NodeProc) -> None:
    """An operation name that is not UTF-8 made msgspec raise UnicodeDecodeError, which escaped
    data_received the same way."""
    with _connect(node) as conn:
        conn.send(frame(b"\x95\x01\x01\xa3\xff\xfe\xfd\xc0\x80"))
        assert conn.closes_within(10)
    _still_serves(node)
    assert "Traceback" not in _stderr_after_stop(node)


def test_arguments_that_are_not_utf8_are_an_invalid_request(node: NodeProc) -> None:
    """Invalid UTF-8 inside the arguments reached the handler pipeline as UnicodeDecodeError and
    came back as INTERNAL, with a traceback in the node's log."""
    args = b"\x83\xa8username\xa3\xff\xfe\xfd\xa4role\xa5admin\xa8password\xa8password"
    with _connect(node) as conn:
        conn.send(frame(_request("login", None, None)[:-1] + args))
        resp = _answer(conn)
    assert resp.code == ErrorCode.INVALID_REQUEST
    assert "UTF-8" in resp.message
    assert "Traceback" not in _stderr_after_stop(node)


def _rss_kib(node: NodeProc) -> int:
    assert node.proc is not None
    for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_client_that_never_reads_cannot_grow_the_node_memory(node: NodeProc) -> None:
    """The node handled every request it received and buffered all answers: 4000 requests of
    ~60 bytes for 64 KiB of random bytes each grew it by ~250 MiB. It now stops reading a
    connection whose answers are not being taken."""
    token = _login(node, "alice", "alice-pass")
    request = frame(_request("random", token, {"length": 65536}))
    before = _rss_kib(node)
    with _connect(node) as conn:
        conn.sock.settimeout(2)
        with contextlib.suppress(TimeoutError):  # the node may stop reading before all are sent
            for _ in range(80):
                conn.sock.sendall(request * 50)
        time.sleep(1.5)
        grown_mib = (_rss_kib(node) - before) // 1024
        _still_serves(node)  # other connections are served meanwhile
        conn.close(abrupt=True)
    assert grown_mib < 64, f"node grew by {grown_mib} MiB"


def test_pipelined_answers_all_arrive_when_the_client_reads_late(node: NodeProc) -> None:
    """Reading paused for a slow client resumes once it reads: nothing is lost or stuck."""
    token = _login(node, "bob", "bob-pass-1")
    count = 400  # ~26 MiB of answers, far past what the node queues before it stops reading
    with _connect(node) as conn:
        conn.sock.sendall(
            b"".join(frame(_request("random", token, {"length": 65536}, i)) for i in range(count))
        )
        time.sleep(1)
        ids = set()
        for _ in range(count):
            resp = _answer(conn)
            assert resp.code == 0, resp.message
            ids.add(resp.id)
    assert ids == set(range(count))


def test_an_rsa_exponent_the_library_refuses_is_an_invalid_request(node: NodeProc) -> None:
    """generate_rsa lets odd exponents >= 65537 through, but the library takes only 65537: its
    ValueError came back as INTERNAL, with a traceback in the node's log."""
    with node.client() as client:
        client.login("alice", "alice-pass")
        with pytest.raises(HsmClientError) as err:
            client.generate_key_pair("rsa", modulus_bits=2048, public_exponent=65539)
        assert err.value.code == ErrorCode.INVALID_REQUEST
    assert "Traceback" not in _stderr_after_stop(node)


def test_unwrap_into_an_unknown_key_class_is_an_invalid_request(node: NodeProc) -> None:
    """key_unwrap built the new key's attributes before checking its class and type; an unknown
    pair failed the attribute table lookup with KeyError, answered as INTERNAL."""
    with node.client() as client:
        client.login("alice", "alice-pass")
        kek = client.generate_symmetric("aes", 32, "kek", {"unwrap": "true"})
        for key_class, key_type in (("sha256", "aes"), ("public-key", "rsa"), ("secret-key", "")):
            with pytest.raises(HsmClientError) as err:
                client.unwrap_key(kek.ref, b"\x00" * 40, key_class, key_type)
            assert err.value.code == ErrorCode.INVALID_REQUEST, (key_class, key_type)
    assert "Traceback" not in _stderr_after_stop(node)


def test_a_huge_attribute_name_does_not_bloat_the_audit_log(node: NodeProc) -> None:
    """key_set_attribute put the attribute name, unchecked, into its audit record's detail: a
    crypto user could append up to 16 MiB to the (fsynced, always read whole) audit log with
    every refused request. Details are now capped."""
    audit = node.data_dir / "audit.log"
    with node.client() as client:
        client.login("alice", "alice-pass")
        key = client.generate_symmetric("aes", 32, "audit-bloat")
        before = audit.stat().st_size
        with pytest.raises(HsmClientError) as err:
            client.set_attribute(key.ref, "x" * (4 << 20), "true")
        assert err.value.code == ErrorCode.ATTRIBUTE_INVALID
        grown = audit.stat().st_size - before
    assert grown < 64 * 1024, f"the audit log grew by {grown} bytes"


def _bad_version(pem: str) -> str:
    """The certificate with X.509 version 31 (the parser raises InvalidVersion, no ValueError)."""
    lines = pem.strip().splitlines()
    der = base64.b64decode("".join(lines[1:-1]))
    assert der.count(b"\xa0\x03\x02\x01\x02") == 1
    der = der.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x1e")
    return f"{lines[0]}\n{base64.encodebytes(der).decode()}{lines[-1]}\n"


def _appliance_client(node: NodeProc) -> HsmClient:
    client = node.client()
    client.login("app_user", (node.data_dir / "appliance-user.pin").read_text(), "appliance-user")
    return client


def _chain() -> tuple[str, str]:
    ca = CustomerCa("Regression CA")
    return ca.sign_csr(make_csr(generate_node_key(), "other")), ca.certificate_pem


def test_a_malformed_certificate_is_certificate_invalid(node: NodeProc) -> None:
    """The certificate parser raises more than ValueError on parts it reads lazily (version,
    issuer, key type, extensions); install_certificate answered those with INTERNAL."""
    cert, anchor = _chain()
    with _appliance_client(node) as client:
        for certificate, trust_anchor in (
            (_bad_version(cert), anchor),
            (cert, _bad_version(anchor)),
        ):
            with pytest.raises(HsmClientError) as err:
                client.install_certificate(certificate, trust_anchor)
            assert err.value.code == ErrorCode.CERTIFICATE_INVALID
    assert "Traceback" not in _stderr_after_stop(node)


def test_joining_or_restoring_with_a_malformed_certificate(node_factory: Any) -> None:
    """The same for the join and backup envelopes (their certificate is parsed by open_join)."""
    fresh: NodeProc = node_factory()
    cert, anchor = _chain()
    envelope: dict[str, Any] = {"sender": os.urandom(32), "nonce": os.urandom(12)}
    envelope |= {"sealed": b"s" * 40}
    envelope |= {"signature": b"sig", "certificate": _bad_version(cert)}
    envelope |= {"trust_anchor": anchor, "expected_trust_anchor": anchor}
    with _appliance_client(fresh) as client:
        client.raw_call("cluster_join_offer")
        for op in ("cluster_join_import", "cluster_backup_restore"):
            with pytest.raises(HsmClientError) as err:
                client.raw_call(op, envelope)
            assert err.value.code == ErrorCode.CERTIFICATE_INVALID, op
    assert "Traceback" not in _stderr_after_stop(fresh)


def _fuzz_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_hsm", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fuzzer_fixed_seed_finds_nothing() -> None:
    """A short, bounded run of scripts/fuzz_hsm.py (its own node; every category weighted)."""
    out = io.StringIO()
    fuzzer = _fuzz_script().run(cases=120, seconds=12, seed=20240611, out=out)
    assert not fuzzer.failures, out.getvalue()
    assert sum(fuzzer.counts.values()) >= 60, out.getvalue()
