"""Client-side key synchronisation: a new token key is copied, as a masked object, from the
node that made it to every other node before the client reports it created (cloudhsm.md §3.4).

As CloudHSM's SDK 5 key availability check: with two or more nodes the key must reach at least
two of them, otherwise the copies are deleted (best effort) and the creation fails. A client
made with ``min_copies`` (KMS: 2) holds to that number even when it knows fewer nodes: a
connection that knows one node of a cluster refuses rather than acknowledge one copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from strongroom.hsm._channel import HsmClientError, HsmUnavailable
from strongroom.hsm._client_base import ClientBase
from strongroom.hsm.errors import ErrorCode
from strongroom.hsm.objects import parse_ref

__all__ = ["AVAILABILITY_MESSAGE", "Replication"]

AVAILABILITY_MESSAGE = (
    "Key does not meet the availability requirements - "
    "The key must be available on at least 2 HSMs before being used."
)


class Replication(ClientBase):
    """Key creation that replicates before it answers."""

    async def _create(
        self, op: str, args: Mapping[str, Any], ref_fields: Sequence[str]
    ) -> dict[str, Any]:
        index, raw = await self.call_on_any(op, args)
        out: dict[str, Any] = msgspec.msgpack.decode(raw, type=dict[str, Any])
        if args.get("session") or self._required_copies() <= 1:
            return out
        refs = [
            parse_ref(out[f] if f == "key-reference" else out[f]["key-reference"])
            for f in ref_fields
        ]
        await self.replicate(index, refs)
        return out

    def _required_copies(self) -> int:
        if self._min_copies is not None:
            return self._min_copies
        return min(2, len(self._links))

    async def replicate(self, source: int, refs: list[int]) -> int:
        """Copy keys from node ``source`` to every other node; the number of nodes holding them
        afterwards. Fails (after deleting the copies) if fewer than two hold them."""
        blob = (await self.call_on(source, "clone_export", {"refs": refs}))["blob"]
        holders = [source]
        for index in range(len(self._links)):
            if index == source:
                continue
            try:
                await self.call_on(index, "clone_import", {"blob": blob})
                holders.append(index)
            except (HsmUnavailable, HsmClientError):
                continue
        if len(holders) < self._required_copies():
            for index in holders:
                for ref in refs:
                    with contextlib.suppress(HsmUnavailable, HsmClientError):
                        await self.call_on(index, "key_delete", {"ref": ref})
            raise HsmClientError(ErrorCode.KEY_NOT_FOUND, AVAILABILITY_MESSAGE)
        return len(holders)
