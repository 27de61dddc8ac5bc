"""Server-side key synchronisation (cloudhsm.md §3.4): the control plane, as each HSM's appliance
user, periodically copies every token key that some ACTIVE HSM of a cluster holds to each ACTIVE
HSM that lacks it, as masked objects (``clone_export`` on a holder, ``clone_import`` on the
others). Client-side replication copies a new key at once; this repairs what it could not reach,
such as a key made by a client configured with a single HSM. Keys only: users are not
re-synchronised, as on AWS.

Unlike AWS's, these copies are recorded in the HSMs' audit logs (``CN_EXTRACT_MASKED_OBJECT_USER``
and ``CN_INSERT_MASKED_OBJECT_USER`` by ``app_user``). As on AWS, a key deleted while one HSM
could not be reached is copied back from that HSM once it answers again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from strongroom.cloudhsm.domain import Cluster, Hsm
from strongroom.hsm.client import HsmClient

if TYPE_CHECKING:
    from strongroom.cloudhsm.control import ClusterControl

__all__ = ["KEY_SYNC_SECONDS", "KeySync"]

log = logging.getLogger("strongroom.cloudhsm")

#: seconds between two synchronisation passes over one cluster
KEY_SYNC_SECONDS = 5.0


class KeySync:
    """One cluster's synchronisation pass at most every :data:`KEY_SYNC_SECONDS`."""

    def __init__(
        self,
        control: ClusterControl,
        seconds: float = KEY_SYNC_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._control = control
        self._seconds = seconds
        self._clock = clock
        self._last: dict[str, float] = {}

    def step(self, cluster: Cluster) -> int:
        """Synchronise ``cluster`` if its pass is due; the number of key copies made."""
        now = self._clock()
        if now - self._last.get(cluster.cluster_id, -self._seconds) < self._seconds:
            return 0
        self._last[cluster.cluster_id] = now
        members = self._control.live_members(cluster.cluster_id)
        anchor = self._control.anchor(cluster)
        if len(members) < 2 or anchor is None:
            return 0
        with contextlib.ExitStack() as stack:
            sessions: dict[str, HsmClient] = {}
            holdings: dict[str, set[int]] = {}
            for hsm in members:
                try:
                    client = stack.enter_context(self._control.nodes.session(hsm, anchor))
                    holdings[hsm.hsm_id] = {
                        k.ref for k in client.find_keys() if k.attributes.get("token", True)
                    }
                except Exception:  # an HSM that does not answer now: the next pass
                    log.warning("key sync: HSM %s did not answer", hsm.hsm_id)
                    continue
                sessions[hsm.hsm_id] = client
            return self._copy(cluster, members, sessions, holdings)

    def _copy(
        self,
        cluster: Cluster,
        members: list[Hsm],
        sessions: dict[str, HsmClient],
        holdings: dict[str, set[int]],
    ) -> int:
        copies = 0
        every = set().union(*holdings.values()) if holdings else set()
        for target in members:
            missing = every - holdings.get(target.hsm_id, every)
            for source_id, held in holdings.items():
                refs = sorted(missing & held)
                if not refs or source_id == target.hsm_id:
                    continue
                try:
                    blob = sessions[source_id].clone_export(refs)
                    sessions[target.hsm_id].clone_import(blob)
                except Exception:
                    log.warning(
                        "key sync: copying %d keys from %s to %s failed",
                        len(refs), source_id, target.hsm_id,
                    )  # fmt: skip
                    continue
                missing -= set(refs)
                copies += len(refs)
                log.info(
                    "key sync: %d keys copied from %s to %s (cluster %s)",
                    len(refs), source_id, target.hsm_id, cluster.cluster_id,
                )  # fmt: skip
        return copies
