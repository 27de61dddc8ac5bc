"""Plumbing of the asynchronous HSM client: node links, connection pools, failover."""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from strongroom.hsm._channel import Channel, HsmClientError, HsmUnavailable, NodeAddress
from strongroom.hsm.errors import ErrorCode
from strongroom.hsm.objects import parse_ref

__all__ = ["ClientBase", "KeyInfo"]

T = TypeVar("T")

# Safe to resend on a fresh connection if the old one died under the request.
_IDEMPOTENT = frozenset(
    {
        "hsm_info",
        "user_list",
        "key_find",
        "key_public_pem",
        "encrypt",
        "decrypt",
        "sign",
        "verify",
        "hmac",
        "digest",
        "random",
        "audit_read",
        "cluster_csr",
    }
)

# Answers that mean "ask another node": the key or session is not (yet) on this one.
_TRY_NEXT = frozenset(
    {int(ErrorCode.KEY_NOT_FOUND), int(ErrorCode.NOT_LOGGED_IN), int(ErrorCode.SESSION_EXPIRED)}
)


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


class ClientBase:
    """Connections, pooling, failover and typed decoding (shared by the client's parts)."""

    def __init__(
        self,
        nodes: Sequence[str | NodeAddress],
        ssl_context: ssl.SSLContext,
        *,
        pool_size: int = 2,
        timeout: float = 30.0,
        min_copies: int | None = None,
    ) -> None:
        if not nodes:
            raise ValueError("at least one node address is needed")
        #: how many nodes a new token key must reach before it is reported created: by
        #: default two, or one with a single node (SDK 5's key availability check); KMS asks
        #: for two always, since its connection may know fewer nodes than the cluster has
        self._min_copies = min_copies
        self._links = [
            _NodeLink(n if isinstance(n, NodeAddress) else NodeAddress.parse(n), pool_size)
            for n in nodes
        ]
        self._context = ssl_context
        self._timeout = timeout
        self._turn = itertools.count()

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
        try:
            resp = await chan.request(op, link.token, args)
        except HsmUnavailable:
            if op not in _IDEMPOTENT or not chan.lost:
                raise
            chan = await link.channel(self._context, self._timeout)
            resp = await chan.request(op, link.token, args)
        if resp.code:
            raise HsmClientError(resp.code, resp.message)
        return resp.result

    async def call(self, op: str, args: Mapping[str, Any] | None = None) -> msgspec.Raw:
        """One request to the next node in turn that answers; returns the raw result."""
        return (await self.call_on_any(op, args))[1]

    async def call_on_any(
        self, op: str, args: Mapping[str, Any] | None = None
    ) -> tuple[int, msgspec.Raw]:
        """Spread requests across nodes (round robin) and fail over: to the next node when one
        is unreachable, or lacks the key or the session (a node replaced or still syncing).
        Returns the index of the node that answered and its raw result."""
        last: Exception | None = None
        start = next(self._turn) % len(self._links)
        for i in range(len(self._links)):
            index = (start + i) % len(self._links)
            try:
                return index, await self._on(self._links[index], op, args or {})
            except HsmUnavailable as exc:
                last = exc
            except HsmClientError as exc:
                if exc.code not in _TRY_NEXT or len(self._links) == 1:
                    raise
                last = exc
        assert last is not None
        raise last

    async def call_on(self, index: int, op: str, args: Mapping[str, Any] | None = None) -> Any:
        """One request to one node, decoded."""
        return msgspec.msgpack.decode(await self._on(self._links[index], op, args or {}))

    async def fanout(self, op: str, args: Mapping[str, Any] | None = None) -> msgspec.Raw:
        """The same request to every reachable node; fails if any node refuses, or if none
        is reachable."""
        results: list[msgspec.Raw] = []
        last: HsmUnavailable | None = None
        for link in self._links:
            try:
                results.append(await self._on(link, op, args or {}))
            except HsmUnavailable as exc:
                last = exc
        if not results:
            assert last is not None
            raise last
        return results[0]

    async def _typed(self, kind: type[T], op: str, args: Mapping[str, Any] | None = None) -> T:
        return _decode(await self.call(op, args), kind)
