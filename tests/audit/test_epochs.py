"""Reliability figure A4 for serve's trail: every start of the trail's writer begins a new epoch
(one more than any before, recorded in ``audit_epochs``), each signed digest carries the epoch of
the writer that signed it, and ``audit verify`` refuses a digest whose epoch goes back."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import msgspec
from botocore.exceptions import ClientError

from strongroom.audit.verify import verify_trail
from strongroom.crypto.audit_sign import load_or_create_signer
from tests.audit.conftest import audit_cli
from tests.audit.test_journal import _entries, _store
from tests.conftest import running_server

#: ingest at once, so that each writer signs digests of its own
FAST_INGEST = {"STRONGROOM_TRAIL_INGEST_SECONDS": "0.05"}


def _epochs(data: Path) -> tuple[list[int], list[int]]:
    """(the recorded epochs, each digest's signed epoch), in order."""
    with sqlite3.connect(data / "audit.db") as db:
        epochs = [r[0] for r in db.execute("SELECT epoch FROM audit_epochs ORDER BY epoch")]
        bodies = [r[0] for r in db.execute("SELECT body FROM audit_digests ORDER BY seq")]
    return epochs, [msgspec.json.decode(b).get("epoch", 0) for b in bodies]


def _encrypt_until_answered(kms: object, key: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            kms.encrypt(KeyId=key, Plaintext=b"x")  # type: ignore[attr-defined]
            return
        except ClientError as exc:  # the writer being replaced: 503 until it serves
            assert exc.response["Error"]["Code"] == "ServiceUnavailableException"
            assert time.monotonic() < deadline, "the trail writer was not replaced"
            time.sleep(0.2)


def test_each_writer_start_is_a_new_epoch_signed_into_its_digests(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = ""
    for round_ in range(3):  # serve started three times; in the last, its writer killed once
        with running_server(data, env=FAST_INGEST) as server:
            kms = server.client()
            key = key or kms.create_key()["KeyMetadata"]["KeyId"]
            _encrypt_until_answered(kms, key)
            time.sleep(0.3)  # ingested and signed by this writer
            if round_ == 2:
                os.kill(int((data / "audit-writer.pid").read_text()), signal.SIGKILL)
                _encrypt_until_answered(kms, key)
                time.sleep(0.3)
    epochs, signed = _epochs(data)
    assert epochs == [1, 2, 3, 4]
    assert signed == sorted(signed) and signed[0] == 1 and signed[-1] == 4, signed
    assert {1, 2, 3, 4} <= set(signed)  # every writer signed what it ingested
    proc = audit_cli(data, "verify")
    assert proc.returncode == 0 and proc.stdout.startswith("OK: "), (proc.stdout, proc.stderr)


def test_a_digest_whose_epoch_goes_back_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.begin_epoch() == 1
    store.append(_entries(3))
    assert store.begin_epoch() == 2
    store.append(_entries(3, 3))
    reader = _store(tmp_path)  # a reader catching up from the journal signs the latest epoch
    reader.append(_entries(1, 6))
    key = load_or_create_signer(tmp_path).verifier()
    assert verify_trail(store, key).ok
    assert [msgspec.json.decode(d.body)["epoch"] for d in store.digests()] == [1, 2, 2]
    store.epoch = 1  # a writer of an older epoch signing after a newer one (a rollback)
    store.append(_entries(2, 7))
    report = verify_trail(store, key)
    assert report.problem == "digest 4 goes back to epoch 1 from 2"
    assert report.first_bad_seq == 8


def test_each_node_s_epochs_are_checked_on_their_own(tmp_path: Path) -> None:
    """Several nodes' writers append to one trail (PostgreSQL): node b's epochs may be lower
    than node a's, but neither node's may go back."""
    a, b = _store(tmp_path), _store(tmp_path)
    a.node, b.node = "node-aaaaaaaaaaaa", "node-bbbbbbbbbbbb"
    assert a.begin_epoch() == 1
    assert b.begin_epoch() == 2
    a.append(_entries(2))  # epoch 1 of a, after nothing
    b.append(_entries(2, 2))  # epoch 2 of b
    a.append(_entries(2, 4))  # epoch 1 of a again: lower than b's, but a's own did not go back
    key = load_or_create_signer(tmp_path).verifier()
    report = verify_trail(a, key)
    assert report.ok, report.problem
    signed = [msgspec.json.decode(d.body) for d in a.digests()]
    assert [(d["node"], d["epoch"]) for d in signed] == [
        ("node-aaaaaaaaaaaa", 1), ("node-bbbbbbbbbbbb", 2), ("node-aaaaaaaaaaaa", 1)
    ]  # fmt: skip
    assert b.begin_epoch() == 3
    b.append(_entries(1, 6))
    b.epoch = 2  # a writer of b's older start signing after its newer one
    b.append(_entries(1, 7))
    report = verify_trail(a, key)
    assert report.problem == "digest 5 goes back to epoch 2 from 3 of node-bbbbbbbbbbbb"
    assert report.first_bad_seq == 8
