"""KMS on the wire: the ``TrentService`` target prefix bound to the operation registry."""

from __future__ import annotations

import re
from typing import Any

from strongroom.api.app import Service
from strongroom.api.shapes import ServiceShapes
from strongroom.api.sigv4 import SignedIdentity
from strongroom.errors import AwsError
from strongroom.iam.identities import IdentityStore
from strongroom.kms.ops.registry import OPERATIONS
from strongroom.kms.service import Kms, RequestContext

__all__ = ["kms_service"]

_REGION = re.compile(r"([a-z]+-){2,3}\d+")
#: Operations that run inside the HSM cluster for keys in a custom key store: while one is in
#: use they run on a worker thread, so the HSM round trip does not hold up the event loop.
_MAY_USE_AN_HSM = frozenset(
    {
        "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext", "GenerateRandom", "CreateKey",
    }
)  # fmt: skip


def kms_service(
    kms: Kms, identities: IdentityStore, shapes: ServiceShapes | None = None
) -> Service:
    """The KMS :class:`~strongroom.api.app.Service`."""
    model = shapes if shapes is not None else ServiceShapes.load("kms")

    def call(
        operation: str, request: dict[str, Any], who: SignedIdentity, source_ip: str, rid: str
    ) -> dict[str, Any]:
        principal = identities.authenticate(who.access_key_id, who.session_token)
        if not _REGION.fullmatch(who.region):
            raise AwsError(
                "InvalidSignatureException", "Credential should be scoped to a valid region."
            )
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise AwsError(
                "UnsupportedOperationException",
                f"{operation} is not supported by this Strongroom version.",
            )
        ctx = RequestContext(principal, who.region, rid, source_ip)
        return handler(kms, ctx, request)

    def offload(operation: str) -> bool:
        return operation in _MAY_USE_AN_HSM and kms.cloudhsm is not None and kms.cloudhsm.in_use()

    return Service(
        "TrentService", "kms", model, call, internal_error="KMSInternalException", offload=offload
    )
