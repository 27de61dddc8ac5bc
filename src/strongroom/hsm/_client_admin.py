"""Cluster, user, audit, provisioning and cloning calls of the asynchronous HSM client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from strongroom.hsm._channel import HsmUnavailable
from strongroom.hsm._client_base import ClientBase
from strongroom.hsm.audit import AuditRecord

__all__ = ["AdminCalls"]


class AdminCalls(ClientBase):
    """Calls that manage the HSM rather than keys."""

    # --- cluster and users -----------------------------------------------------------------

    async def hsm_info(self) -> dict[str, Any]:
        """``cluster hsm-info`` of the first node."""
        return await self._typed(dict[str, Any], "hsm_info")

    async def activate(self, password: str) -> None:
        """``cluster activate``: set the admin password on every node."""
        await self.fanout("cluster_activate", {"password": password})

    async def login(self, username: str, password: str, role: str = "crypto-user") -> None:
        """Log in on every node; later calls carry the session."""
        args = {"username": username, "role": role, "password": password}
        last: HsmUnavailable | None = None
        for link in self._links:
            link.token = None
            try:
                raw = await self._on(link, "login", args)
            except HsmUnavailable as exc:  # a dead node: the others carry the load
                last = exc
                continue
            link.token = msgspec.msgpack.decode(raw, type=dict[str, Any])["token"]
        if last is not None and not self.logged_in:
            raise last

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
