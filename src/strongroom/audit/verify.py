"""``strongroom audit verify``: check the whole trail and name the first bad record.

Checks, in order: every digest's signature (with the trail's public key), the digest chain
(gapless numbers, each naming its predecessor's hash, ranges that tile the trail without gaps),
then every entry (gapless seq numbers, the recomputed hash chain against the stored hashes and
against each digest's signed ``lastHash``, its indexed copies against its body), that the
signed digests cover exactly the entries present (an entry past the last digest was inserted,
or its digest removed; a digest reaching past the last entry means the tail was truncated),
and that the head row names the last entry and digest.

Rows are read as stored (:mod:`.stored`): a byte that leaves a value unreadable fails that
record's checks, never the verifier. What no check here can see: the tail cut off together
with its digests and the head row rewritten to match. Keep a recent digest's hash elsewhere
and compare (``strongroom audit verify`` prints the last one).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from strongroom.audit.chain import GENESIS, digest_hash, entry_hash
from strongroom.audit.store import TrailStore
from strongroom.audit.stored import DigestRow, EntryRow, indexed_columns, read_head
from strongroom.crypto.audit_sign import TrailVerifier

__all__ = ["Report", "verify_trail"]


@dataclass(frozen=True, slots=True)
class Report:
    entries: int
    digests: int
    problem: str | None = None
    first_bad_seq: int | None = None
    #: the last digest's number and hash, to keep elsewhere and compare next time
    last_digest: tuple[int, str] | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _check_digests(digests: list[DigestRow], key: TrailVerifier) -> tuple[str, int] | None:
    prev_hash, prev_last = GENESIS, 0
    epochs: dict[str, int] = {}  # each node's last epoch ("": digests that name no node)
    for expected, digest in enumerate(digests, start=1):
        where = f"digest {expected}"
        if digest.seq != expected:
            return f"{where} is missing (found digest {digest.seq} next)", prev_last + 1
        try:
            signature = bytes.fromhex(digest.signature)
            good = key.verify(digest.body, signature)
            fields = msgspec.json.decode(digest.body) if good else {}
        except (ValueError, msgspec.DecodeError):
            good = False
        if not good:
            return f"{where} has a bad signature", prev_last + 1
        if digest_hash(digest.body, digest.signature) != digest.hash:
            return f"{where}: its stored hash does not match its contents", fields["firstSeq"]
        if fields["prevDigestHash"] != prev_hash:
            return f"{where} does not follow digest {expected - 1}", fields["firstSeq"]
        if (fields["firstSeq"], fields["lastSeq"]) != (digest.first_seq, digest.last_seq):
            return f"{where}: its range columns differ from its signed range", fields["firstSeq"]
        if fields.get("digestSeq") != digest.seq:
            return f"{where}: its number differs from its signed number", fields["firstSeq"]
        if digest.first_seq != prev_last + 1:
            return f"{where} does not start where digest {expected - 1} ended", prev_last + 1
        epoch, node = fields.get("epoch", 0), fields.get("node", "")
        if not isinstance(node, str) or not isinstance(epoch, int):
            return f"{where}: its epoch or node is malformed", fields["firstSeq"]
        if epoch < (last_epoch := epochs.get(node, 0)):
            # signed by a writer of the node started before the one that signed its last digest
            of = f" of {node}" if node else ""
            return f"{where} goes back to epoch {epoch} from {last_epoch}{of}", fields["firstSeq"]
        prev_hash, prev_last, epochs[node] = digest.hash, digest.last_seq, epoch
    return None


def _check_entry(entry: EntryRow, chain: str) -> str | None:
    """What is wrong with one entry that follows ``chain``, if anything."""
    try:
        altered = entry_hash(chain, entry.seq, entry.kind, entry.body) != entry.hash
    except UnicodeEncodeError:  # a kind that is not ASCII: no writer made it
        altered = True
    if altered:
        return f"record {entry.seq} was altered"
    if entry.columns and indexed_columns(entry.body) != entry.columns:
        return f"record {entry.seq}'s indexed fields differ from the record (altered)"
    return None


def verify_trail(store: TrailStore, key: TrailVerifier) -> Report:
    """Check everything; the report names the first bad record (by seq) if any."""
    digests = store.digests()
    bad = _check_digests(digests, key)
    if bad is not None:
        return Report(0, len(digests), bad[0], bad[1])
    signed = {d.last_seq: (d, msgspec.json.decode(d.body)["lastHash"]) for d in digests}
    covered = digests[-1].last_seq if digests else 0
    last = (digests[-1].seq, digests[-1].hash) if digests else None
    chain, seq, count = GENESIS, 0, 0

    def report(problem: str, first_bad: int) -> Report:
        return Report(count, len(digests), problem, first_bad, last)

    for entry in store.entries():
        count += 1
        if entry.seq != seq + 1:
            what = "missing" if entry.seq > seq + 1 else "out of order"
            return report(f"record {seq + 1} is {what}", seq + 1)
        seq = entry.seq
        problem = _check_entry(entry, chain)
        if problem is not None:
            return report(problem, seq)
        chain = entry.hash
        if seq in signed and signed[seq][1] != chain:
            digest = signed[seq][0]
            return report(
                f"records {digest.first_seq}..{seq} do not match digest {digest.seq} "
                "(altered and re-hashed)",
                digest.first_seq,
            )
    if seq < covered:
        return report(
            f"the trail is truncated: it ends at record {seq} but digests cover up to {covered}",
            seq + 1,
        )
    if seq > covered:
        return report(
            f"records from {covered + 1} are covered by no signed digest "
            "(inserted, or a digest was removed)",
            covered + 1,
        )
    head = read_head(store.engine)
    expected = (seq, chain, last[0] if last else 0, last[1] if last else GENESIS)
    if head is None and seq:
        return report("the head row is missing", seq + 1)
    if head is not None and (head.seq, head.hash, head.digest_seq, head.digest_hash) != expected:
        return report("the head row does not name the last record and digest", seq + 1)
    return Report(count, len(digests), last_digest=last)
