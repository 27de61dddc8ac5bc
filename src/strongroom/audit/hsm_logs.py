"""HSM audit logs collected into the trail's database: one stream per (cluster, HSM).

Each node keeps its own sealed, sequence-numbered audit log (:mod:`strongroom.hsm.audit`). The
collector asks a node for the records after the last one it holds (``audit(start_seq, limit)``
of the HSM client) and stores them under (cluster id, HSM id, seq). A stream stays gapless: a
batch is stored only if it starts right after the stored tail and has no gaps itself;
otherwise the collector stops for that HSM and reports the gap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import msgspec
from sqlalchemy import Engine, func, insert, select

from strongroom.hsm.audit import AuditRecord
from strongroom.storage.audit_schema import audit_hsm_logs as hl

__all__ = ["HsmLogGap", "HsmSource", "collect_hsm_logs", "read_hsm_log", "stored_tail"]

log = logging.getLogger("strongroom.audit.hsm")
_encoder = msgspec.json.Encoder()

#: (start_seq, limit) -> the node's verified records from start_seq on
Fetch = Callable[[int, int], Sequence[AuditRecord]]


@dataclass(frozen=True, slots=True)
class HsmSource:
    cluster_id: str
    hsm_id: str
    fetch: Fetch


class HsmLogGap(RuntimeError):
    """A node answered records that do not continue the stored stream."""


def stored_tail(engine: Engine, cluster_id: str, hsm_id: str) -> int:
    """The highest stored seq of one HSM's stream (-1 if none: node sequences start at 0)."""
    with engine.connect() as conn:
        value = conn.execute(
            select(func.max(hl.c.seq)).where(hl.c.cluster_id == cluster_id, hl.c.hsm_id == hsm_id)
        ).scalar()
    return -1 if value is None else int(value)


def _body(cluster_id: str, hsm_id: str, rec: AuditRecord) -> str:
    return _encoder.encode(
        {
            "clusterId": cluster_id,
            "hsmId": hsm_id,
            "seq": rec.seq,
            "reboot": rec.reboot,
            "time": rec.time_us / 1e6,
            "session": rec.session,
            "user": rec.user,
            "userType": rec.user_type,
            "opcode": rec.opcode,
            "response": rec.response,
            "code": rec.code,
            "logType": rec.log_type,
            "keys": rec.keys,
            "detail": rec.detail,
        }
    ).decode()


def _store(engine: Engine, source: HsmSource, tail: int, records: Sequence[AuditRecord]) -> int:
    expected = tail + 1
    rows = []
    for rec in records:
        if rec.seq != expected:
            raise HsmLogGap(
                f"HSM {source.hsm_id}: expected audit record {expected}, the node sent {rec.seq}"
            )
        rows.append(
            {
                "cluster_id": source.cluster_id,
                "hsm_id": source.hsm_id,
                "seq": rec.seq,
                "event_time": rec.time_us / 1e6,
                "collected_at": time.time(),
                "body": _body(source.cluster_id, source.hsm_id, rec),
            }
        )
        expected += 1
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(hl), rows)
    return len(rows)


def collect_hsm_logs(engine: Engine, sources: Sequence[HsmSource], limit: int = 1000) -> int:
    """One collection pass over every HSM; returns how many records were stored."""
    stored = 0
    for source in sources:
        try:
            while True:
                tail = stored_tail(engine, source.cluster_id, source.hsm_id)
                records = source.fetch(tail + 1, limit)
                count = _store(engine, source, tail, records)
                stored += count
                if count < limit:
                    break
        except Exception as exc:  # one unreachable HSM must not stop the others
            log.warning("collecting the audit log of HSM %s failed: %s", source.hsm_id, exc)
    return stored


def read_hsm_log(engine: Engine, cluster_id: str, hsm_id: str, from_seq: int = 0) -> Iterator[str]:
    """One HSM's stored records (JSON), in sequence order."""
    after = from_seq - 1
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(hl.c.seq, hl.c.body)
                .where(hl.c.cluster_id == cluster_id, hl.c.hsm_id == hsm_id, hl.c.seq > after)
                .order_by(hl.c.seq)
                .limit(1000)
            ).all()
        yield from (r.body for r in rows)
        if len(rows) < 1000:
            return
        after = rows[-1].seq
