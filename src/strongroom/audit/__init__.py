"""The audit trail (the CloudTrail role): hash-chained, signed, fail-closed records of every
API call, LookupEvents over them, and the HSMs' own audit logs collected beside them.

Module map: :mod:`.sink` (the edge's interface), :mod:`.redact` (allow-lists), :mod:`.events`
(CloudTrail event shape), :mod:`.chain` (hashes and digests), :mod:`.store` (SQL),
:mod:`.writer` (the group-commit writer process ``serve`` runs) with :mod:`.client` and
:mod:`.writer_process`, :mod:`.trail` (the same in a thread, for embedded use),
:mod:`.verify`, :mod:`.lookup` (LookupEvents), :mod:`.hsm_logs` (HSM audit log collection).
"""
