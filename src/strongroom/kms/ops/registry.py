"""The one registry of KMS operations: wire name -> handler.

Nothing dispatches on a name the client sent except through this table. Operations of the
model that no family implements yet answer UnsupportedOperationException (see ``api.app``).
"""

from __future__ import annotations

from collections.abc import Mapping

from strongroom.kms.ops import (
    _common,
    aliases,
    asymmetric,
    crypto,
    custom_key_stores,
    grants,
    imports,
    kem,
    keypairs,
    keys,
    mac,
    multiregion,
    policy,
    rotation,
    tags,
    usage,
)

__all__ = ["OPERATIONS"]

OPERATIONS: Mapping[str, _common.Handler] = {
    **keys.HANDLERS,
    **crypto.HANDLERS,
    **custom_key_stores.HANDLERS,
    **aliases.HANDLERS,
    **tags.HANDLERS,
    **policy.HANDLERS,
    **grants.HANDLERS,
    **asymmetric.HANDLERS,
    **mac.HANDLERS,
    **keypairs.HANDLERS,
    **kem.HANDLERS,
    **rotation.HANDLERS,
    **imports.HANDLERS,
    **multiregion.HANDLERS,
    **usage.HANDLERS,
}
