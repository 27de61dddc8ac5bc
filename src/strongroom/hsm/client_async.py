"""Asynchronous typed client for HSM nodes (what KMS calls, and what the sync client wraps).

Each node gets a small pool of TLS connections; each connection multiplexes many concurrent
requests. Logins and user management go to every configured node (users are per node, as in
CloudHSM); key and crypto operations go to the first node that answers.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from strongroom.hsm._channel import Channel, HsmClientError, HsmUnavailable, NodeAddress
from strongroom.hsm.audit import AuditRecord
from strongroom.hsm.errors import ErrorCode
from strongroom.hsm.objects import parse_ref

__all__ = ["AsyncHsmClient", "KeyInfo"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as the HSM describes it (never its material)."""

    ref: int
    label: str
    key_class: str
    key_type: str
    owner: str
    shared_users: tuple[str, ...]
    attributes: Mapping[str, Any]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> KeyInfo:
        """From the node's CloudHSM-style key JSON."""
        attrs = data["attributes"]
        owners = data["key-info"]["key-owners"]
        return cls(
            ref=parse_ref(data["key-reference"]),
            label=attrs.get("label", ""),
            key_class=attrs.get("class", ""),
            key_type=attrs.get("key-type", ""),
            owner=owners[0]["username"] if owners else "",
            shared_users=tuple(u["username"] for u in data["key-info"]["shared-users"]),
            attributes=attrs,
            raw=data,
        )


class _NodeLink:
    def __init__(self, address: NodeAddress, pool_size: int) -> None:
        self.address = address
        self.channels: list[Channel | None] = [None] * pool_size
        self.token: bytes | None = None
        self._rr = itertools.cycle(range(pool_size))
        self._lock = asyncio.Lock()

    async def channel(self, context: ssl.SSLContext, timeout: float) -> Channel:
        slot = next(self._rr)
        chan = self.channels[slot]
        if chan is not None and not chan.lost:
            return chan
        async with self._lock:
            chan = self.channels[slot]
            if chan is None or chan.lost:
                chan = await Channel.open(self.address, context, timeout)
                self.channels[slot] = chan
            return chan

    def close(self) -> None:
        for chan in self.channels:
            if chan is not None:
                chan.close()
        self.channels = [None] * len(self.channels)


def _decode(raw: msgspec.Raw, kind: type[T]) -> T:
    return msgspec.msgpack.decode(raw, type=kind)


class AsyncHsmClient:
    """Typed asyncio client for one or more HSM nodes."""

    def __init__(
        self,
        nodes: Sequence[str | NodeAddress],
        ssl_context: ssl.SSLContext,
        *,
        pool_size: int = 2,
        timeout: float = 30.0,
    ) -> None:
        if not nodes:
            raise ValueError("at least one node address is needed")
        self._links = [
            _NodeLink(n if isinstance(n, NodeAddress) else NodeAddress.parse(n), pool_size)
            for n in nodes
        ]
        self._context = ssl_context
        self._timeout = timeout

    async def __aenter__(self) -> AsyncHsmClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every connection (sessions stay until logout or timeout)."""
        for link in self._links:
            link.close()

    @property
    def nodes(self) -> list[NodeAddress]:
        """The configured node addresses."""
        return [link.address for link in self._links]

    # --- plumbing ------------------------------------------------------------------------------

    async def _on(self, link: _NodeLink, op: str, args: Mapping[str, Any]) -> msgspec.Raw:
        chan = await link.channel(self._context, self._timeout)
        resp = await chan.request(op, link.token, args)
        if resp.code:
            raise HsmClientError(resp.code, resp.message)
        return resp.result

    async def call(self, op: str, args: Mapping[str, Any] | None = None) -> msgspec.Raw:
        """One request to the first node that answers; returns the raw result."""
        last: HsmUnavailable | None = None
        for link in self._links:
            try:
                return await self._on(link, op, args or {})
            except HsmUnavailable as exc:
                last = exc
        assert last is not None
        raise last

    async def fanout(self, op: str, args: Mapping[str, Any] | None = None) -> msgspec.Raw:
        """The same request to every node; fails if any node refuses."""
        results = [await self._on(link, op, args or {}) for link in self._links]
        return results[0]

    async def _typed(self, kind: type[T], op: str, args: Mapping[str, Any] | None = None) -> T:
        return _decode(await self.call(op, args), kind)

    # --- cluster and users -----------------------------------------------------------------

    async def hsm_info(self) -> dict[str, Any]:
        """``cluster hsm-info`` of the first node."""
        return await self._typed(dict[str, Any], "hsm_info")

    async def activate(self, password: str) -> None:
        """``cluster activate``: set the admin password on every node."""
        await self.fanout("cluster_activate", {"password": password})

    async def login(self, username: str, password: str, role: str = "crypto-user") -> None:
        """Log in on every node; later calls carry the session."""
        for link in self._links:
            link.token = None
            raw = await self._on(
                link, "login", {"username": username, "role": role, "password": password}
            )
            link.token = _decode(raw, dict[str, Any])["token"]

    async def logout(self) -> None:
        """Log out on every node (session keys are destroyed)."""
        for link in self._links:
            if link.token is not None:
                try:
                    await self._on(link, "logout", {})
                finally:
                    link.token = None

    @property
    def logged_in(self) -> bool:
        """True while this client holds a session."""
        return any(link.token for link in self._links)

    async def list_users(self) -> list[dict[str, Any]]:
        """``user list``."""
        return await self._typed(list[dict[str, Any]], "user_list")

    async def create_user(self, username: str, role: str, password: str) -> None:
        """``user create`` on every node (admin)."""
        args = {"username": username, "role": role, "password": password}
        await self.fanout("user_create", args)

    async def delete_user(self, username: str, role: str) -> None:
        """``user delete`` on every node (admin)."""
        await self.fanout("user_delete", {"username": username, "role": role})

    async def change_password(self, username: str, role: str, password: str) -> None:
        """``user change-password`` on every node."""
        args = {"username": username, "role": role, "password": password}
        await self.fanout("user_change_password", args)

    # --- keys ------------------------------------------------------------------------------

    async def generate_symmetric(
        self,
        key_type: str,
        length_bytes: int,
        label: str = "",
        attributes: Mapping[str, str] | None = None,
        share_with: Sequence[str] = (),
        session: bool = False,
    ) -> KeyInfo:
        """``key generate-symmetric aes|generic-secret``."""
        args = {
            "key_type": key_type,
            "length_bytes": length_bytes,
            "label": label,
            "attributes": dict(attributes or {}),
            "share": list(share_with),
            "session": session,
        }
        return KeyInfo.from_wire(await self._typed(dict[str, Any], "key_generate_symmetric", args))

    async def generate_aes_key(
        self, label: str, length_bytes: int = 32, extractable: bool = False
    ) -> KeyInfo:
        """A token AES key for encrypt/decrypt, non-extractable by default (KMS's use)."""
        attrs = {"encrypt": "true", "decrypt": "true", "extractable": str(extractable).lower()}
        return await self.generate_symmetric("aes", length_bytes, label, attrs)

    async def generate_key_pair(
        self,
        key_type: str,
        public_label: str = "",
        private_label: str = "",
        *,
        modulus_bits: int = 2048,
        public_exponent: int = 65537,
        curve: str = "",
        public_attributes: Mapping[str, str] | None = None,
        private_attributes: Mapping[str, str] | None = None,
        share_with: Sequence[str] = (),
        session: bool = False,
    ) -> tuple[KeyInfo, KeyInfo]:
        """``key generate-asymmetric-pair rsa|ec``: (public, private)."""
        args = {
            "key_type": key_type,
            "public_label": public_label,
            "private_label": private_label,
            "modulus_bits": modulus_bits,
            "public_exponent": public_exponent,
            "curve": curve,
            "public_attributes": dict(public_attributes or {}),
            "private_attributes": dict(private_attributes or {}),
            "share": list(share_with),
            "session": session,
        }
        out = await self._typed(dict[str, Any], "key_generate_pair", args)
        return KeyInfo.from_wire(out["public_key"]), KeyInfo.from_wire(out["private_key"])

    async def find_keys(self, filters: Mapping[str, str] | None = None) -> list[KeyInfo]:
        """``key list --filter``: keys visible to the caller matching every filter."""
        args = {"filters": dict(filters or {}), "verbose": True}
        return [
            KeyInfo.from_wire(k) for k in await self._typed(list[dict[str, Any]], "key_find", args)
        ]

    async def find_key_by_label(self, label: str) -> KeyInfo:
        """The one key with this label (KEY_NOT_FOUND if none, INVALID_REQUEST if several)."""
        keys = await self.find_keys({"attr.label": label})
        if not keys:
            raise HsmClientError(ErrorCode.KEY_NOT_FOUND, "no key has that label")
        if len(keys) > 1:
            raise HsmClientError(ErrorCode.INVALID_REQUEST, "several keys have that label")
        return keys[0]

    async def delete_key(self, ref: int) -> None:
        """``key delete``."""
        await self.call("key_delete", {"ref": ref})

    async def share_key(self, ref: int, username: str) -> KeyInfo:
        """``key share``."""
        return KeyInfo.from_wire(
            await self._typed(dict[str, Any], "key_share", {"ref": ref, "username": username})
        )

    async def unshare_key(self, ref: int, username: str) -> KeyInfo:
        """``key unshare``."""
        return KeyInfo.from_wire(
            await self._typed(dict[str, Any], "key_unshare", {"ref": ref, "username": username})
        )

    async def set_attribute(self, ref: int, name: str, value: str | bool) -> KeyInfo:
        """``key set-attribute``."""
        text = str(value).lower() if isinstance(value, bool) else value
        args = {"ref": ref, "name": name, "value": text}
        return KeyInfo.from_wire(await self._typed(dict[str, Any], "key_set_attribute", args))

    async def wrap_key(
        self,
        payload_ref: int,
        wrapping_ref: int,
        mechanism: str = "aes-key-wrap-pad",
        hash: str = "sha256",
    ) -> bytes:
        """``key wrap``: the payload key encrypted under the wrapping key."""
        args = {
            "mechanism": mechanism,
            "payload_ref": payload_ref,
            "wrapping_ref": wrapping_ref,
            "hash": hash,
        }
        return (await self._typed(dict[str, bytes], "key_wrap", args))["wrapped_key_data"]

    async def unwrap_key(
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
        """``key unwrap``: import a wrapped key."""
        args = {
            "mechanism": mechanism,
            "unwrapping_ref": unwrapping_ref,
            "data": data,
            "key_class": key_class,
            "key_type": key_type,
            "label": label,
            "attributes": dict(attributes or {}),
            "hash": hash,
        }
        return KeyInfo.from_wire(await self._typed(dict[str, Any], "key_unwrap", args))

    async def public_key_pem(self, ref: int) -> str:
        """A public key as PEM."""
        return (await self._typed(dict[str, str], "key_public_pem", {"ref": ref}))["pem"]

    # --- crypto ----------------------------------------------------------------------------

    async def encrypt(
        self,
        ref: int,
        plaintext: bytes,
        aad: bytes = b"",
        mechanism: str = "aes-gcm",
        hash: str = "sha256",
    ) -> bytes:
        """AES-GCM (IV || ciphertext || tag), AES-CBC-PAD (IV || ciphertext) or RSA-OAEP."""
        args = {"ref": ref, "mechanism": mechanism, "data": plaintext, "aad": aad, "hash": hash}
        return (await self._typed(dict[str, bytes], "encrypt", args))["data"]

    async def decrypt(
        self,
        ref: int,
        ciphertext: bytes,
        aad: bytes = b"",
        mechanism: str = "aes-gcm",
        hash: str = "sha256",
    ) -> bytes:
        """Inverse of :meth:`encrypt`; CRYPTO_FAILED if the ciphertext or AAD was altered."""
        args = {"ref": ref, "mechanism": mechanism, "data": ciphertext, "aad": aad, "hash": hash}
        return (await self._typed(dict[str, bytes], "decrypt", args))["data"]

    async def sign(
        self, ref: int, data: bytes, mechanism: str = "rsa-pkcs", hash: str = "sha256"
    ) -> bytes:
        """``crypto sign`` with a private key."""
        args = {"ref": ref, "mechanism": mechanism, "data": data, "hash": hash}
        return (await self._typed(dict[str, bytes], "sign", args))["signature"]

    async def verify(
        self,
        ref: int,
        data: bytes,
        signature: bytes,
        mechanism: str = "rsa-pkcs",
        hash: str = "sha256",
    ) -> bool:
        """``crypto verify`` with a public key."""
        args = {
            "ref": ref,
            "mechanism": mechanism,
            "data": data,
            "hash": hash,
            "signature": signature,
        }
        return (await self._typed(dict[str, bool], "verify", args))["valid"]

    async def hmac(self, ref: int, data: bytes, hash: str = "sha256") -> bytes:
        """``crypto mac hmac``."""
        args = {"ref": ref, "data": data, "hash": hash}
        return (await self._typed(dict[str, bytes], "hmac", args))["mac"]

    async def hmac_verify(self, ref: int, data: bytes, mac: bytes, hash: str = "sha256") -> bool:
        """Check an HMAC on the HSM."""
        args = {"ref": ref, "data": data, "hash": hash, "mac": mac}
        return (await self._typed(dict[str, bool], "hmac", args))["valid"]

    async def digest(self, hash: str, data: bytes) -> bytes:
        """SHA-1/224/256/384/512 digest."""
        return (await self._typed(dict[str, bytes], "digest", {"hash": hash, "data": data}))[
            "digest"
        ]

    async def random(self, length: int) -> bytes:
        """Random bytes from the HSM."""
        return (await self._typed(dict[str, bytes], "random", {"length": length}))["data"]

    # --- audit, provisioning, cloning ------------------------------------------------------

    async def audit(self, start_seq: int = 0, limit: int = 1000) -> list[AuditRecord]:
        """Verified audit records of the first node (admin or appliance user)."""
        out = await self._typed(
            dict[str, Any], "audit_read", {"start_seq": start_seq, "limit": limit}
        )
        return [msgspec.convert(r, AuditRecord) for r in out["records"]]

    async def cluster_csr(self) -> str:
        """The first node's CSR for the cluster certificate."""
        return (await self._typed(dict[str, str], "cluster_csr"))["csr"]

    async def install_certificate(self, certificate: str, trust_anchor: str) -> None:
        """Install the signed cluster certificate and trust anchor (appliance user)."""
        await self.call(
            "install_certificate", {"certificate": certificate, "trust_anchor": trust_anchor}
        )

    async def zeroize(self) -> None:
        """Destroy every key and user on the first node (admin); the node stops."""
        await self.call("zeroize")

    async def clone_export(self, refs: Sequence[int] = (), users: bool = False) -> bytes:
        """Masked objects (sealed under the cluster masking key) for another node."""
        out = await self._typed(
            dict[str, bytes], "clone_export", {"refs": list(refs), "users": users}
        )
        return out["blob"]

    async def clone_import(self, blob: bytes) -> dict[str, int]:
        """Insert masked objects exported by a node of the same cluster."""
        return await self._typed(dict[str, int], "clone_import", {"blob": blob})
