"""``strongroom audit verify``: check the whole trail and name the first bad record.

Checks, in order: every digest's signature (with the trail's public key), the digest chain
(gapless numbers, each naming its predecessor's hash, ranges that tile the trail without gaps),
then every entry (gapless seq numbers, the recomputed hash chain against the stored hashes and
against each digest's signed ``lastHash``), and finally that the signed digests cover exactly
the entries present: an entry past the last digest was inserted (or its digest removed), a
digest reaching past the last entry means the tail was truncated.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from strongroom.audit.chain import GENESIS, digest_hash, entry_hash
from strongroom.audit.store import DigestRow, TrailStore
from strongroom.crypto.audit_sign import TrailVerifier

__all__ = ["Report", "verify_trail"]


@dataclass(frozen=True, slots=True)
class Report:
    entries: int
    digests: int
    problem: str | None = None
    first_bad_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _check_digests(digests: list[DigestRow], key: TrailVerifier) -> tuple[str, int] | None:
    prev_hash, prev_last = GENESIS, 0
    for expected, digest in enumerate(digests, start=1):
        where = f"digest {expected}"
        if digest.seq != expected:
            return f"{where} is missing (found digest {digest.seq} next)", prev_last + 1
        if not key.verify(digest.body, bytes.fromhex(digest.signature)):
            return f"{where} has a bad signature", digest.first_seq
        fields = msgspec.json.decode(digest.body)
        if digest_hash(digest.body, digest.signature) != digest.hash:
            return f"{where}: its stored hash does not match its contents", digest.first_seq
        if fields["prevDigestHash"] != prev_hash:
            return f"{where} does not follow digest {expected - 1}", digest.first_seq
        if (fields["firstSeq"], fields["lastSeq"]) != (digest.first_seq, digest.last_seq):
            return f"{where}: its range columns differ from its signed range", digest.first_seq
        if digest.first_seq != prev_last + 1:
            return f"{where} does not start where digest {expected - 1} ended", prev_last + 1
        prev_hash, prev_last = digest.hash, digest.last_seq
    return None


def verify_trail(store: TrailStore, key: TrailVerifier) -> Report:
    """Check everything; the report names the first bad record (by seq) if any."""
    digests = store.digests()
    bad = _check_digests(digests, key)
    if bad is not None:
        return Report(0, len(digests), bad[0], bad[1])
    signed = {d.last_seq: (d, msgspec.json.decode(d.body)["lastHash"]) for d in digests}
    covered = digests[-1].last_seq if digests else 0
    chain, seq, count = GENESIS, 0, 0
    for entry in store.entries():
        count += 1
        if entry.seq != seq + 1:
            what = "missing" if entry.seq > seq + 1 else "out of order"
            return Report(count, len(digests), f"record {seq + 1} is {what}", seq + 1)
        seq = entry.seq
        chain = entry_hash(chain, seq, entry.kind, entry.body)
        if chain != entry.hash:
            return Report(count, len(digests), f"record {seq} was altered", seq)
        if seq in signed and signed[seq][1] != chain:
            digest = signed[seq][0]
            return Report(
                count,
                len(digests),
                f"records {digest.first_seq}..{seq} do not match digest {digest.seq} "
                "(altered and re-hashed)",
                digest.first_seq,
            )
    if seq < covered:
        return Report(
            count,
            len(digests),
            f"the trail is truncated: it ends at record {seq} but digests cover up to {covered}",
            seq + 1,
        )
    if seq > covered:
        return Report(
            count,
            len(digests),
            f"records from {covered + 1} are covered by no signed digest "
            "(inserted, or a digest was removed)",
            covered + 1,
        )
    return Report(count, len(digests))
