"""Synchronous facade over :class:`AsyncHsmClient` (the CLI uses it), on a private event loop.

Not for use inside a running event loop: async code should use :class:`AsyncHsmClient`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from strongroom.hsm._channel import NodeAddress
from strongroom.hsm.audit import AuditRecord
from strongroom.hsm.client_async import AsyncHsmClient, KeyInfo

__all__ = ["HsmClient"]

T = TypeVar("T")


class HsmClient:
    """Blocking typed client; the same methods as :class:`AsyncHsmClient`."""

    def __init__(
        self,
        nodes: Sequence[str | NodeAddress],
        ssl_context: ssl.SSLContext,
        *,
        pool_size: int = 1,
        timeout: float = 30.0,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self.aio = AsyncHsmClient(nodes, ssl_context, pool_size=pool_size, timeout=timeout)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coro)

    def __enter__(self) -> HsmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close connections and the private loop."""
        self._run(self.aio.close())
        self._loop.run_until_complete(asyncio.sleep(0))
        self._loop.close()

    def raw_call(self, op: str, args: Mapping[str, Any] | None = None) -> Any:
        """Low-level: one request by wire name; returns the decoded result."""
        return msgspec.msgpack.decode(self._run(self.aio.call(op, args)))

    def hsm_info(self) -> dict[str, Any]:
        return self._run(self.aio.hsm_info())

    def activate(self, password: str) -> None:
        self._run(self.aio.activate(password))

    def login(self, username: str, password: str, role: str = "crypto-user") -> None:
        self._run(self.aio.login(username, password, role))

    def logout(self) -> None:
        self._run(self.aio.logout())

    def list_users(self) -> list[dict[str, Any]]:
        return self._run(self.aio.list_users())

    def create_user(self, username: str, role: str, password: str) -> None:
        self._run(self.aio.create_user(username, role, password))

    def delete_user(self, username: str, role: str) -> None:
        self._run(self.aio.delete_user(username, role))

    def change_password(self, username: str, role: str, password: str) -> None:
        self._run(self.aio.change_password(username, role, password))

    def generate_symmetric(
        self,
        key_type: str,
        length_bytes: int,
        label: str = "",
        attributes: Mapping[str, str] | None = None,
        share_with: Sequence[str] = (),
        session: bool = False,
    ) -> KeyInfo:
        return self._run(
            self.aio.generate_symmetric(
                key_type, length_bytes, label, attributes, share_with, session
            )
        )

    def generate_aes_key(
        self, label: str, length_bytes: int = 32, extractable: bool = False
    ) -> KeyInfo:
        return self._run(self.aio.generate_aes_key(label, length_bytes, extractable))

    def generate_key_pair(
        self, key_type: str, public_label: str = "", private_label: str = "", **kwargs: Any
    ) -> tuple[KeyInfo, KeyInfo]:
        return self._run(
            self.aio.generate_key_pair(key_type, public_label, private_label, **kwargs)
        )

    def find_keys(self, filters: Mapping[str, str] | None = None) -> list[KeyInfo]:
        return self._run(self.aio.find_keys(filters))

    def find_key_by_label(self, label: str) -> KeyInfo:
        return self._run(self.aio.find_key_by_label(label))

    def delete_key(self, ref: int) -> None:
        self._run(self.aio.delete_key(ref))

    def share_key(self, ref: int, username: str) -> KeyInfo:
        return self._run(self.aio.share_key(ref, username))

    def unshare_key(self, ref: int, username: str) -> KeyInfo:
        return self._run(self.aio.unshare_key(ref, username))

    def set_attribute(self, ref: int, name: str, value: str | bool) -> KeyInfo:
        return self._run(self.aio.set_attribute(ref, name, value))

    def wrap_key(
        self,
        payload_ref: int,
        wrapping_ref: int,
        mechanism: str = "aes-key-wrap-pad",
        hash: str = "sha256",
    ) -> bytes:
        return self._run(self.aio.wrap_key(payload_ref, wrapping_ref, mechanism, hash))

    def unwrap_key(
        self,
        unwrapping_ref: int,
        data: bytes,
        key_class: str,
        key_type: str,
        label: str = "",
        mechanism: str = "aes-key-wrap-pad",
        attributes: Mapping[str, str] | None = None,
        hash: str = "sha256",
    ) -> KeyInfo:
        return self._run(
            self.aio.unwrap_key(
                unwrapping_ref, data, key_class, key_type, label, mechanism, attributes, hash
            )
        )

    def public_key_pem(self, ref: int) -> str:
        return self._run(self.aio.public_key_pem(ref))

    def encrypt(
        self,
        ref: int,
        plaintext: bytes,
        aad: bytes = b"",
        mechanism: str = "aes-gcm",
        hash: str = "sha256",
    ) -> bytes:
        return self._run(self.aio.encrypt(ref, plaintext, aad, mechanism, hash))

    def decrypt(
        self,
        ref: int,
        ciphertext: bytes,
        aad: bytes = b"",
        mechanism: str = "aes-gcm",
        hash: str = "sha256",
    ) -> bytes:
        return self._run(self.aio.decrypt(ref, ciphertext, aad, mechanism, hash))

    def sign(
        self, ref: int, data: bytes, mechanism: str = "rsa-pkcs", hash: str = "sha256"
    ) -> bytes:
        return self._run(self.aio.sign(ref, data, mechanism, hash))

    def verify(
        self,
        ref: int,
        data: bytes,
        signature: bytes,
        mechanism: str = "rsa-pkcs",
        hash: str = "sha256",
    ) -> bool:
        return self._run(self.aio.verify(ref, data, signature, mechanism, hash))

    def hmac(self, ref: int, data: bytes, hash: str = "sha256") -> bytes:
        return self._run(self.aio.hmac(ref, data, hash))

    def hmac_verify(self, ref: int, data: bytes, mac: bytes, hash: str = "sha256") -> bool:
        return self._run(self.aio.hmac_verify(ref, data, mac, hash))

    def digest(self, hash: str, data: bytes) -> bytes:
        return self._run(self.aio.digest(hash, data))

    def random(self, length: int) -> bytes:
        return self._run(self.aio.random(length))

    def audit(self, start_seq: int = 0, limit: int = 1000) -> list[AuditRecord]:
        return self._run(self.aio.audit(start_seq, limit))

    def cluster_csr(self) -> str:
        return self._run(self.aio.cluster_csr())

    def install_certificate(self, certificate: str, trust_anchor: str) -> None:
        self._run(self.aio.install_certificate(certificate, trust_anchor))

    def zeroize(self) -> None:
        self._run(self.aio.zeroize())

    def clone_export(self, refs: Sequence[int] = (), users: bool = False) -> bytes:
        return self._run(self.aio.clone_export(refs, users))

    def clone_import(self, blob: bytes) -> dict[str, int]:
        return self._run(self.aio.clone_import(blob))
