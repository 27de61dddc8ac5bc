"""The cluster control loop: drives HSMs and clusters through their states.

Request handlers (:mod:`strongroom.cloudhsm.ops`) only record intent (an HSM in
CREATE_IN_PROGRESS, a cluster in INITIALIZE_IN_PROGRESS); :meth:`ClusterControl.reconcile`,
run every fraction of a second by a background thread, does the work: starts node processes,
collects the first HSM's CSR, installs the signed certificate, hands the cluster state to new
HSMs (cloning users and keys), notices activation, and replaces HSMs whose process died — a
new HSM in the same AZ with a new id, cloned from a live member, as CloudHSM does.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine

from strongroom.cloudhsm import domain as d
from strongroom.cloudhsm.backups import BackupKeeper
from strongroom.cloudhsm.domain import Cluster, Hsm
from strongroom.cloudhsm.keysync import KeySync
from strongroom.cloudhsm.nodes import NodeLink
from strongroom.cloudhsm.peering import PeerSync
from strongroom.cloudhsm.supervisor import NodeSupervisor
from strongroom.node import agree, load_or_create_node_id
from strongroom.storage import cloudhsm_repo as repo
from strongroom.storage.engine import write_transaction

__all__ = ["ClusterControl"]

log = logging.getLogger("strongroom.cloudhsm")


class ClusterControl:
    """Clusters and HSMs: storage access for the handlers, and the reconcile loop."""

    def __init__(self, engine: Engine, data_dir: Path, now: Callable[[], float]) -> None:
        self.engine = engine
        self.now = now
        self.supervisor = NodeSupervisor(data_dir)
        self.nodes = NodeLink(self.supervisor, data_dir / "hsms" / "anchors")
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        #: seconds between passes while something is in hand (a cluster or a backup to tend)
        self.interval = 0.2
        #: seconds between passes while there is nothing: five passes a second of three
        #: queries each took ~2 % of a busy worker's CPU; meanwhile a write through
        #: :meth:`write` in this process starts a pass at once
        self.idle_interval = 1.0
        self._idle = False
        self._lock_file: IO[str] | None = None
        self._host: bool | None = None
        #: more work for the leader's loop (the KMS side's pending key-store connects)
        self.passes: list[Callable[[], None]] = []
        self.backups = BackupKeeper(self)
        self.keysync = KeySync(self)
        self.peers = PeerSync(self)

    # --- storage -----------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.lock, write_transaction(self.engine) as conn:
            yield conn
        if self._idle:
            self._wake.set()

    def cluster(self, cluster_id: str) -> Cluster | None:
        with self.engine.connect() as conn:
            doc = repo.get_cluster(conn, cluster_id)
        return None if doc is None else Cluster.from_document(doc)

    def clusters(self, account_id: str | None = None) -> list[Cluster]:
        with self.engine.connect() as conn:
            return [Cluster.from_document(x) for x in repo.list_clusters(conn, account_id)]

    def hsms(self, cluster_id: str | None = None) -> list[Hsm]:
        with self.engine.connect() as conn:
            return [Hsm(**x) for x in repo.hsms_of(conn, cluster_id)]

    def save_cluster(self, cluster: Cluster) -> None:
        with self.write() as conn:
            repo.put_cluster(conn, cluster.document())

    def update_cluster(self, cluster_id: str, expect: str | None = None, **changes: object) -> None:
        """Read-modify-write one cluster in a single transaction (no lost updates). With
        ``expect``, only while the cluster is still in that state: a state change the loop
        decided on an older read must not undo a request's (DeleteCluster, ModifyCluster)."""
        with self.write() as conn:
            doc = repo.get_cluster(conn, cluster_id)
            if doc is not None and (expect is None or doc.get("state") == expect):
                doc.update(changes)
                repo.put_cluster(conn, doc)

    def save_hsm(self, hsm: Hsm) -> None:
        with self.write() as conn:
            repo.put_hsm(conn, hsm.__dict__.copy())

    def anchor(self, cluster: Cluster) -> Path | None:
        if not cluster.trust_anchor:
            return None
        return self.nodes.anchor_file(cluster.cluster_id, cluster.trust_anchor)

    def live_members(self, cluster_id: str) -> list[Hsm]:
        """ACTIVE HSMs whose process runs (what clients and KMS talk to)."""
        return [
            h for h in self.hsms(cluster_id) if h.state == d.ACTIVE and self.supervisor.alive(h.pid)
        ]

    # --- the background loop -----------------------------------------------------------------

    async def astart(self) -> None:
        """Lifespan hook: :meth:`start` off the event loop."""
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        """Lifespan hook: :meth:`stop` off the event loop."""
        await asyncio.to_thread(self.stop)

    def _leader(self) -> bool:
        """With several serve workers only one runs the nodes and the loop; with several
        serve nodes sharing a database, only the first node that ran them (the HSMs' data is
        in its data directory): the others serve the API from the database alone."""
        if self._lock_file is not None:
            return True
        if not self.runs_hsms():
            return False
        handle = open(self.supervisor.root.parent / "cloudhsm.lock", "a+", encoding="ascii")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock_file = handle
        return True

    def runs_hsms(self) -> bool:
        """Whether this node runs the HSMs: the first node sharing the database that asked."""
        if self._host is None:
            node = load_or_create_node_id(self.supervisor.root.parent)
            host = agree(self.engine, "cloudhsm-host", node)
            self._host = host == node
            if not self._host:
                log.info("the CloudHSM clusters' HSMs run on %s, not on this node (%s)", host, node)
        return self._host

    def start(self) -> None:
        """Restart the nodes of every HSM (after a serve restart) and start the loop."""
        if not self._leader():
            return
        for hsm in self.hsms():
            if hsm.state in (d.ACTIVE, d.CREATE_IN_PROGRESS) and not self.supervisor.alive(hsm.pid):
                hsm.pid = self.supervisor.start(
                    hsm.hsm_id, hsm.az, hsm.eni_ip, hsm.port, hsm.hsm_type
                )
                self.save_hsm(hsm)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="cloudhsm-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and every node process (they restart with ``start``)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.supervisor.stop_all()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _loop(self) -> None:
        interval = self.interval
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                busy = self.reconcile()
            except Exception:
                log.exception("cluster control pass failed")
                busy = True
            self._idle = not busy
            interval = self.interval if busy else self.idle_interval

    def reconcile(self) -> bool:
        """One pass over every cluster, then the registered extra passes; whether anything
        was in hand (a cluster that is not deleted, or a backup still changing state)."""
        busy = False
        for cluster in self.clusters():
            if cluster.state == d.DELETED:
                continue
            busy = True
            try:
                for hsm in self.hsms(cluster.cluster_id):
                    self._hsm_step(cluster, hsm)
                self._cluster_step(cluster)
            except Exception:  # one cluster's failure must not hold up every other one
                log.exception("cluster %s: its control step failed", cluster.cluster_id)
        busy = self.backups.sweep() or busy
        for extra in self.passes:
            extra()
        return busy

    # --- HSM steps ---------------------------------------------------------------------------

    def _hsm_step(self, cluster: Cluster, hsm: Hsm) -> None:
        if hsm.state == d.CREATE_IN_PROGRESS:
            self._bring_up(cluster, hsm)
        elif hsm.state == d.ACTIVE and not self.supervisor.alive(hsm.pid):
            self._replace(cluster, hsm)
        elif hsm.state == d.DELETE_IN_PROGRESS:
            self.supervisor.stop(hsm.pid)
            self.supervisor.remove(hsm.hsm_id)
            with self.write() as conn:
                repo.delete_hsm(conn, hsm.hsm_id)
            if cluster.state == d.ACTIVE:
                self.update_cluster(cluster.cluster_id, backup_due="HSM removed")

    def _bring_up(self, cluster: Cluster, hsm: Hsm) -> None:
        if not self.supervisor.alive(hsm.pid):
            hsm.pid = self.supervisor.start(hsm.hsm_id, hsm.az, hsm.eni_ip, hsm.port, hsm.hsm_type)
            self.save_hsm(hsm)
            return
        if not self.supervisor.listening(hsm.eni_ip, hsm.port):
            return
        anchor = self.anchor(cluster)
        if anchor is not None:
            members = [m for m in self.live_members(cluster.cluster_id) if m.joined]
            if members:
                self.nodes.join(members[0], hsm, anchor, cluster.trust_anchor)
            elif not self.backups.restore(cluster, hsm):
                return  # wait for a member to clone from
            hsm.joined = True
            if cluster.state == d.ACTIVE:
                self.update_cluster(cluster.cluster_id, backup_due="HSM added")
        elif not cluster.csr:
            csr, cert = self.nodes.csr(hsm)
            self.update_cluster(
                cluster.cluster_id, csr=csr, hsm_certificate=cert, csr_hsm_id=hsm.hsm_id
            )
        hsm.state = d.ACTIVE
        self.save_hsm(hsm)
        log.info("HSM %s of %s is ACTIVE", hsm.hsm_id, cluster.cluster_id)

    def _replace(self, cluster: Cluster, dead: Hsm) -> None:
        """A dead HSM is replaced by a new one in the same AZ (new id), cloned from a member."""
        log.warning("HSM %s of %s died; replacing it", dead.hsm_id, cluster.cluster_id)
        self.supervisor.stop(dead.pid)
        self.supervisor.remove(dead.hsm_id)
        new = new_hsm(cluster, dead.az, dead.subnet_id, self.now())
        new.replacing = dead.hsm_id
        with self.write() as conn:
            repo.delete_hsm(conn, dead.hsm_id)
            repo.put_hsm(conn, new.__dict__.copy())
            if cluster.csr_hsm_id == dead.hsm_id and not cluster.trust_anchor:
                fresh = repo.get_cluster(conn, cluster.cluster_id)
                if fresh is not None:  # the cluster key is gone: a new CSR must be signed
                    fresh.update(csr="", hsm_certificate="", csr_hsm_id="")
                    repo.put_cluster(conn, fresh)

    # --- cluster steps -----------------------------------------------------------------------

    def _cluster_step(self, cluster: Cluster) -> None:
        if cluster.state == d.CREATE_IN_PROGRESS:
            # from a backup: ACTIVE at once; its first HSM is restored from the backup
            after = d.ACTIVE if cluster.source_backup_id else d.UNINITIALIZED
            self.update_cluster(cluster.cluster_id, expect=cluster.state, state=after)
        elif cluster.state == d.ACTIVE:
            self.backups.step(cluster)
            self.peers.step(cluster)
            self.keysync.step(cluster)
        elif cluster.state in (d.MODIFY_IN_PROGRESS, d.ROLLBACK_IN_PROGRESS):
            self._migrate(cluster)
        elif cluster.state == d.INITIALIZE_IN_PROGRESS:
            self._initialize(cluster)
        elif cluster.state == d.INITIALIZED:
            members = self.live_members(cluster.cluster_id)
            anchor = self.anchor(cluster)
            if members and anchor and self.nodes.info(members[0], anchor).get("activated"):
                self.update_cluster(
                    cluster.cluster_id,
                    expect=cluster.state,
                    state=d.ACTIVE,
                    state_message="",
                    backup_due="activation",
                )
        elif cluster.state == d.DELETE_IN_PROGRESS:
            self.update_cluster(
                cluster.cluster_id,
                expect=cluster.state,
                state=d.DELETED,
                state_message="The cluster has been deleted.",
            )

    def _migrate(self, cluster: Cluster) -> None:
        """An HSM type change: a backup first, then each HSM of the old type replaced, one at
        a time, by a new one (new id, same AZ, cloned from a member); then ACTIVE."""
        if cluster.backup_due:
            self.backups.take(cluster, cluster.backup_due)
            return
        hsms = self.hsms(cluster.cluster_id)
        if any(h.state != d.ACTIVE or not self.supervisor.alive(h.pid) for h in hsms):
            return  # a replacement is still coming up
        old = [h for h in hsms if h.hsm_type != cluster.hsm_type]
        if old:
            log.info("HSM %s of %s: replaced by a %s", old[0].hsm_id, cluster.cluster_id,
                     cluster.hsm_type)  # fmt: skip
            self._replace(cluster, old[0])
            return
        self.update_cluster(
            cluster.cluster_id, expect=cluster.state, state=d.ACTIVE, state_message=""
        )
        log.info("cluster %s now runs %s HSMs", cluster.cluster_id, cluster.hsm_type)

    def _initialize(self, cluster: Cluster) -> None:
        hsms = {h.hsm_id: h for h in self.live_members(cluster.cluster_id)}
        first = hsms.get(cluster.csr_hsm_id)
        anchor = self.anchor(cluster)
        if first is None or anchor is None:
            return
        self.nodes.install(first, cluster.cluster_certificate, cluster.trust_anchor)
        first.joined = True
        self.save_hsm(first)
        for other in hsms.values():
            if other.hsm_id != first.hsm_id and not other.joined:
                self.nodes.join(first, other, anchor, cluster.trust_anchor)
                other.joined = True
                self.save_hsm(other)
        self.update_cluster(
            cluster.cluster_id,
            expect=cluster.state,
            state=d.INITIALIZED,
            state_message="Cluster is initialized. Activate it to use it.",
        )


def new_hsm(cluster: Cluster, az: str, subnet_id: str, now: float, ip: str = "") -> Hsm:
    """A new HSM record (CREATE_IN_PROGRESS) on ``ip``, else a free address of its subnet."""
    ip = ip or NodeSupervisor.free_address(d.NODE_PORT, d.SUBNET_CIDRS[subnet_id])
    return Hsm(
        hsm_id=d.new_id("hsm"),
        cluster_id=cluster.cluster_id,
        az=az,
        subnet_id=subnet_id,
        hsm_type=cluster.hsm_type,
        state=d.CREATE_IN_PROGRESS,
        eni_id="eni-" + time.time_ns().to_bytes(8, "big").hex()[-12:],
        eni_ip=ip,
        created=now,
    )
