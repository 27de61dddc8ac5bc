"""Asynchronous typed client for HSM nodes (what KMS calls, and what the sync client wraps).

Each node gets a small pool of TLS connections; each connection multiplexes many concurrent
requests. Logins and user management go to every configured node (users are per node, as in
CloudHSM); key and crypto operations go to the first node that answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.hsm._channel import HsmClientError, HsmUnavailable
from strongroom.hsm._client_admin import AdminCalls
from strongroom.hsm._client_base import KeyInfo
from strongroom.hsm._replicate import Replication
from strongroom.hsm.errors import ErrorCode

__all__ = ["AsyncHsmClient", "KeyInfo"]


class AsyncHsmClient(Replication, AdminCalls):
    """Typed asyncio client for one or more HSM nodes."""

    async def __aenter__(self) -> AsyncHsmClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

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
        out = await self._create("key_generate_symmetric", args, ["key-reference"])
        return KeyInfo.from_wire(out)

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
        out = await self._create("key_generate_pair", args, ["public_key", "private_key"])
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
        """``key delete`` on every node that holds the key."""
        found: HsmClientError | None = None
        deleted = 0
        for index in range(len(self._links)):
            try:
                await self.call_on(index, "key_delete", {"ref": ref})
                deleted += 1
            except HsmUnavailable:
                continue
            except HsmClientError as exc:
                if exc.code != ErrorCode.KEY_NOT_FOUND:
                    raise
                found = exc
        if not deleted:
            raise found or HsmClientError(ErrorCode.KEY_NOT_FOUND, "no such key")

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
