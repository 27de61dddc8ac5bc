"""The CloudHSM key store: KMS keys whose material lives, non-extractable, in a cluster.

One :class:`CloudHsmKeyStores` per process. ConnectCustomKeyStore only records CONNECTING; the
cluster control loop (leader process) runs :meth:`CloudHsmKeyStores.connect_pending`, which
logs in as ``kmsuser``, rotates its password to one only KMS knows (stored wrapped by the root
key) and records CONNECTED, or FAILED with a ConnectionErrorCode. Every process (each
``serve --workers`` worker, and after a restart) then *attaches*: logs in with the stored
password, without rotating it. A sweeper thread drops connections whose store is no longer
CONNECTED (logging ``kmsuser`` out) and re-attaches when the cluster's live HSMs change.

AES-256 keys are found by their label, the KMS key ARN. Blobs carry kind
:data:`~strongroom.kms.domain.ciphertext.KIND_CLOUDHSM`; their body is the HSM's AES-GCM output
(IV || ciphertext || tag) with the blob header and encryption context as AAD. KMS request
handlers are synchronous, so the HSM client runs on an event loop of its own
(:class:`~strongroom.hsm.bridge.Bridge`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from strongroom.cloudhsm import domain as hsmd
from strongroom.cloudhsm.control import ClusterControl
from strongroom.crypto import rng, symmetric
from strongroom.errors import AwsError
from strongroom.hsm._replicate import AVAILABILITY_MESSAGE
from strongroom.hsm.bridge import Bridge
from strongroom.hsm.client import (
    AsyncHsmClient,
    ErrorCode,
    HsmClientError,
    HsmUnavailable,
    client_ssl_context,
)
from strongroom.kms.domain import ciphertext
from strongroom.rootkey import RootKey
from strongroom.storage import cks_repo
from strongroom.storage.cks_repo import StoreRow
from strongroom.storage.engine import write_transaction

__all__ = ["KMS_USER", "CloudHsmKeyStores", "ConnectFailed"]

KMS_USER = "kmsuser"
T = TypeVar("T")
log = logging.getLogger("strongroom.kms.cloudhsm")

#: per-request timeout towards the HSMs (a hung node fails over / fails connect quickly)
_TIMEOUT = 3.0
_SWEEP_SECONDS = 0.5
_UNREACHABLE = "KMS cannot communicate with your CloudHSM cluster."
_CONNECT_ERRORS = {
    ErrorCode.USER_LOCKED: "USER_LOCKED_OUT",
    ErrorCode.USER_NOT_FOUND: "USER_NOT_FOUND",
    ErrorCode.USER_LOGGED_IN: "USER_LOGGED_IN",
    ErrorCode.LOGIN_FAILURE: "INVALID_CREDENTIALS",
}


class ConnectFailed(Exception):
    """Connecting failed; ``code`` is the ConnectionErrorCode."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Connection:
    client: AsyncHsmClient
    sealed: bytes  # the stored password this login used (a reconnect changes it)
    addresses: frozenset[str]
    refs: dict[str, int] = field(default_factory=dict)


Op = Callable[[_Connection], Coroutine[Any, Any, T]]


class CloudHsmKeyStores:
    """Connections to the clusters behind custom key stores, and the crypto done in them."""

    def __init__(self, control: ClusterControl, root: RootKey) -> None:
        self.control = control
        self._root = root
        self._bridge: Bridge | None = None
        self._live: dict[str, _Connection] = {}
        self._checked = -1e18
        self._any_connected = False
        self._lock = threading.RLock()
        self._gates: dict[str, threading.Lock] = {}  # one attach at a time per store
        self._sweeper: threading.Thread | None = None
        control.passes.append(self.connect_pending)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._bridge is None:
                self._bridge = Bridge()
        return self._bridge.run(coro)

    def seal_password(self, store_id: str, password: str) -> bytes:
        return self._root.wrap(password.encode(), f"kms-cks-password:{store_id}")

    def open_password(self, store_id: str, sealed: bytes) -> str:
        return self._root.unwrap(sealed, f"kms-cks-password:{store_id}").decode()

    def _row(self, store_id: str) -> StoreRow | None:
        with self.control.engine.connect() as conn:
            return cks_repo.get_store(conn, store_id)

    # --- connecting (the control loop) ------------------------------------------------------

    def connect_pending(self) -> None:
        """Complete every ConnectCustomKeyStore that is CONNECTING (run by the control loop)."""
        with self.control.engine.connect() as conn:
            pending = cks_repo.stores_in_state(conn, "CONNECTING")
        for row in pending:
            changes: dict[str, object]
            try:
                rotated = self.connect(row.store_id, row.cluster_id, self._password(row))
                changes = {"connection_state": "CONNECTED", "error_code": None}
                changes["password_wrapped"] = self.seal_password(row.store_id, rotated)
            except ConnectFailed as failed:
                changes = {"connection_state": "FAILED", "error_code": failed.code}
            except Exception:
                log.exception("custom key store %s: connect failed", row.store_id)
                changes = {"connection_state": "FAILED", "error_code": "INTERNAL_ERROR"}
            with write_transaction(self.control.engine) as conn:
                done = cks_repo.update_if_state(conn, row.store_id, "CONNECTING", **changes)
            if not done:  # disconnected meanwhile: undo the login
                self.disconnect(row.store_id)
            log.info("custom key store %s: %s", row.store_id, changes["connection_state"])

    def _password(self, row: StoreRow) -> str:
        try:
            return self.open_password(row.store_id, row.password_wrapped)
        except Exception:
            raise ConnectFailed("INTERNAL_ERROR") from None

    def _client(self, cluster_id: str) -> AsyncHsmClient:
        cluster = self.control.cluster(cluster_id)
        if cluster is None or cluster.state in (hsmd.DELETED, hsmd.DELETE_IN_PROGRESS):
            raise ConnectFailed("CLUSTER_NOT_FOUND")
        members = self.control.live_members(cluster_id)
        anchor = self.control.anchor(cluster)
        if not members or anchor is None:
            raise ConnectFailed("INSUFFICIENT_CLOUDHSM_HSMS")
        context = client_ssl_context(trust_anchor=anchor)
        # a new key must reach two HSMs before CreateKey answers, however many this
        # connection knows (one, just after a replacement, until the next sweep)
        addresses = [m.address for m in members]
        return AsyncHsmClient(addresses, context, timeout=_TIMEOUT, min_copies=2)

    def connect(self, store_id: str, cluster_id: str, password: str) -> str:
        """Log in as kmsuser and rotate its password; returns the new password (to store)."""
        client = self._client(cluster_id)
        rotated = rng.token_urlsafe(24)[:32]
        try:
            self._run(_login_and_rotate(client, password, rotated))
        except ConnectFailed:
            self._run(client.close())
            raise
        except HsmUnavailable:
            self._run(client.close())
            raise ConnectFailed("NETWORK_ERRORS") from None
        except HsmClientError as exc:
            self._run(client.close())
            raise ConnectFailed(
                _CONNECT_ERRORS.get(ErrorCode(exc.code), "INTERNAL_ERROR")
            ) from None
        except (OSError, TimeoutError):
            self._run(client.close())
            raise ConnectFailed("NETWORK_ERRORS") from None
        self._install(store_id, client, self.seal_password(store_id, rotated))
        return rotated

    def _install(self, store_id: str, client: AsyncHsmClient, sealed: bytes) -> _Connection:
        conn = _Connection(client, sealed, frozenset(str(a) for a in client.nodes))
        with self._lock:
            old = self._live.pop(store_id, None)
            self._live[store_id] = conn
            if self._sweeper is None:
                self._sweeper = threading.Thread(target=self._sweep, name="cks-sweep", daemon=True)
                self._sweeper.start()
        if old is not None:
            self._close(old)
        return conn

    def _attach(self, row: StoreRow, stale: _Connection | None) -> _Connection:
        """A connection in place of ``stale`` (or of none). One attach at a time per store, and
        one that waited takes what was attached meanwhile: two at once would each close the
        other's connection under the calls running on it."""
        with self._lock:
            gate = self._gates.setdefault(row.store_id, threading.Lock())
        with gate:
            now = self._live.get(row.store_id)
            if now is not None and now is not stale and now.sealed == row.password_wrapped:
                return now
            return self._login(row)

    def _login(self, row: StoreRow) -> _Connection:
        """Log in with the stored (rotated) password: this process's own session."""
        try:
            client = self._client(row.cluster_id)
        except ConnectFailed:
            raise AwsError("KMSInvalidStateException", _UNREACHABLE) from None
        deadline = time.monotonic() + _TIMEOUT  # nodes restarted with serve may still start
        while True:
            try:
                self._run(client.login(KMS_USER, self._password(row), "crypto-user"))
                break
            except HsmUnavailable:
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                self._run(client.close())
                raise AwsError("KMSInvalidStateException", _UNREACHABLE) from None
            except (HsmClientError, ConnectFailed, OSError, TimeoutError):
                self._run(client.close())
                raise AwsError("KMSInvalidStateException", _UNREACHABLE) from None
        # the sealed password is re-sealed on each connect, so it marks the connection epoch
        return self._install(row.store_id, client, row.password_wrapped)

    def disconnect(self, store_id: str) -> None:
        """Log this process out of the store's cluster."""
        with self._lock:
            conn = self._live.pop(store_id, None)
        if conn is not None:
            self._close(conn)

    def _close(self, conn: _Connection) -> None:
        with contextlib.suppress(HsmClientError, OSError, TimeoutError):
            self._run(conn.client.logout())
        with contextlib.suppress(Exception):
            self._run(conn.client.close())

    def connected(self, store_id: str) -> bool:
        return store_id in self._live

    def in_use(self) -> bool:
        """Whether any custom key store may be doing crypto here: one is attached in this
        process, or (checked at most once a second) one is CONNECTED in the database."""
        if self._live:
            return True
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            with self.control.engine.connect() as conn:
                self._any_connected = bool(cks_repo.stores_in_state(conn, "CONNECTED"))
        return self._any_connected

    def _sweep(self) -> None:
        """Drop connections of stores no longer CONNECTED; follow replaced HSMs."""
        while True:
            threading.Event().wait(_SWEEP_SECONDS)
            for store_id, conn in list(self._live.items()):
                try:
                    self._check(store_id, conn)
                except Exception:
                    log.exception("custom key store %s: sweep failed", store_id)

    def _check(self, store_id: str, conn: _Connection) -> None:
        row = self._row(store_id)
        if (
            row is None
            or row.connection_state != "CONNECTED"
            or row.password_wrapped != conn.sealed
        ):
            if self._live.get(store_id) is conn:
                self.disconnect(store_id)
            return
        live = frozenset(m.address for m in self.control.live_members(row.cluster_id))
        if live and live != conn.addresses:
            with contextlib.suppress(AwsError):
                self._attach(row, conn)

    def _conn(self, row: StoreRow) -> _Connection:
        conn = self._live.get(row.store_id)
        if conn is None or conn.sealed != row.password_wrapped:
            conn = self._attach(row, conn)
        return conn

    # --- keys and crypto ---------------------------------------------------------------------

    def _call(self, row: StoreRow, arn: str, op: Op[T]) -> T:
        """Run ``op`` on the store's connection; a lost session or node is re-attached once."""
        for attempt in (0, 1):
            conn = self._conn(row)
            try:
                return self._run(op(conn))
            except HsmClientError as exc:
                if exc.code == ErrorCode.CRYPTO_FAILED:
                    raise symmetric.CryptoError("authentication failed") from None
                if exc.code == ErrorCode.KEY_NOT_FOUND:
                    raise AwsError(
                        "KMSInvalidStateException",
                        f"The key material of {arn} is not available in the CloudHSM cluster.",
                    ) from None
                lost = isinstance(exc, HsmUnavailable) or exc.code in (
                    ErrorCode.NOT_LOGGED_IN,
                    ErrorCode.SESSION_EXPIRED,
                )
                if not lost or attempt:
                    raise AwsError("KMSInvalidStateException", _UNREACHABLE) from None
            except (OSError, TimeoutError):
                if attempt:
                    raise AwsError("KMSInvalidStateException", _UNREACHABLE) from None
            if self._live.get(row.store_id) is conn:
                self.disconnect(row.store_id)
        raise AssertionError("unreachable")

    @staticmethod
    async def _ref(conn: _Connection, arn: str) -> int:
        ref = conn.refs.get(arn)
        if ref is None:
            ref = (await conn.client.find_key_by_label(arn)).ref
            conn.refs[arn] = ref
        return ref

    def create_key(self, row: StoreRow, arn: str) -> None:
        """A persistent, non-extractable AES-256 key labelled with the KMS key ARN."""

        async def op(conn: _Connection) -> None:
            try:
                info = await conn.client.generate_aes_key(arn, 32, extractable=False)
            except HsmClientError as exc:
                if exc.message != AVAILABILITY_MESSAGE:
                    raise
                raise AwsError(
                    "CloudHsmClusterInvalidConfigurationException",
                    "The key could not be made available on at least two HSMs of the "
                    "associated CloudHSM cluster; it was not created.",
                ) from None
            conn.refs[arn] = info.ref

        self._call(row, arn, op)

    def encrypt(
        self, row: StoreRow, key_id: str, arn: str, plaintext: bytes, context_aad: bytes
    ) -> bytes:
        salt = symmetric.random_bytes(16)
        header = ciphertext.encode_header(ciphertext.KIND_CLOUDHSM, key_id, 1, salt, bytes(12))

        async def op(conn: _Connection) -> bytes:
            ref = await self._ref(conn, arn)
            return await conn.client.encrypt(ref, plaintext, header + context_aad)

        return header + self._call(row, arn, op)

    def decrypt(
        self, row: StoreRow, arn: str, blob: ciphertext.BlobHeader, context_aad: bytes
    ) -> bytes:
        async def op(conn: _Connection) -> bytes:
            ref = await self._ref(conn, arn)
            return await conn.client.decrypt(ref, blob.body, blob.header + context_aad)

        return self._call(row, arn, op)

    def random(self, row: StoreRow, count: int) -> bytes:
        async def op(conn: _Connection) -> bytes:
            return await conn.client.random(count)

        return self._call(row, row.store_id, op)

    def delete_key(self, row: StoreRow, arn: str) -> bool:
        """Best effort: delete the cluster key of a deleted KMS key."""

        async def op(conn: _Connection) -> None:
            ref = await self._ref(conn, arn)
            await conn.client.delete_key(ref)
            conn.refs.pop(arn, None)

        try:
            self._call(row, arn, op)
        except AwsError:
            return False
        return True


async def _login_and_rotate(client: AsyncHsmClient, password: str, rotated: str) -> None:
    """Connect: kmsuser must exist and not be locked; log in, then rotate its password (the
    HSM refuses that while kmsuser is logged in elsewhere: USER_LOGGED_IN)."""
    users = {u["username"]: u for u in await client.list_users()}
    user = users.get(KMS_USER)
    if user is None or user["role"] != "crypto-user":
        raise ConnectFailed("USER_NOT_FOUND")
    if user.get("locked") == "true":
        raise ConnectFailed("USER_LOCKED_OUT")
    await client.login(KMS_USER, password, "crypto-user")
    try:
        await client.change_password(KMS_USER, "crypto-user", rotated)
    except HsmClientError:
        with contextlib.suppress(HsmClientError, OSError):
            await client.logout()
        raise
