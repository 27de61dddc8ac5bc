"""The full operation registry of an HSM node."""

from __future__ import annotations

from strongroom.hsm import (
    lockout,
    ops_backup,
    ops_cluster,
    ops_crypto,
    ops_join,
    ops_keys,
    ops_users,
    ops_wrap,
)
from strongroom.hsm.registry import Registry

__all__ = ["build_registry"]


def build_registry() -> Registry:
    """Every wire operation, declared once."""
    reg = Registry()
    families = (ops_users, ops_keys, ops_wrap, ops_crypto, ops_cluster, ops_join, ops_backup)
    for family in (*families, lockout):
        family.register(reg)
    return reg
