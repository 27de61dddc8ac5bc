"""The coverage-guided fuzz targets of ``scripts/fuzz_atheris.py`` (reliability figure S5).

Each target takes libFuzzer's bytes to one parser that reads what a caller or an attacker
controls, and fails (raises) on anything the parser must never do: an exception other than
its documented refusal, or an answer an oracle knows to be wrong. ``seeds()`` gives each target
valid inputs to start from, so the mutations begin deep inside the format:

* ``sigv4``: a request (``METHOD path?query``, header lines, a blank line, the body) through
  :class:`~strongroom.api.sigv4.Verifier`; only an ``AwsError`` may leave it, and a request
  that is not byte for byte a seed must never verify.
* ``request``: a KMS request body (the first byte picks the operation) through the edge's JSON
  decoder and botocore-model validation, then, when valid, rendered into its audit event
  (redaction included); only ``AwsError`` may leave.
* ``ciphertext``: a blob (the first byte says whether the encryption context is given) through
  ``parse_blob`` and the software key store's decryption; only ``MalformedBlob`` or
  ``CryptoError`` may leave, and only the seed blob with its own context may decrypt.
* ``policy``: a key, identity or trust policy (the first byte picks the kind) through
  ``parse_policy``, then, when valid, evaluated for two callers; only ``PolicyError`` may leave.
* ``verify``: edits to a real signed trail (rows changed, deleted, duplicated; bytes flipped),
  then ``verify_trail``; it must not raise, and it must not pass a trail whose verified content
  changed (but for the documented limit: the tail cut together with its digests and the head).
"""

from __future__ import annotations

import contextlib
import posixpath
import shutil
import sqlite3
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["strongroom"]):
    import msgspec

    from strongroom.api.app import _decoder
    from strongroom.api.shapes import ServiceShapes
    from strongroom.api.sigv4 import Verifier
    from strongroom.audit.events import event_from_call
    from strongroom.audit.sink import AuditedCall
    from strongroom.audit.store import NewEntry, TrailStore, open_trail_engine
    from strongroom.audit.stored import read_digests, read_entries, read_head
    from strongroom.audit.verify import verify_trail
    from strongroom.crypto.audit_sign import TrailSigner
    from strongroom.crypto.symmetric import CryptoError
    from strongroom.errors import AwsError
    from strongroom.iam.policy.document import parse_policy
    from strongroom.iam.policy.errors import PolicyError
    from strongroom.iam.policy.evaluate import evaluate
    from strongroom.iam.policy.facts import Caller, RequestFacts
    from strongroom.kms.domain import ciphertext
    from strongroom.kms.keystores.software import SoftwareKeyStore

from atheris_seeds import (
    ACCOUNT,
    KEY_ARN,
    MATERIAL,
    blob_seeds,
    policy_seeds,
    request_seeds,
    sigv4_seeds,
)

__all__ = ["TARGETS", "Target"]

Target = tuple[Callable[[bytes], None], Callable[[], list[bytes]]]


class Violation(Exception):
    """An oracle's verdict: the target answered wrongly without raising."""


# -- sigv4 ---------------------------------------------------------------------------------
_SECRET = "fuzz/secret/access/key/0123456789abcdefghij"
_verifier = Verifier(
    lambda akid: _SECRET if akid == "AKIAFUZZ0000EXAMPLE0" else None, frozenset({"kms"})
)
_signed: set[tuple[object, ...]] = set()  # the seeds' signed content
_NOW = time.time()  # every seed is signed at this time, and every input verified at it


def _split_request(data: bytes) -> tuple[str, str, bytes, list[tuple[bytes, bytes]], bytes]:
    head, _, body = data.partition(b"\n\n")
    first, *lines = head.split(b"\n")
    method, _, target = first.decode("latin-1").partition(" ")
    path, _, query = target.partition("?")
    headers = []
    for line in lines:
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    return method, path, query.encode("latin-1"), headers, body


def _signed_content(data: bytes) -> tuple[object, ...]:
    """What a request's signature covers, read by plain rules apart from the verifier's: the
    method, the path (dot segments removed), the query's pairs decoded (bar the signature), the
    values of the headers it signs with inner white space runs made one space, and the body."""
    method, path, query, headers, body = _split_request(data)
    values = dict(headers)
    signature = values.get(b"authorization", b"").rpartition(b"Signature=")[2]
    pairs = sorted(
        (urllib.parse.unquote_to_bytes(k), urllib.parse.unquote_to_bytes(v))
        for k, _, v in (piece.partition(b"=") for piece in query.split(b"&") if piece)
    )
    names = dict(pairs).get(b"X-Amz-SignedHeaders", b"")
    if signature:
        names = values[b"authorization"].partition(b"SignedHeaders=")[2].partition(b",")[0]
    else:
        signature = dict(pairs).get(b"X-Amz-Signature", b"")
    signed = tuple(
        (name, tuple(sorted(b" ".join(v.split()) for n, v in headers if n == name)))
        for name in (n.strip() for n in names.split(b";"))
    )
    unsigned_pairs = tuple(pair for pair in pairs if pair[0] != b"X-Amz-Signature")
    # SigV4 signs the path with its dot segments removed (RFC 3986), as botocore does
    plain = posixpath.normpath(urllib.parse.unquote(path) or "/").lstrip("/")
    return signature, method, plain, unsigned_pairs, signed, body


def sigv4(data: bytes) -> None:
    method, path, query, headers, body = _split_request(data)
    try:
        _verifier.verify(method, path, query, headers, body, _NOW)
    except AwsError:
        return
    if _signed_content(data) not in _signed:
        raise Violation("a request verified whose signed content no seed has")


def _sigv4_seeds() -> list[bytes]:
    seeds = sigv4_seeds(_SECRET, _NOW)
    _signed.update(_signed_content(seed) for seed in seeds)
    return seeds


# -- request ------------------------------------------------------------------------------
_kms = ServiceShapes.load("kms")
_operations = sorted(_kms.operations)


def request(data: bytes) -> None:
    if not data:
        return
    operation = _operations[data[0] % len(_operations)]
    raw = data[1:]
    try:
        try:
            decoded = _decoder.decode(raw) if raw else {}
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return  # the edge's SerializationException
        params = _kms.parse_input(operation, decoded)
    except AwsError:
        return
    call = AuditedCall("req-1", 1_763_942_400.0, "127.0.0.1", [], "kms", operation)
    call.request = params
    event, _ = event_from_call(call, None, ACCOUNT)
    msgspec.json.encode(event)


def _request_seeds() -> list[bytes]:
    return [bytes((_operations.index(op),)) + body for op, body in request_seeds()]


# -- ciphertext ---------------------------------------------------------------------------
_CONTEXT = {"purpose": "fuzz", "tenant": "t-1"}
_genuine: set[bytes] = set()


def cipher(data: bytes) -> None:
    if not data:
        return
    context = _CONTEXT if data[0] & 1 else None
    try:
        head = ciphertext.parse_blob(data[1:])
        if head.kind != ciphertext.KIND_SOFTWARE:
            return  # a cluster's blob opens only inside its HSMs
        SoftwareKeyStore.decrypt(head, MATERIAL, ciphertext.canonical_context(context))
    except (ciphertext.MalformedBlob, CryptoError):
        return
    if data not in _genuine:
        raise Violation("a blob that is no seed decrypted")


def _blob_seeds() -> list[bytes]:
    seeds = []
    for with_context in (False, True):
        blob = SoftwareKeyStore.encrypt(
            KEY_ARN, 1, MATERIAL, b"fuzz plaintext", ciphertext.canonical_context(
                _CONTEXT if with_context else None)
        )  # fmt: skip
        seeds.append(bytes((int(with_context),)) + blob)
    _genuine.update(seeds)
    return seeds + blob_seeds()


# -- policy -------------------------------------------------------------------------------
_KINDS: tuple[Any, ...] = ("resource", "identity", "trust")
_callers = (
    Caller(f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT, "User", username="alice", userid="AID1"),
    Caller(
        f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1", ACCOUNT, "AssumedRole",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/app", principal_tags=(("team", "blue"),),
    ),
)  # fmt: skip
_context = {
    "kms:EncryptionContext:purpose": ("fuzz",), "kms:EncryptionContextKeys": ("purpose", "x"),
    "aws:SourceIp": ("10.1.2.3",), "aws:CurrentTime": ("2026-11-24T10:00:00Z",),
    "kms:ViaService": ("s3.us-east-1.amazonaws.com",), "aws:SecureTransport": ("true",),
}  # fmt: skip


def policy(data: bytes) -> None:
    if not data:
        return
    kind = _KINDS[data[0] % 3]
    try:
        text = data[1:].decode("utf-8")
        parsed = parse_policy(text, kind=kind)
    except (UnicodeDecodeError, PolicyError):
        return
    for caller in _callers:
        facts = RequestFacts("kms:Decrypt", KEY_ARN, caller, _context)
        evaluate(parsed, facts, match_principal=kind != "identity")


def _policy_seeds() -> list[bytes]:
    return [bytes((_KINDS.index(kind),)) + text.encode() for kind, text in policy_seeds()]


# -- verify -------------------------------------------------------------------------------
_EVENT_COLUMNS = ("seq", "kind", "event_time", "username", "resource_name", "body", "hash")
_TABLES = {
    "audit_events": _EVENT_COLUMNS,
    "audit_digests": ("seq", "first_seq", "last_seq", "body", "signature", "hash"),
    "audit_head": ("seq", "hash", "digest_seq", "digest_hash"),
}


class _Trail:
    """A real signed trail in a temporary SQLite file, restored before every input."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="strongroom-fuzz-trail-"))
        signer = TrailSigner(bytes(range(32)))
        self.verifier = signer.verifier()
        store = TrailStore(open_trail_engine(self.dir, None), signer)
        store.ensure_head()
        store.begin_epoch()
        for batch in range(4):
            entries = []
            for i in range(3):
                call = AuditedCall(f"r{batch}-{i}", 1_763_942_400.0 + batch, "127.0.0.1", [])
                call.service, call.operation = "kms", ("Encrypt", "ListKeys", "Decrypt")[i]
                call.request = {"KeyId": KEY_ARN} if i != 1 else {}
                event, columns = event_from_call(call, None, ACCOUNT)
                entries.append(NewEntry("event", msgspec.json.encode(event), columns))
            store.append(entries)
        store.close()
        self.store = TrailStore(store.engine)
        self.conn = sqlite3.connect(self.dir / "audit.db", isolation_level=None)
        self.pristine = sqlite3.connect(":memory:")
        self.conn.backup(self.pristine)
        self.content = self.read()
        self.rows = {
            t: self.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in _TABLES
        }

    def read(self) -> tuple[list[Any], list[Any], Any]:
        engine = self.store.engine
        return list(read_entries(engine)), read_digests(engine), read_head(engine)

    def restore(self) -> None:
        self.pristine.backup(self.conn)

    def close(self) -> None:
        self.conn.close()
        self.store.engine.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)


_trail: _Trail | None = None


def _edit(trail: _Trail, fdp: Any) -> None:
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        with contextlib.suppress(sqlite3.Error):  # a constraint refused it (a seq taken)
            _edit_once(trail, fdp)


def _edit_once(trail: _Trail, fdp: Any) -> None:
    table = ("audit_events", "audit_digests", "audit_head")[fdp.ConsumeIntInRange(0, 2)]
    columns = _TABLES[table]
    column = columns[fdp.ConsumeIntInRange(0, len(columns) - 1)]
    rowid = fdp.ConsumeIntInRange(1, trail.rows[table])
    action = fdp.ConsumeIntInRange(0, 4)
    where = f"FROM {table} WHERE rowid = ?"
    with_row = (rowid,)
    if action == 0:  # a new value, of any type
        choice = fdp.ConsumeIntInRange(0, 2)
        value: Any = (
            fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 80)) if choice == 0
            else fdp.ConsumeInt(8) if choice == 1 else fdp.ConsumeUnicodeNoSurrogates(40)
        )  # fmt: skip
        trail.conn.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (value, rowid))
    elif action == 1:
        trail.conn.execute(f"DELETE {where}", with_row)
    elif action == 2:  # flip one byte of the value as stored
        row = trail.conn.execute(f"SELECT CAST({column} AS BLOB) {where}", with_row).fetchone()
        if row and row[0]:
            raw = bytearray(row[0])
            raw[fdp.ConsumeIntInRange(0, len(raw) - 1)] ^= fdp.ConsumeIntInRange(1, 255)
            sql = f"UPDATE {table} SET {column} = CAST(? AS TEXT) WHERE rowid = ?"
            trail.conn.execute(sql, (bytes(raw), rowid))
    elif action == 3:  # a copy of the row under another number
        names = ", ".join(c for c in _all_columns(trail, table) if c != "seq")
        trail.conn.execute(
            f"INSERT OR IGNORE INTO {table} (seq, {names}) SELECT ?, {names} {where}",
            (fdp.ConsumeIntInRange(0, 30), rowid),
        )
    else:  # a whole digest re-signed is out of reach without the key; renumber instead
        trail.conn.execute(
            f"UPDATE OR IGNORE {table} SET seq = ? WHERE rowid = ?",
            (fdp.ConsumeIntInRange(0, 30), rowid),
        )


_columns_cache: dict[str, list[str]] = {}


def _all_columns(trail: _Trail, table: str) -> list[str]:
    if table not in _columns_cache:
        _columns_cache[table] = [r[1] for r in trail.conn.execute(f"PRAGMA table_info({table})")]
    return _columns_cache[table]


def _consistent_cut(before: tuple[list[Any], list[Any], Any], after: tuple[Any, ...]) -> bool:
    """The documented limit: entries and digests both cut to a prefix, the head rewritten."""
    entries, digests, _ = after
    return (
        entries == before[0][: len(entries)]
        and digests == before[1][: len(digests)]
        and len(entries) < len(before[0])
    )


def verify(data: bytes) -> None:
    global _trail
    if _trail is None:
        _trail = _Trail()
    trail = _trail
    trail.restore()
    _edit(trail, atheris.FuzzedDataProvider(data))
    report = verify_trail(trail.store, trail.verifier)
    if report.ok:
        after = trail.read()
        if after != trail.content and not _consistent_cut(trail.content, after):
            raise Violation("verify passed an altered trail")


def _verify_seeds() -> list[bytes]:
    return [bytes(range(n, n + 24)) for n in range(0, 200, 25)]


@atheris.instrument_func  # type: ignore[untyped-decorator]
def selftest(data: bytes) -> None:
    """A planted bug, for checking the harness itself finds and keeps a failing input."""
    if data.startswith(b"planted") and data[7:11] == b" bug":
        raise Violation("the self-test's planted bug")


TARGETS: dict[str, Target] = {
    "selftest": (selftest, lambda: [b"planted bu_"]),
    "sigv4": (sigv4, _sigv4_seeds),
    "request": (request, _request_seeds),
    "ciphertext": (cipher, _blob_seeds),
    "policy": (policy, _policy_seeds),
    "verify": (verify, _verify_seeds),
}
