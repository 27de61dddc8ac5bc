"""scripts/tamper_trail.py in short (reliability figure A2): every byte of one signed batch of
a real trail altered, a few hundred random bytes over all of it, every record deleted, swapped,
duplicated and cut off (as stored and re-chained), every digest removed or replaced by a twin
signed with the trail key, wrong public keys; ``verify_trail`` must detect each one, and name
the record altered where it can. Each check of verify is needed by at least one test here."""

from __future__ import annotations

import collections
import random
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from strongroom.audit.verify import verify_trail
from strongroom.crypto.audit_sign import load_or_create_signer
from tests.audit.conftest import ingest_journal
from tests.conftest import running_server

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from tamper_trail import Bench, random_mutations, segment_mutations, structural_mutations
from tamper_trail_mutations import Mutation

#: the indexed copies of a record's fields: LookupEvents filters on them, and answers with
#: Username, AccessKeyId and Resources from them; no hash covers them, and verify compares
#: them with the record's body (the time to the second, the body's precision)
INDEXED = frozenset(
    {"event_id", "event_time", "event_name", "event_source", "read_only", "username",
     "access_key_id", "resource_type", "resource_name"}
)  # fmt: skip
SEGMENT = 4  # a digest of one record: a failed Encrypt's (1: CreateKey's intent and event)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """A stopped server's trail: one signed digest per call (the journal ingested after each),
    successes and errors."""
    data = tmp_path_factory.mktemp("tamper-exhaustive") / "data"
    with running_server(data) as server:
        kms = server.client()
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        ingest_journal(data)
        for n in range(8):
            if n % 3 == 2:
                with pytest.raises(ClientError):
                    kms.encrypt(KeyId="alias/does-not-exist", Plaintext=b"x")
            else:
                kms.encrypt(KeyId=key, Plaintext=b"x" * (n + 1))
            ingest_journal(data)
        kms.list_keys()
    signer = load_or_create_signer(data)
    yield Bench(data / "audit.db", signer.verifier(), signer)


@pytest.fixture(scope="module")
def swept(bench: Bench) -> list[tuple[Mutation, str]]:
    """Every byte of digest SEGMENT and of the record it covers, each altered, verified."""
    return [(m, bench.run(m)[0]) for m in segment_mutations(bench, SEGMENT, random.Random(1))]


def _run(bench: Bench, plan: Iterable[Mutation]) -> collections.Counter[tuple[str, str]]:
    return _count((m, bench.run(m)[0]) for m in plan)


def _count(results: Iterable[tuple[Mutation, str]]) -> collections.Counter[tuple[str, str]]:
    """(column or op, outcome) -> count; ``raised ...`` outcomes as ``raised``."""
    return collections.Counter((m.column or m.op, outcome.split()[0]) for m, outcome in results)


def test_the_untouched_trail_verifies(bench: Bench) -> None:
    outcome, report = bench.run(Mutation("none", "none"))  # "ACCEPTED": verify passes it
    assert outcome == "ACCEPTED" and report is not None and report.entries == bench.last
    _, first, last = bench.digests[SEGMENT - 1]
    assert len(bench.digests) >= 9 and first == last


def test_every_byte_of_one_signed_batch(swept: list[tuple[Mutation, str]]) -> None:
    """The digest and its record, every byte of every value the chain or the signature
    covers: never accepted; the record's seq, kind, body and hash name the record unless
    verify stops with an error (a value that is not UTF-8, hex or ASCII)."""
    results = [(m, out) for m, out in swept if m.column not in INDEXED]
    assert len(results) > 1000
    outcomes = _count(results)
    assert sum(n for (_, out), n in outcomes.items() if out == "ACCEPTED") == 0, outcomes
    for column in ("seq", "kind", "body", "hash", "signature", "last_seq"):
        assert outcomes[(column, "named")] > 0, outcomes
    named_only = {"kind", "body", "hash"}
    assert not [key for key in outcomes if key[0] in named_only and key[1] == "elsewhere"]


def test_the_indexed_columns_are_verified(swept: list[tuple[Mutation, str]]) -> None:
    outcomes = _count((m, out) for m, out in swept if m.column in INDEXED)
    assert {column for column, _ in outcomes} == INDEXED - {"resource_type", "resource_name"}
    assert sum(n for (_, out), n in outcomes.items() if out == "ACCEPTED") == 0, outcomes
    assert not [key for key in outcomes if key[1] in ("raised", "elsewhere")], outcomes


def test_every_altered_byte_is_named(swept: list[tuple[Mutation, str]]) -> None:
    outcomes = _count((m, out) for m, out in swept if m.column not in INDEXED)
    assert not [key for key in outcomes if key[1] == "raised"], outcomes


def test_random_bytes_over_the_whole_trail(bench: Bench) -> None:
    outcomes = _run(bench, random_mutations(bench, 300, random.Random(7)))
    accepted = {column for (column, out) in outcomes if out == "ACCEPTED"}
    assert accepted <= INDEXED, outcomes
    detected = sum(n for (column, out), n in outcomes.items() if out in ("named", "raised"))
    assert detected >= 150, outcomes


def test_deletions_swaps_insertions_truncations_digests_and_wrong_keys(bench: Bench) -> None:
    plan = structural_mutations(bench, 5)
    outcomes = _run(bench, plan)
    # a digest removed and the later ones renumbered: verify names the next digest's first
    # record, not the removed one's
    assert {out for (op, out) in outcomes if op != "drop-renumber"} == {"named"}, outcomes
    assert {out for (op, out) in outcomes if op == "drop-renumber"} <= {"named", "elsewhere"}
    ops = {op for (op, _) in outcomes}
    assert ops >= {"delete", "delete-rechain", "swap", "swap-rechain", "insert", "append",
                   "insert-rechain", "truncate", "drop-digest", "drop-renumber", "twin",
                   "wrong-key"}  # fmt: skip


def test_a_tail_cut_with_its_digests_is_detected(bench: Bench) -> None:
    """By the head row; with the head rewritten too, only a digest kept elsewhere tells."""
    seq, _, last = bench.digests[-2]
    outcome, report = bench.run(Mutation("cut", "cut", seq=seq, pos=last))
    assert outcome == "elsewhere" and report is not None and "head row" in str(report.problem)
    assert bench.run(Mutation("cut", "cut-head", seq=seq, pos=last))[0] == "ACCEPTED"
    kept = {n for (n,) in bench.work.execute("SELECT seq FROM audit_digests")}
    assert bench.digests[-1][0] not in kept  # what verify --expect-digest looks for


@pytest.mark.parametrize("stored", [1e300, float("-inf"), "not a time", b"\xff\xfe"])
def test_an_indexed_time_no_clock_can_show_names_its_record(bench: Bench, stored: object) -> None:
    """A time past what gmtime takes, or not a number at all: verify names the record."""
    bench.pristine.backup(bench.work)
    bench.work.execute("UPDATE audit_events SET event_time = ? WHERE seq = 3", (stored,))
    report = verify_trail(bench.store, bench.key)
    assert not report.ok and report.first_bad_seq == 3, report
