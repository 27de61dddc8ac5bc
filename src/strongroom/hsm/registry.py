"""The operation registry: wire name → argument type, permission, audit opcode, handler.

Nothing dispatches on a name the client sent except through this table; each family module
(:mod:`ops_users`, :mod:`ops_keys`, :mod:`ops_crypto`, :mod:`ops_cluster`) declares its entries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from strongroom.hsm.roles import Permission, Role
from strongroom.hsm.sessions import Session

if TYPE_CHECKING:
    from strongroom.hsm.node import Node

__all__ = ["Ctx", "OpSpec", "Registry"]


@dataclass(slots=True)
class Ctx:
    """Who is calling, and what the audit record of this call will name."""

    session: Session | None
    role: Role
    username: str
    keys: list[int] = field(default_factory=list)
    detail: str = ""


SyncHandler = Callable[["Node", Ctx, Any], Any]
AsyncHandler = Callable[["Node", Ctx, Any], Awaitable[Any]]
PermissionRule = Permission | Callable[[Ctx, Any], Permission]


@dataclass(frozen=True, slots=True)
class OpSpec:
    """One wire operation."""

    name: str
    args: type[msgspec.Struct]
    permission: PermissionRule
    opcode: str
    log_type: str
    handler: SyncHandler | None = None
    async_handler: AsyncHandler | None = None
    management: bool = True
    decoder: msgspec.msgpack.Decoder[Any] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decoder", msgspec.msgpack.Decoder(self.args))

    def permission_for(self, ctx: Ctx, args: Any) -> Permission:
        """The permission class this call needs."""
        rule = self.permission
        return rule if isinstance(rule, Permission) else rule(ctx, args)


class Registry:
    """A name → :class:`OpSpec` table, filled by the family modules."""

    def __init__(self) -> None:
        self._ops: dict[str, OpSpec] = {}

    def add(self, spec: OpSpec) -> None:
        """Declare an operation (names are unique)."""
        if spec.name in self._ops:
            raise ValueError(f"duplicate operation {spec.name}")
        self._ops[spec.name] = spec

    def get(self, name: str) -> OpSpec | None:
        """The operation called ``name``, if declared."""
        return self._ops.get(name)

    def names(self) -> list[str]:
        """All declared operation names."""
        return sorted(self._ops)
