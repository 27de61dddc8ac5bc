"""``strongroom audit verify`` detects each kind of tampering and names the first bad record."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from strongroom.audit.chain import entry_hash
from tests.audit.conftest import audit_cli, ingest_journal
from tests.conftest import running_server


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A stopped server's data directory with a few dozen trail records: one signed digest
    for each call (an ingestion of the writer's journal after each)."""
    data = tmp_path_factory.mktemp("tamper") / "data"
    with running_server(data) as server:
        kms = server.client()
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        ingest_journal(data)
        for i in range(12):
            kms.encrypt(KeyId=key, Plaintext=b"x" * (i + 1))
            ingest_journal(data)
        kms.list_keys()
    yield data


def _tampered(pristine: Path, tmp_path: Path, change: Callable[[sqlite3.Connection], None]) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(pristine, copy)
    with sqlite3.connect(copy / "audit.db") as conn:
        change(conn)
    return copy


def _verify(data: Path) -> tuple[int, str]:
    proc = audit_cli(data, "verify")
    return proc.returncode, proc.stdout + proc.stderr


def test_untouched_trail_verifies(pristine: Path, tmp_path: Path) -> None:
    code, out = _verify(_tampered(pristine, tmp_path, lambda conn: None))
    assert code == 0 and out.startswith("OK: 15 records"), out


def _alter_byte(conn: sqlite3.Connection) -> None:
    (body,) = conn.execute("SELECT body FROM audit_events WHERE seq=5").fetchone()
    conn.execute(
        "UPDATE audit_events SET body=? WHERE seq=5", (body.replace("us-east-1", "us-east-2", 1),)
    )


def _alter_and_rehash(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT seq, kind, body FROM audit_events ORDER BY seq").fetchall()
    chain = "0" * 64
    for seq, kind, stored in rows:
        # a field no indexed copy repeats (readOnly is one: that is caught as its column)
        body = stored.replace('"127.0.0.1"', '"10.0.0.1"') if seq == 7 else stored
        assert seq != 7 or body != stored
        chain = entry_hash(chain, seq, kind, body.encode())
        conn.execute("UPDATE audit_events SET body=?, hash=? WHERE seq=?", (body, chain, seq))


def _delete(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM audit_events WHERE seq=6")


def _reorder(conn: sqlite3.Connection) -> None:
    a = conn.execute("SELECT body, hash FROM audit_events WHERE seq=8").fetchone()
    b = conn.execute("SELECT body, hash FROM audit_events WHERE seq=9").fetchone()
    conn.execute("UPDATE audit_events SET body=?, hash=? WHERE seq=8", b)
    conn.execute("UPDATE audit_events SET body=?, hash=? WHERE seq=9", a)


def _insert(conn: sqlite3.Connection) -> None:
    last = conn.execute("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    seq, kind, body = last[0] + 1, last[1], last[11]
    digest = entry_hash(last[12], seq, kind, body.encode())
    conn.execute(
        "INSERT INTO audit_events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (seq, *last[1:11], body, digest),
    )


def _truncate(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM audit_events WHERE seq >= 14")


def _remove_digest(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM audit_digests WHERE seq = 4")


def _remove_last_digest(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM audit_digests WHERE seq = (SELECT MAX(seq) FROM audit_digests)")


@pytest.mark.parametrize(
    ("change", "first_bad", "words"),
    [
        (_alter_byte, 5, "altered"),
        (_alter_and_rehash, 7, "do not match digest"),
        (_delete, 6, "missing"),
        (_reorder, 8, "altered"),
        (_insert, 16, "covered by no signed digest"),
        (_truncate, 14, "truncated"),
        (_remove_digest, 5, "digest 4 is missing"),  # digest 1 covers CreateKey's 2 records
        (_remove_last_digest, 15, "covered by no signed digest"),
    ],
)
def test_tampering_is_detected(
    pristine: Path,
    tmp_path: Path,
    change: Callable[[sqlite3.Connection], None],
    first_bad: int,
    words: str,
) -> None:
    code, out = _verify(_tampered(pristine, tmp_path, change))
    assert code == 1, out
    assert f"first bad record {first_bad}:" in out and words in out, out


def test_verify_with_the_exported_public_key(pristine: Path, tmp_path: Path) -> None:
    pem = audit_cli(pristine, "public-key").stdout
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    copy = _tampered(pristine, tmp_path, lambda conn: None)
    (copy / "audit-signing.key").unlink()
    (tmp_path / "trail.pem").write_text(pem)
    proc = audit_cli(copy, "verify", "--public-key", str(tmp_path / "trail.pem"))
    assert proc.returncode == 0, proc.stderr
    other = tmp_path / "other"
    other.mkdir()
    wrong = audit_cli(other, "public-key").stdout
    (tmp_path / "wrong.pem").write_text(wrong)
    proc = audit_cli(copy, "verify", "--public-key", str(tmp_path / "wrong.pem"))
    assert proc.returncode == 1 and "bad signature" in proc.stderr


def test_a_digest_kept_elsewhere_catches_a_consistent_cut(pristine: Path, tmp_path: Path) -> None:
    """The tail cut with its digests and the head row rewritten passes verify alone; the last
    digest verify printed before, passed back with --expect-digest, does not."""
    code, out = _verify(_tampered(pristine, tmp_path / "before", lambda conn: None))
    anchor = out.split("last digest ", 1)[1].split()[0]
    assert code == 0 and anchor.startswith("14:"), out

    def cut(conn: sqlite3.Connection) -> None:  # back to the end of digest 13
        ((last, digest),) = conn.execute("SELECT last_seq, hash FROM audit_digests WHERE seq=13")
        conn.execute("DELETE FROM audit_events WHERE seq > ?", (last,))
        conn.execute("DELETE FROM audit_digests WHERE seq > 13")
        ((hashed,),) = conn.execute("SELECT hash FROM audit_events WHERE seq = ?", (last,))
        conn.execute("UPDATE audit_head SET seq=?, hash=?, digest_seq=13, digest_hash=?",
                     (last, hashed, digest))  # fmt: skip

    data = _tampered(pristine, tmp_path / "after", cut)
    assert _verify(data)[0] == 0  # consistent: verify alone cannot tell
    kept = audit_cli(data, "verify", "--expect-digest", anchor)
    assert kept.returncode == 1 and "digest 14 kept elsewhere is missing" in kept.stderr
    assert audit_cli(data, "verify", "--expect-digest", "13:00").returncode == 1
    assert audit_cli(data, "verify", "--expect-digest", "x").returncode == 2


# Found by scripts/fuzz_atheris.py (target "verify"): SQLite keeps any value in a BIGINT key
# or a REAL column, and verify stopped with a traceback on what it could not read as a number
# or as UTF-8 text. Each is a record that fails its checks now, not the verifier.
def _digest_seq_as_text(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE audit_digests SET seq = ? WHERE seq = 4", ("\x06",))


def _record_seq_not_utf8(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE audit_events SET seq = CAST(? AS TEXT) WHERE seq = 9", (b"\xff9",))


def _event_time_not_utf8(conn: sqlite3.Connection) -> None:
    conn.execute(
        "UPDATE audit_events SET event_time = CAST(? AS TEXT) WHERE seq = 10", (b"17639\xff2402",)
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (_digest_seq_as_text, "digest 4 is missing"),
        (_record_seq_not_utf8, "record 9 is missing"),
        (_event_time_not_utf8, "record 10's indexed fields differ"),
    ],
)
def test_unreadable_numbers_and_text_fail_their_record_not_the_verifier(
    pristine: Path, tmp_path: Path, change: Callable[[sqlite3.Connection], None], words: str
) -> None:
    code, out = _verify(_tampered(pristine, tmp_path, change))
    assert code == 1 and "Traceback" not in out, out
    assert words in out, out
