"""The composition root: configuration in, a running service out.

Everything is built here from :class:`Config` and passed explicitly; there are no module-level
singletons. ``build`` gives the pieces (used by tests in-process); ``serve`` runs them under
uvicorn with the background scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import Engine

from strongroom.api._http_limits import MAX_CONNECTIONS
from strongroom.api.app import App
from strongroom.api.sigv4 import Verifier
from strongroom.audit.client import TrailClient
from strongroom.audit.journal import catch_up
from strongroom.audit.key_usage import KeyUse, last_use
from strongroom.audit.lookup_service import cloudtrail_service
from strongroom.audit.sink import TrailSink
from strongroom.audit.store import TrailStore, open_trail_engine
from strongroom.audit.trail import Trail
from strongroom.clock import Clock, OffsetFileClock, SystemClock
from strongroom.cloudhsm.binding import cloudhsm_service
from strongroom.cloudhsm.control import ClusterControl
from strongroom.crypto.audit_sign import load_or_create_signer
from strongroom.iam.authorize import Authorizer
from strongroom.iam.identities import IdentityStore
from strongroom.iam.roles import RoleStore
from strongroom.kms.api.binding import kms_service
from strongroom.kms.authz import KmsAccessControl
from strongroom.kms.keystores.cloudhsm import CloudHsmKeyStores
from strongroom.kms.keystores.software import SoftwareKeyStore
from strongroom.kms.ops.imports import expire_due_imports
from strongroom.kms.ops.keys import delete_due_keys
from strongroom.kms.ops.multiregion import delete_due_replicas
from strongroom.kms.ops.rotation import rotate_due_keys
from strongroom.kms.service import KeyUsageReader, Kms
from strongroom.metrics.serve_metrics import ServeMetrics
from strongroom.monitoring.loop import Monitoring
from strongroom.node import check_secrets, load_or_create_node_id
from strongroom.rootkey import load_or_create_root_key
from strongroom.storage.engine import ChangeMonitor, open_engine, sqlite_url
from strongroom.storage.migrations import apply_migrations
from strongroom.storage.pg_deadline import statement_deadline
from strongroom.sts.service import sts_service

__all__ = [
    "CONFIG_ENV",
    "MAX_CONNECTIONS",
    "Config",
    "DataDirLocked",
    "Runtime",
    "Scheduler",
    "build",
    "config_to_env",
    "lock_data_dir",
    "worker_app",
]

log = logging.getLogger("strongroom.server")


@dataclass(frozen=True)
class Config:
    """What ``strongroom serve`` is told."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 4599
    account_id: str = "111122223333"
    database_url: str | None = None
    scheduler_interval: float = 60.0
    clock_offset_file: str | None = None
    workers: int = 1
    insecure_open_access: bool = False
    #: benchmarks only: no audit trail at all (the trail-off baseline of bench/audit_bench.py)
    insecure_no_audit_trail: bool = False
    #: alarm definitions (JSON/YAML; see strongroom.monitoring.alarm_config)
    alarms_config: str | None = None
    #: the abstract socket name of the trail writer process ``serve`` runs (None: this
    #: process appends to the trail itself, from a thread; embedded use and tests)
    trail_socket: str | None = None
    #: HTTPS: the server's certificate chain and its private key (PEM files); None: plain HTTP
    tls_cert: str | None = None
    tls_key: str | None = None
    #: open connections each serving process keeps; one more is answered 503 and closed
    max_connections: int = MAX_CONNECTIONS

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or sqlite_url(str(self.data_dir / "strongroom.db"))


class DataDirLocked(RuntimeError):
    """Another ``serve`` holds this data directory."""


class Scheduler:
    """Background passes inside ``serve``: due key deletions (later: rotations, HSM health)."""

    def __init__(self, kms: Kms, interval: float, lock_path: Path | None = None) -> None:
        self._kms = kms
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._lock_path = lock_path
        self._lock: IO[str] | None = None

    def _leader(self) -> bool:
        """With several worker processes, only the one holding the scheduler lock runs passes;
        if it dies, the lock is released and another worker takes over at its next pass."""
        if self._lock_path is None or self._lock is not None:
            return True
        handle = open(self._lock_path, "a+", encoding="ascii")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock = handle
        return True

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def run_once(self) -> None:
        deleted = delete_due_keys(self._kms)
        if deleted:
            log.info("deleted %d key(s) whose waiting period ended", len(deleted))
        rotated = rotate_due_keys(self._kms)
        if rotated:
            log.info("rotated %d key(s)", len(rotated))
        replicas = delete_due_replicas(self._kms)
        if replicas:
            log.info("deleted %d replica key(s) whose waiting period ended", len(replicas))
        expired = expire_due_imports(self._kms)
        if expired:
            log.info("deleted the expired imported material of %d key(s)", len(expired))

    async def _run(self) -> None:
        while True:
            try:
                if self._leader():
                    self.run_once()
            except Exception:
                log.exception("scheduler pass failed")
            await asyncio.sleep(self._interval)


@dataclass(frozen=True)
class Runtime:
    """The built service."""

    config: Config
    app: App
    kms: Kms
    identities: IdentityStore
    roles: RoleStore
    scheduler: Scheduler
    clock: Clock
    monitor: ChangeMonitor
    trail: TrailSink | None = None

    def close(self) -> None:
        """Release the database connections (the runtime is not used afterwards)."""
        if self.trail is not None:
            self.trail.close()
        self.monitor.close()
        self.kms.engine.dispose()


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold an exclusive lock on the data directory for this process's lifetime."""
    handle = open(data_dir / "serve.lock", "a+", encoding="ascii")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DataDirLocked(
            f"another strongroom serve (pid {holder}) is using the data directory {data_dir}; "
            "stop it first or give this one its own --data-dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def build(config: Config, clock: Clock | None = None) -> Runtime:
    """Create the data directory, root key and schema as needed, and wire the service."""
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    domain_clock: Clock = clock or (
        OffsetFileClock(config.clock_offset_file) if config.clock_offset_file else SystemClock()
    )
    root = load_or_create_root_key(config.data_dir)
    url = config.effective_database_url
    migrating = open_engine(url)  # no deadline: a migration may rewrite a large table
    apply_migrations(migrating, domain_clock.now)
    migrating.dispose()
    deadline = statement_deadline()
    engine = open_engine(url, deadline)
    # nodes sharing a database share these: one given others refuses to start (SecretMismatch)
    signer, node = load_or_create_signer(config.data_dir), load_or_create_node_id(config.data_dir)
    check_secrets(engine, {"root-key": root.check_value(), "trail-signing-key": signer.fingerprint})
    monitor = ChangeMonitor(url)
    identities = IdentityStore(engine, root, domain_clock, monitor)
    roles = RoleStore(engine, root, domain_clock, identities, monitor)
    authz = Authorizer(roles)
    kms = Kms(engine, SoftwareKeyStore(root), domain_clock, monitor)
    secure = config.tls_cert is not None  # aws:SecureTransport in every service's policies
    if not config.insecure_open_access:
        kms.authorizer = KmsAccessControl(authz, kms, secure_transport=secure)
    else:
        log.warning("ACCESS CONTROL IS OFF: every authenticated caller may use every key")
    verifier = Verifier(
        identities.lookup_secret, frozenset({"kms", "sts", "cloudtrail", "cloudhsm"})
    )
    scheduler = Scheduler(kms, config.scheduler_interval, config.data_dir / "scheduler.lock")
    control = ClusterControl(engine, config.data_dir, domain_clock.now)
    kms.cloudhsm = CloudHsmKeyStores(control, root)
    trail_engine = open_trail_engine(config.data_dir, config.database_url, deadline)
    trail = _trail(config, identities, TrailStore(trail_engine, signer, node))
    journal_reader = _journal_reader(config, TrailStore(trail_engine, signer, node))
    kms.key_usage = _key_usage(trail_engine, journal_reader)
    services = [
        kms_service(kms, identities),
        cloudtrail_service(
            trail_engine, identities, authz, config.account_id, journal_reader, secure
        ),
        cloudhsm_service(
            control, identities, None if config.insecure_open_access else authz, secure
        ),
    ]
    known = {s.signing_name: s.shapes.operations for s in services}
    metrics = ServeMetrics(engine, {**known, "sts": frozenset({"AssumeRole", "GetCallerIdentity"})})
    monitoring = Monitoring.build(
        config.data_dir, config.alarms_config, config.scheduler_interval, control,
        trail_engine, trail, metrics, config.account_id,
    )  # fmt: skip
    app = App(
        services,
        verifier,
        time.time,
        query_services=[sts_service(identities, roles, authz, secure)],
        on_startup=_chain(scheduler.start, control.astart, monitoring.start),
        on_shutdown=_chain(monitoring.stop, scheduler.stop, control.astop),
        before_request=monitor.refresh,
        audit=trail,
        observe=metrics.observe,
        metrics_page=metrics.page,
    )
    return Runtime(config, app, kms, identities, roles, scheduler, domain_clock, monitor, trail)


def _chain(*steps: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """Run lifespan hooks in order."""

    async def run() -> None:
        for step in steps:
            await step()

    return run


def _trail(config: Config, identities: IdentityStore, store: TrailStore) -> TrailSink | None:
    """The audit trail every call goes through (see :func:`open_trail_engine`): through the
    writer process ``serve`` started, or appended from a thread of this process."""
    if config.insecure_no_audit_trail:
        log.warning("THE AUDIT TRAIL IS OFF: calls are not recorded (benchmark baseline only)")
        return None
    if config.trail_socket is not None:
        return TrailClient(
            config.trail_socket,
            config.account_id,
            identities.principal,
            prompt=config.workers < usable_cpus(),
        )
    store.ensure_head()
    return Trail(store, config.account_id, identities.principal)


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _journal_reader(config: Config, store: TrailStore) -> Callable[[], object] | None:
    """With the writer process and SQLite, what readers run first: ingest the writer's
    journal (:mod:`strongroom.audit.journal`) so that every answered call is visible."""
    if config.trail_socket is None or config.database_url is not None:
        return None
    return lambda: catch_up(store, config.data_dir)


def _key_usage(engine: Engine, catch_up: Callable[[], object] | None) -> KeyUsageReader:
    """GetKeyLastUsage's reader: the trail's record of a key's last use, once every answered
    call is in the trail's tables."""

    def read(key_arn: str) -> tuple[KeyUse | None, float | None]:
        if catch_up is not None:
            catch_up()
        return last_use(engine, key_arn)

    return read


CONFIG_ENV = "STRONGROOM_SERVE_CONFIG"


def config_to_env(config: Config) -> str:
    """Serialise a config for worker processes (see :func:`worker_app`)."""
    fields = dataclasses.asdict(config)
    fields["data_dir"] = str(config.data_dir)
    return json.dumps(fields)


def worker_app() -> App:
    """uvicorn's app factory for ``serve --workers N``: each worker process builds its own
    runtime from the configuration the parent put in the environment."""
    fields = json.loads(os.environ[CONFIG_ENV])
    fields["data_dir"] = Path(fields["data_dir"])
    return build(Config(**fields)).app
