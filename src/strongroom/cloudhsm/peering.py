"""Each ACTIVE HSM of a cluster is told the addresses of the others (``cluster_peers``, as its
appliance user), so that a login guess checked on one counts on all of them (the cluster-wide
lockout, :mod:`strongroom.hsm.lockout`). Told again whenever the members change: an HSM added,
deleted or replaced, and once after the control plane starts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from strongroom.cloudhsm.domain import Cluster

if TYPE_CHECKING:
    from strongroom.cloudhsm.control import ClusterControl

__all__ = ["PeerSync"]

log = logging.getLogger("strongroom.cloudhsm")

#: seconds before an HSM that could not be told is tried again
RETRY_SECONDS = 5.0


class PeerSync:
    """What each HSM was last told, and telling it again when that changes."""

    def __init__(
        self, control: ClusterControl, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._control = control
        self._clock = clock
        self._told: dict[str, tuple[str, ...]] = {}
        self._failed: dict[str, float] = {}

    def step(self, cluster: Cluster) -> int:
        """Tell each live member of ``cluster`` whose peers changed; how many were told."""
        members = self._control.live_members(cluster.cluster_id)
        anchor = self._control.anchor(cluster)
        if anchor is None:
            return 0
        addresses = {h.hsm_id: h.address for h in members}
        told = 0
        for hsm in members:
            peers = tuple(sorted(a for i, a in addresses.items() if i != hsm.hsm_id))
            if self._told.get(hsm.hsm_id) == peers:
                continue
            if self._clock() < self._failed.get(hsm.hsm_id, 0.0):
                continue
            try:
                with self._control.nodes.session(hsm, anchor) as client:
                    client.raw_call("cluster_peers", {"peers": list(peers)})
            except Exception:  # an HSM that does not answer now: again after a while
                log.warning("HSM %s could not be told its peers", hsm.hsm_id)
                self._failed[hsm.hsm_id] = self._clock() + RETRY_SECONDS
                continue
            self._failed.pop(hsm.hsm_id, None)
            self._told[hsm.hsm_id] = peers
            told += 1
        return told
