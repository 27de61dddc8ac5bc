"""Cases of the HSM protocol fuzzer (scripts/fuzz_hsm.py; harness in hsm_fuzz_harness.py).

Every layer a network attacker reaches: bytes instead of TLS and broken TLS records, broken
framing, random frames, recorded valid requests with mutated fields or bytes, deep nesting,
requests without or with a foreign session, abrupt disconnects, many connections at once, and a
client that never reads. Each case method returns a problem (or None) and keeps what it sent.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import ssl
import struct
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

import msgspec
from hsm_fuzz_harness import PASSWORDS, REGISTRY, Harness, NodeProcess, Template

from strongroom.crypto.asymmetric import load_public
from strongroom.crypto.x509 import CustomerCa, generate_node_key, make_csr
from strongroom.hsm.protocol import MAX_FRAME, PROTOCOL_VERSION, frame

__all__ = ["Fuzzer", "run"]

# never sent with our own sessions: they would end them, or destroy the node or the fixtures
DESTRUCTIVE = frozenset({"logout", "zeroize", "user_delete", "user_change_password", "key_delete"})
OPS = [name for name in REGISTRY.names() if name not in DESTRUCTIVE]
INTS = [0, 1, -1, 255, 2**31, 2**32, 2**63 - 1, -(2**63), 2**64 - 1, 65537, 65539, 8192, 10**9]
MAGIC = [0x00, 0x7F, 0x80, 0x8F, 0x9F, 0xBF, 0xC0, 0xC1, 0xC4, 0xC6, 0xD4, 0xD9, 0xDD, 0xDF, 0xFF]
HUGE_CLAIMS = [b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff"]
HUGE_CLAIMS += [b"\xc6\xff\xff\xff\xff", b"\xc9\xff\xff\xff\xff\x01", b"\xdc\xff\xff"]
FLOOD_LIMIT_KIB = 96 * 1024  # node memory growth allowed while one client never reads


def text(rng: random.Random) -> str:
    """Odd strings: control and bidi characters, emoji, operation names, long repeats."""
    alphabet = "aZ_09-.:/ \x00\t\u00e9\u4e2d\U0001f600\u202e\ufeff\x7f"
    s = "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
    return rng.choice([s, rng.choice(OPS), "attr.label", "key-reference", "0x" + s, s * 50])


def junk(rng: random.Random, depth: int = 0) -> Any:
    """A random MessagePack-encodable value: wrong types, edge and huge numbers, odd strings."""
    pick = rng.randrange(12 if depth < 4 else 8)
    if pick < 2:
        return rng.choice([None, True, False, 0.5, -1e308, float("nan"), float("inf")])
    if pick < 4:
        return rng.choice([rng.choice(INTS), rng.randint(-(2**63), 2**64 - 1)])
    if pick == 4:
        return text(rng)
    if pick == 5:
        return rng.randbytes(rng.choice([0, 1, 12, 16, 32, 33, 1000]))
    if pick == 6:
        return "x" * rng.choice([32, 128, 5001, 70_000, 1 << 20])
    if pick == 7:
        return rng.choice(["true", "false", "aes", "rsa", "ec", "sha256", "aes-gcm", "victim", ""])
    if pick < 10:
        return [junk(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {text(rng): junk(rng, depth + 1) for _ in range(rng.randrange(4))}


def pem_mutant(rng: random.Random, pem: str) -> str:
    """The PEM with a few bytes of its DER changed: parses further than mutated base64 does."""
    lines = pem.strip().splitlines()
    der = bytearray(base64.b64decode("".join(lines[1:-1])))
    for _ in range(rng.randint(1, 3)):
        der[rng.randrange(len(der))] = rng.randrange(256)
    return f"{lines[0]}\n{base64.encodebytes(bytes(der)).decode()}{lines[-1]}\n"


def _ref(desc: dict[str, Any]) -> int:
    return int(desc["key-reference"], 16)


class Fuzzer(Harness):
    """Setup (users, sessions, keys, recorded requests) and the cases."""

    WEIGHTS = {"pre_tls": 6, "framing": 8, "random_frame": 8, "fields": 30, "nesting": 4,
               "session": 10, "recorded": 25, "disconnect": 6, "concurrency": 2,
               "flood": 1}  # fmt: skip

    def setup(self) -> None:
        """Activate the node; make users, sessions (one logged out) and keys."""
        self.call("cluster_activate", None, {"password": PASSWORDS["admin"]})
        self.login("admin", "admin", PASSWORDS["admin"], "admin")
        for name in ("fuzzcu", "victim", "probe"):
            args = {"username": name, "role": "crypto-user", "password": PASSWORDS[name]}
            self.call("user_create", "admin", args)
        pin = (self.node.data_dir / "appliance-user.pin").read_text()
        self.secrets.append(pin.encode())
        self.login("app_user", "appliance-user", pin, "app")
        self.login("fuzzcu", "crypto-user", PASSWORDS["fuzzcu"], "cu")
        self.login("probe", "crypto-user", PASSWORDS["probe"], "dead")
        self.call("logout", "dead", {})
        self.roles.pop(self.tokens["dead"])
        self.client_hello = _client_hello(self.ctx)
        self._record_templates()

    def _key(self, kind: str, size: int, label: str, attrs: list[str]) -> int:
        args = {"key_type": kind, "length_bytes": size, "label": label}
        args["attributes"] = dict.fromkeys(attrs, "true")
        return _ref(self.call("key_generate_symmetric", "cu", args))

    def _record_templates(self) -> None:
        """Make keys and record one valid request per operation worth fuzzing."""
        aes = self._key(
            "aes", 32, "fz-aes", ["encrypt", "decrypt", "wrap", "unwrap", "extractable"]
        )
        mac = self._key("generic-secret", 32, "fz-mac", ["sign", "verify"])
        scratch = self._key("aes", 16, "fz-scratch", ["extractable"])
        rsa = self.call("key_generate_pair", "cu", {
            "key_type": "rsa",
            "private_attributes": {"sign": "true", "decrypt": "true", "unwrap": "true"},
            "public_attributes": {"verify": "true", "encrypt": "true", "wrap": "true"},
        })  # fmt: skip
        rsa_pub, rsa_priv = _ref(rsa["public_key"]), _ref(rsa["private_key"])
        ec_args = {"key_type": "ec", "curve": "secp256r1", "private_attributes": {"sign": "true"}}
        ec_priv = _ref(self.call("key_generate_pair", "cu", ec_args)["private_key"])
        pem = self.call("key_public_pem", "cu", {"ref": rsa_pub})["pem"]
        known = os.urandom(32)  # key material the fuzzer knows: it must never come back
        self.secrets.append(known)
        der = base64.b64decode("".join(pem.strip().splitlines()[1:-1]))
        unwrap = {"unwrapping_ref": rsa_priv, "key_type": "aes", "key_class": "secret-key"}
        oaep = load_public(der).encrypt_oaep("sha256", known)
        known_args = {"mechanism": "rsa-oaep", "data": oaep, "attributes": {"extractable": "true"}}
        known_ref = _ref(self.call("key_unwrap", "cu", {**unwrap, **known_args}))
        wrap = {"mechanism": "aes-key-wrap-pad", "payload_ref": known_ref, "wrapping_ref": aes}
        wrapped = self.call("key_wrap", "cu", wrap)["wrapped_key_data"]
        gcm = {"ref": aes, "mechanism": "aes-gcm", "aad": b"aad"}
        ct = self.call("encrypt", "cu", {**gcm, "data": b"plain"})["data"]
        pss = {"ref": rsa_priv, "mechanism": "rsa-pkcs-pss", "data": b"msg", "hash": "sha256"}
        sig = self.call("sign", "cu", pss)["signature"]
        blob = self.call("clone_export", "cu", {"refs": [scratch]})["blob"]
        ca = CustomerCa("Fuzz CA")  # a valid chain, but for another key: never installable
        cert, anchor = ca.sign_csr(make_csr(generate_node_key(), "fuzz")), ca.certificate_pem
        env: dict[str, Any] = {"sender": os.urandom(32), "nonce": os.urandom(12), "sealed": b"s"}
        env |= {"signature": b"sig", "certificate": cert, "trust_anchor": anchor}
        unwrap |= {"unwrapping_ref": aes, "mechanism": "aes-key-wrap-pad", "data": wrapped}
        gen = {"key_type": "aes", "length_bytes": 16, "attributes": {"encrypt": "true"}}
        self.templates = [
            ("hsm_info", None, {}), ("user_list", None, {}), ("cluster_csr", None, {}),
            ("login", None, {"username": "victim", "role": "crypto-user", "password": "wrong-pw"}),
            ("key_find", "cu", {"filters": {"attr.label": "fz-aes"}, "verbose": True}),
            ("key_generate_symmetric", "cu", {**gen, "share": ["victim"], "session": True}),
            ("key_generate_pair", "cu", {"key_type": "ec", "curve": "p-256", "session": True}),
            ("key_generate_pair", "cu", {"key_type": "rsa", "modulus_bits": 2048,
                                         "public_exponent": 65537, "session": True}),
            ("encrypt", "cu", {**gcm, "data": b"plain"}), ("decrypt", "cu", {**gcm, "data": ct}),
            ("sign", "cu", pss), ("verify", "cu", {**pss, "ref": rsa_pub, "signature": sig}),
            ("sign", "cu", {"ref": ec_priv, "mechanism": "ecdsa", "data": b"m"}),
            ("hmac", "cu", {"ref": mac, "data": b"msg", "hash": "sha384"}),
            ("digest", "cu", {"hash": "sha512", "data": b"m"}), ("random", "admin", {"length": 32}),
            ("key_wrap", "cu", wrap), ("key_unwrap", "cu", {**unwrap, "session": True}),
            ("key_set_attribute", "cu", {"ref": scratch, "name": "label", "value": "fz-scratch"}),
            ("key_share", "cu", {"ref": scratch, "username": "victim"}),
            ("key_public_pem", "cu", {"ref": rsa_pub}), ("clone_import", "cu", {"blob": blob}),
            ("audit_read", "admin", {"start_seq": 0, "limit": 3}),
            ("user_create", "admin", {"username": "fzu", "role": "crypto-user", "password": "p"}),
            ("clone_export", "cu", {"refs": [scratch]}), ("cluster_backup_export", "app", {}),
            ("install_certificate", "app", {"certificate": cert, "trust_anchor": anchor}),
            ("cluster_join_import", "app", {**env, "expected_trust_anchor": anchor}),
        ]  # fmt: skip

    # --- cases -----------------------------------------------------------------------------------

    def pre_tls(self, rng: random.Random) -> str | None:
        """Bytes instead of TLS, a mutated ClientHello, garbage TLS records after a handshake."""
        v = rng.randrange(5)
        if v == 4:
            self.layer = "raw TCP inside an established TLS connection"
            head = rng.choice([b"\x17\x03\x03", b"\x15\x03\x03\x00\x02", b""])
            with self.conn() as c:
                self.send(c, head + rng.randbytes(rng.randint(1, 3000)), below_tls=True)
                c.closes_within(2.0)
            return None
        hello = bytearray(self.client_hello)
        for _ in range(rng.randint(1, 6)):
            hello[rng.randrange(len(hello))] = rng.randrange(256)
        self.layer = "TCP (no TLS)"
        data = [
            rng.randbytes(rng.randint(1, 4096)),
            frame(self.request("hsm_info", None, {})),
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            bytes(hello)[: rng.randint(1, len(hello))],
        ][v]
        with self.conn(tls=False) as c:
            self.send(c, data)
            c.closes_within(2.0)
        return None

    def framing(self, rng: random.Random) -> str | None:
        """Oversized, empty, partial, truncated, huge and misaligned length prefixes."""
        v, valid = rng.randrange(6), frame(self.tpl_request(rng.choice(self.templates)))
        with self.conn() as c:
            if v == 0:
                self.send(c, struct.pack(">I", rng.randint(MAX_FRAME + 1, 2**32 - 1)) + valid)
                return None if c.closes_within(5.0) else "oversized length prefix left open"
            if v == 1:
                self.send(c, frame(b""))
                return self.judge(c, b"")
            if v == 2:  # a big payload, up to the frame limit: a valid digest request
                data = b"\xa5" * rng.choice([1 << 16, 1 << 20, MAX_FRAME - 200])
                payload = self.request("digest", self.tokens["cu"], {"hash": "sha1", "data": data})
                self.send(c, frame(payload))
                return self.judge(c, payload)
            if v == 3:  # the prefix announces more than is ever sent
                self.send(c, struct.pack(">I", rng.randint(len(valid), MAX_FRAME)) + valid[4:])
            elif v == 4:  # a cut-off prefix or frame
                self.send(c, valid[: rng.randrange(len(valid))])
            else:  # a prefix that is off, then valid frames
                off = rng.choice([-3, -1, 1, 7])
                self.send(c, struct.pack(">I", len(valid) - 4 + off) + valid[4:] + valid * 3)
                c.closes_within(0.3)
            c.close(abrupt=rng.random() < 0.5)
        return None

    def random_frame(self, rng: random.Random) -> str | None:
        """Frames of random bytes (some starting like a five-element array)."""
        return self.one(
            rng.choice([b"", b"\x95", b"\x95\x01"]) + rng.randbytes(rng.randint(1, 2048))
        )

    def fields(self, rng: random.Random) -> str | None:
        """Recorded requests with fields of the wrong type, missing, extra, huge or junk."""
        op, tok, args = rng.choice(self.templates)
        msg: list[Any] = [
            PROTOCOL_VERSION,
            1 + rng.randrange(2**31),
            op,
            self.tokens.get(tok or ""),
        ]
        msg.append(args)
        for _ in range(rng.randint(1, 3)):
            i = rng.choice([0, 1, 2, 3, 4, 4, 4, 4])
            if i < 2:
                msg[i] = rng.choice([junk(rng), rng.choice(INTS)])
            elif i == 2:
                msg[2] = rng.choice(
                    [rng.choice(OPS), text(rng), op.upper(), op + "\x00", junk(rng)]
                )
            elif i == 3:
                msg[3] = rng.choice([None, rng.randbytes(32), self.tokens["dead"], junk(rng)])
            elif isinstance(msg[4], dict) and msg[4] and rng.random() < 0.8:
                msg[4] = dict(msg[4])
                key = rng.choice([*msg[4], text(rng)])
                pem = str(msg[4].get(key, ""))
                pem_ok = pem.startswith("-----BEGIN") and rng.random() < 0.7
                msg[4][key] = pem_mutant(rng, pem) if pem_ok else junk(rng)
                if rng.random() < 0.2:
                    del msg[4][key]
            else:
                msg[4] = junk(rng)
        if rng.random() < 0.1 and isinstance(msg[4], dict):  # every string argument very long
            msg[4] = {k: "x" * 100_000 if isinstance(v, str) else v for k, v in msg[4].items()}
        if rng.random() < 0.05:  # wrong arity
            msg = msg[: rng.randrange(5)] if rng.random() < 0.5 else [*msg, junk(rng)]
        try:
            payload = self.enc.encode(msg)
        except (msgspec.EncodeError, OverflowError, TypeError, ValueError):
            payload = self.tpl_request((op, tok, args))
        return self.one(payload)

    def nesting(self, rng: random.Random) -> str | None:
        """Deeply nested arguments, and headers claiming gigabytes that never come."""
        depth = rng.choice([64, 500, 900, 1000, 2000, 100_000, 1_000_000])
        unit = rng.choice([b"\x91", b"\x81\xa1k", b"\x92\xc0"])
        args = rng.choice([unit * depth + b"\xc0", rng.choice(HUGE_CLAIMS) + b"\x01" * 9])
        head = self.request(rng.choice(OPS), rng.choice([None, self.tokens["cu"]]), None)
        return self.one(head[:-1] + args)  # in place of the trailing nil (the arguments)

    def session(self, rng: random.Random) -> str | None:
        """Requests that need a login, without one, or with a dead, forged or foreign one."""
        op, tok, args = rng.choice([t for t in self.templates if t[1]])
        mine = self.tokens[tok or ""]
        others = [t for t in self.tokens.values() if t != mine]
        forged = [rng.randbytes(32), mine[:-1], mine + b"\x00", bytes([mine[0] ^ 1]) + mine[1:]]
        token = rng.choice([None, b"", self.tokens["dead"], *forged, *others])
        return self.one(self.request(op, token, args))

    def recorded(self, rng: random.Random) -> str | None:
        """Bit flips, magic bytes, cuts, inserts and duplicates in recorded valid requests."""
        data = bytearray(self.tpl_request(rng.choice(self.templates)))
        for _ in range(rng.randint(1, 4)):
            pos, kind = rng.randrange(len(data)), rng.randrange(6)
            if kind == 0:
                data[pos] ^= 1 << rng.randrange(8)
            elif kind == 1:
                data[pos] = rng.choice(MAGIC)
            elif kind == 2:
                del data[pos : pos + rng.randint(1, 8)]
            elif kind == 3:
                data[pos:pos] = rng.randbytes(rng.randint(1, 8))
            elif kind == 4:
                del data[pos:]
            else:
                data += data[: rng.randrange(len(data) + 1)]
            data = data or bytearray(b"\x95")
        return self.one(bytes(data))

    def disconnect(self, rng: random.Random) -> str | None:
        """Slow or pipelined requests, or part of a frame, then a reset before the answers."""
        slow: list[Template] = [
            ("login", None, {"username": "nobody", "role": "crypto-user", "password": "x" * 9}),
            ("key_generate_pair", "cu", {"key_type": "rsa", "session": True}),
        ]
        pool = slow + self.templates
        data = b"".join(
            frame(self.tpl_request(rng.choice(pool))) for _ in range(rng.randint(1, 50))
        )
        with self.conn() as c:
            self.send(c, data[: rng.randint(1, len(data))] if rng.random() < 0.4 else data)
            time.sleep(rng.choice([0, 0, 0.01, 0.05]))
            c.close(abrupt=rng.random() < 0.7)
        return None

    def concurrency(self, rng: random.Random) -> str | None:
        """Up to 32 connections at once: pipelined valid requests beside garbage and resets."""
        seeds = [rng.randrange(2**32) for _ in range(rng.randint(8, 32))]
        with ThreadPoolExecutor(len(seeds)) as pool:
            results = list(pool.map(self._worker, seeds))
        for problem, sent in results:
            if problem:
                self.sent = bytearray(sent)
                return problem
        return None

    def _worker(self, seed: int) -> tuple[str | None, bytes]:
        rng = random.Random(seed)
        tpl = rng.choice([t for t in self.templates if t[0] in ("hsm_info", "digest", "random")])
        reqs = [self.tpl_request(tpl) for _ in range(rng.randint(1, 40))]
        data = b"".join(map(frame, reqs))
        try:
            if rng.random() < 0.3:  # garbage, with or without TLS, then a reset
                with self.conn(tls=rng.random() < 0.5) as c:
                    c.send(rng.randbytes(rng.randint(1, 512)))
                    c.close(abrupt=True)
                return None, b""
            with self.conn() as c:
                c.send(data)
                answers = [c.read(self.timeout) for _ in reqs]
        except OSError as exc:
            return f"pipelined requests on one of many connections: {exc!r}", data
        problems = [self.check_answer(a, None, b"") if a else "closed early" for a in answers]
        return next((p for p in problems if p), None), data

    def flood(self, rng: random.Random) -> str | None:
        """A client that sends requests with large answers and never reads them."""
        big = frame(self.request("random", self.tokens["admin"], {"length": 65536}))
        self.sent += big
        rss0, count, deadline = self.node.rss_kib(), 0, time.monotonic() + 10
        with self.conn() as c:
            c.sock.settimeout(1.0)
            with contextlib.suppress(OSError):  # a timeout: the node stopped reading
                while count < 4000 and time.monotonic() < deadline:
                    c.sock.sendall(big * 50)
                    count += 50
            time.sleep(1.0)
            growth = self.node.rss_kib() - rss0
            c.close(abrupt=True)
        if growth > FLOOD_LIMIT_KIB:
            return (
                f"node memory grew {growth // 1024} MiB while a client sent {count} requests "
                "(the frame below, repeated) and never read the answers"
            )
        return None


def _client_hello(ctx: ssl.SSLContext) -> bytes:
    out = ssl.MemoryBIO()
    with contextlib.suppress(ssl.SSLWantReadError):
        ctx.wrap_bio(ssl.MemoryBIO(), out).do_handshake()
    return out.read()


def run(
    cases: int = 5000, seconds: float = 60.0, seed: int | None = None, out: TextIO | None = None
) -> Fuzzer:
    """Start a node in a temporary directory, fuzz it, stop it by its PID, print a summary."""
    seed = random.randrange(2**32) if seed is None else seed
    with tempfile.TemporaryDirectory(prefix="fuzz-hsm-") as tmp:
        node = NodeProcess(Path(tmp))
        try:
            node.start()
            fuzzer = Fuzzer(node, seed)
            fuzzer.setup()
            elapsed = fuzzer.run(cases, seconds)
        finally:
            node.stop()
        fuzzer.report(out or sys.stdout, elapsed)
    return fuzzer
