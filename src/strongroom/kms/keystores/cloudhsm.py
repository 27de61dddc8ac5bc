"""The CloudHSM key store: KMS keys whose material lives, non-extractable, in a cluster.

One :class:`CloudHsmKeyStores` per service. A connected custom key store holds an HSM client
logged in as ``kmsuser`` on the cluster's live HSMs (load spread and failover are the client's);
its AES-256 keys are found by their label, the KMS key ARN. Blobs carry kind
:data:`~strongroom.kms.domain.ciphertext.KIND_CLOUDHSM`; their body is the HSM's AES-GCM output
(IV || ciphertext || tag) with the blob header and encryption context as AAD.

KMS request handlers run on the server's event loop, so the HSM client runs on a loop of its own
in a helper thread (:class:`_Bridge`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from strongroom.cloudhsm.control import ClusterControl
from strongroom.crypto import symmetric
from strongroom.errors import AwsError
from strongroom.hsm.client import AsyncHsmClient, ErrorCode, HsmClientError, client_ssl_context
from strongroom.kms.domain import ciphertext
from strongroom.rootkey import RootKey

__all__ = ["KMS_USER", "CloudHsmKeyStores", "ConnectFailed"]

KMS_USER = "kmsuser"
T = TypeVar("T")


class ConnectFailed(Exception):
    """Connecting failed; ``code`` is the ConnectionErrorCode."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class _Bridge:
    """An event loop in a daemon thread, for calling the async HSM client from sync code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="kms-cloudhsm", daemon=True).start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@dataclass
class _Connection:
    client: AsyncHsmClient
    refs: dict[str, int] = field(default_factory=dict)


class CloudHsmKeyStores:
    """Connections to the clusters behind custom key stores, and the crypto done in them."""

    def __init__(self, control: ClusterControl, root: RootKey) -> None:
        self.control = control
        self._root = root
        self._bridge: _Bridge | None = None
        self._live: dict[str, _Connection] = {}

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._bridge is None:
            self._bridge = _Bridge()
        return self._bridge.run(coro)

    def seal_password(self, store_id: str, password: str) -> bytes:
        return self._root.wrap(password.encode(), f"kms-cks-password:{store_id}")

    def open_password(self, store_id: str, sealed: bytes) -> str:
        return self._root.unwrap(sealed, f"kms-cks-password:{store_id}").decode()

    # --- connection --------------------------------------------------------------------------

    def connect(self, store_id: str, cluster_id: str, password: str) -> str:
        """Log in as kmsuser and rotate its password; returns the new password (to store)."""
        cluster = self.control.cluster(cluster_id)
        if cluster is None:
            raise ConnectFailed("CLUSTER_NOT_FOUND")
        members = self.control.live_members(cluster_id)
        anchor = self.control.anchor(cluster)
        if not members or anchor is None:
            raise ConnectFailed("INSUFFICIENT_CLOUDHSM_HSMS")
        client = AsyncHsmClient(
            [m.address for m in members], client_ssl_context(trust_anchor=anchor), timeout=15
        )
        rotated = secrets.token_urlsafe(24)[:32]
        try:
            self._run(client.login(KMS_USER, password, "crypto-user"))
            self._run(client.change_password(KMS_USER, "crypto-user", rotated))
        except HsmClientError as exc:
            self._run(client.close())
            raise ConnectFailed(_connect_error(exc)) from None
        except OSError:
            self._run(client.close())
            raise ConnectFailed("NETWORK_ERRORS") from None
        self.disconnect(store_id)
        self._live[store_id] = _Connection(client)
        return rotated

    def disconnect(self, store_id: str) -> None:
        conn = self._live.pop(store_id, None)
        if conn is not None:
            with contextlib.suppress(HsmClientError, OSError):
                self._run(conn.client.logout())
            self._run(conn.client.close())

    def connected(self, store_id: str) -> bool:
        return store_id in self._live

    def _conn(self, store_id: str, arn: str) -> _Connection:
        conn = self._live.get(store_id)
        if conn is None:
            raise AwsError(
                "KMSInvalidStateException",
                f"{arn} is unavailable: its custom key store {store_id} is not connected.",
            )
        return conn

    # --- keys and crypto ---------------------------------------------------------------------

    def create_key(self, store_id: str, arn: str) -> None:
        """A persistent, non-extractable AES-256 key labelled with the KMS key ARN."""
        conn = self._conn(store_id, arn)
        info = self._guard(arn, conn.client.generate_aes_key(arn, 32, extractable=False))
        conn.refs[arn] = info.ref

    def _ref(self, conn: _Connection, arn: str) -> int:
        ref = conn.refs.get(arn)
        if ref is None:
            ref = self._guard(arn, conn.client.find_key_by_label(arn)).ref
            conn.refs[arn] = ref
        return ref

    def encrypt(
        self, store_id: str, key_id: str, arn: str, plaintext: bytes, context_aad: bytes
    ) -> bytes:
        conn = self._conn(store_id, arn)
        salt = symmetric.random_bytes(16)
        header = ciphertext.encode_header(ciphertext.KIND_CLOUDHSM, key_id, 1, salt, bytes(12))
        body = self._guard(
            arn, conn.client.encrypt(self._ref(conn, arn), plaintext, header + context_aad)
        )
        return header + body

    def decrypt(
        self, store_id: str, arn: str, blob: ciphertext.BlobHeader, context_aad: bytes
    ) -> bytes:
        conn = self._conn(store_id, arn)
        return self._guard(
            arn, conn.client.decrypt(self._ref(conn, arn), blob.body, blob.header + context_aad)
        )

    def random(self, store_id: str, count: int) -> bytes:
        conn = self._conn(store_id, store_id)
        return self._guard(store_id, conn.client.random(count))

    def delete_key(self, store_id: str, arn: str) -> bool:
        """Best effort: delete the cluster key of a deleted KMS key."""
        conn = self._live.get(store_id)
        if conn is None:
            return False
        try:
            ref = self._ref(conn, arn)
            self._run(conn.client.delete_key(ref))
        except AwsError:
            return False
        conn.refs.pop(arn, None)
        return True

    def _guard(self, arn: str, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return self._run(coro)
        except HsmClientError as exc:
            if exc.code == ErrorCode.CRYPTO_FAILED:
                raise symmetric.CryptoError("authentication failed") from None
            if exc.code == ErrorCode.KEY_NOT_FOUND:
                raise AwsError(
                    "KMSInvalidStateException",
                    f"The key material of {arn} is not available in the CloudHSM cluster.",
                ) from None
            raise AwsError(
                "KMSInvalidStateException", "KMS cannot communicate with your CloudHSM cluster."
            ) from None
        except (OSError, TimeoutError):
            raise AwsError(
                "KMSInvalidStateException", "KMS cannot communicate with your CloudHSM cluster."
            ) from None


def _connect_error(exc: HsmClientError) -> str:
    if exc.code == ErrorCode.USER_LOCKED:
        return "USER_LOCKED_OUT"
    if exc.code == ErrorCode.USER_NOT_FOUND:
        return "USER_NOT_FOUND"
    if exc.code == ErrorCode.USER_LOGGED_IN:
        return "USER_LOGGED_IN"
    if exc.code == ErrorCode.LOGIN_FAILURE:
        return "INVALID_CREDENTIALS"
    return "INTERNAL_ERROR"
